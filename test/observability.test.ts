// Operating a queue from outside (DESIGN.md §6c): the job counters, depth gauges and operation
// timings after a known sequence of operations, the store's request counters below the retry
// policy, the spans of the operations and of a Worker's handler (a child of its claim's), and
// the Prometheus endpoint of the example.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Schema, Scope, Stream, type Tracer } from "effect"
import { HttpServer } from "effect/http"
import { TestClock } from "effect/testing"
import { costPerJob, metricsEndpoint, s3Prices } from "../examples/prometheus.ts"
import * as FaultInjection from "../src/FaultInjection.ts"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as Worker from "../src/Worker.ts"
import { bytes } from "./utils/exits.ts"
import { series, valueOf, withRegistry } from "./utils/metrics.ts"
import { parentOf, withSpans } from "./utils/spans.ts"
import { type AnyStore, layerOf } from "./utils/stores.ts"

const Task = Job.define("tasks", { payload: Schema.Number, maxAttempts: 2, backoff: Job.Backoff.none() })
/** A queue of its own for the endpoint's test, which reads the process's registry. */
const Report = Job.define("reports", { payload: Schema.Number })

/** A queue (and its KV) over `store`, in a scope of its own: closing it closes the queue. */
const openQueue = (store: AnyStore, scope: Scope.Scope) =>
  Effect.map(
    Layer.buildWithScope(
      JobQueue.layer({ reaperInterval: "1 second", schedulerInterval: "1 second" }).pipe(
        Layer.provide(Kv.layer()),
        Layer.provide(layerOf(store))
      ),
      scope
    ),
    (context) => Context.get(context, JobQueue.JobQueue)
  )

const memoryStore = Effect.map(Layer.build(ObjectStore.layerMemory()), (context) => Context.get(context, ObjectStore.ObjectStore))

const jobs = (event: string) => valueOf("bucketq_jobs_total", { queue: "tasks", event })
const depth = (state: string) => valueOf("bucketq_queue_depth", { queue: "tasks", state })
const oldest = valueOf("bucketq_oldest_pending_seconds", { queue: "tasks" })
const timings = (operation: string) =>
  Effect.map(series("bucketq_operation_seconds", { operation }), (state) => (state !== undefined && "buckets" in state ? state.count : 0))

describe("queue metrics", () => {
  it.effect("after enqueue 3, claim 2, ack 1, a retry, a dead-lettering, a delayed job, a cancel and a lease expiry, every counter and gauge is exact", () =>
    withRegistry(Effect.gen(function*() {
      const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
      const ids = yield* q.enqueueBatch(Task, [1, 2, 3])
      const [a, b] = yield* q.claim(Task, { max: 2 })
      yield* q.ack(a!)
      assert.strictEqual(yield* q.nack(b!, "flaky"), "Retried") // attempt 1 of 2: pending again
      const [again] = yield* q.claim(Task)
      assert.strictEqual(again!.record.id, ids[1])
      assert.strictEqual(yield* q.nack(again!, "still flaky"), "DeadLettered") // attempt 2 of 2
      yield* q.enqueue(Task, 4, { delay: "1 minute" })
      const { id: cancelled } = yield* q.enqueue(Task, 5)
      assert.strictEqual(yield* q.cancel(cancelled), "Removed")

      assert.deepStrictEqual(
        [yield* depth("pending"), yield* depth("scheduled"), yield* depth("claimed"), yield* depth("dead")],
        [1, 1, 0, 1]
      )
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual(yield* oldest, 30, "the third job has waited since it was enqueued at 0")

      // its lease expires: the reaper puts it back (attempt 1 of 2)
      const [leased] = yield* q.claim(Task, { lease: "1 second" })
      assert.strictEqual(leased!.record.id, ids[2])
      assert.deepStrictEqual([yield* depth("pending"), yield* depth("claimed"), yield* oldest], [0, 1, 0])
      yield* TestClock.adjust("2 seconds")

      const counted = {
        enqueued: yield* jobs("enqueued"),
        claimed: yield* jobs("claimed"),
        completed: yield* jobs("completed"),
        retried: yield* jobs("retried"),
        dead_lettered: yield* jobs("dead_lettered"),
        reaped: yield* jobs("reaped"),
        cancelled: yield* jobs("cancelled")
      }
      assert.deepStrictEqual(counted, { enqueued: 5, claimed: 4, completed: 1, retried: 2, dead_lettered: 1, reaped: 1, cancelled: 1 })
      assert.deepStrictEqual([yield* depth("pending"), yield* depth("claimed"), yield* oldest], [1, 0, 32])
      assert.deepStrictEqual(
        [yield* timings("enqueueBatch"), yield* timings("enqueue"), yield* timings("claim"), yield* timings("ack"), yield* timings("nack")],
        [1, 2, 3, 1, 2]
      )
    })))

  it.effect("the oldest pending job is found behind jobs of a higher priority, and counts from its run time when it was delayed", () =>
    withRegistry(Effect.gen(function*() {
      const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
      yield* q.enqueue(Task, 1, { priority: "low" })
      yield* TestClock.adjust("10 seconds")
      yield* q.enqueue(Task, 2, { priority: "high" })
      yield* q.enqueue(Task, 3, { priority: "normal", delay: "5 seconds" })
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* oldest, 20, "the low-priority job, enqueued at 0")
      const [low] = yield* q.claim(Task, { max: 3 }).pipe(Effect.map((claims) => claims.filter((c) => c.job.payload === 1)))
      assert.isDefined(low)
      // left: nothing pending (all three claimed)
      assert.strictEqual(yield* oldest, 0)
    })))

  it.effect("the priorities in use are stepped over one by one, whatever their bytes (255 is followed by 256)", () =>
    withRegistry(Effect.gen(function*() {
      const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
      yield* q.enqueue(Task, 1, { priority: 256 })
      yield* TestClock.adjust("5 seconds")
      yield* q.enqueue(Task, 2, { priority: 255 })
      yield* TestClock.adjust("5 seconds")
      yield* q.enqueue(Task, 3, { priority: 1 })
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* oldest, 20, "the job of priority 256, behind 1 and 255")
    })))

  it.effect("a queue reopened on a store with jobs exports their depth before any event, and closing it removes its series", () =>
    withRegistry(Effect.gen(function*() {
      const store = yield* memoryStore
      const first = yield* Scope.make()
      const q = yield* openQueue(store, first)
      yield* q.enqueueBatch(Task, [1, 2])
      yield* q.enqueue(Task, 3, { delay: "1 hour" })
      yield* Scope.close(first, Exit.void)
      assert.isUndefined(yield* series("bucketq_queue_depth", { queue: "tasks", state: "pending" }), "removed with the queue")

      const second = yield* Scope.make()
      yield* openQueue(store, second)
      assert.deepStrictEqual([yield* depth("pending"), yield* depth("scheduled")], [2, 1])
      assert.strictEqual(yield* jobs("enqueued"), 3, "the counters of the first queue are the process's: they stay")
      yield* Scope.close(second, Exit.void)
    })))
})

describe("store metrics", () => {
  it.effect("a listing counts one request per page of 1000 keys, and none is counted for the keys of a refused request", () =>
    withRegistry(Effect.gen(function*() {
      const store = yield* memoryStore
      yield* Effect.forEach(Array.from({ length: 2001 }, (_, i) => `k/${String(i).padStart(4, "0")}`), (key) => store.put(key, bytes("x")), {
        discard: true
      })
      assert.strictEqual((yield* Stream.runCollect(store.list("k/"))).length, 2001)
      assert.strictEqual(yield* valueOf("bucketq_store_requests_total", { kind: "list" }), 3)
      yield* Stream.runCollect(store.list("k/", { startAfter: "k/1000" }))
      assert.strictEqual(yield* valueOf("bucketq_store_requests_total", { kind: "list" }), 4, "the 1000 keys after k/1000: one page")
      assert.strictEqual(yield* valueOf("bucketq_store_bytes_total", { kind: "put", direction: "written" }), 2001)
      // an invalid key is refused before the store: not a request
      assert.isTrue(Exit.isFailure(yield* Effect.exit(store.get("bad//key"))))
      assert.strictEqual(yield* valueOf("bucketq_store_requests_total", { kind: "get" }), 0)
    })))

  it.effect("every attempt that reaches the backend is counted: a put whose responses are lost counts each retry", () =>
    withRegistry(Effect.gen(function*() {
      const context = yield* Layer.build(
        FaultInjection.layer({ seed: 1, faults: { put: { lostResponseRate: 1 } }, retry: { maxAttempts: 3, base: "0 millis" } }).pipe(
          Layer.provide(ObjectStore.layerMemory({ retry: false }))
        )
      )
      const store = Context.get(context, ObjectStore.ObjectStore)
      assert.isTrue(Exit.isFailure(yield* Effect.exit(store.put("a", bytes("hello")))))
      assert.strictEqual(yield* valueOf("bucketq_store_requests_total", { kind: "put" }), 3)
      assert.strictEqual(yield* valueOf("bucketq_store_bytes_total", { kind: "put", direction: "written" }), 15)
    })))
})

describe("spans", () => {
  it.effect("every operation runs in a span named after it, with the queue's name and the job's id", () =>
    withSpans((spans) =>
      Effect.gen(function*() {
        const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
        const { id } = yield* q.enqueue(Task, 1)
        const [claim] = yield* q.claim(Task)
        yield* q.ack(claim!)
        yield* q.stats("tasks")
        yield* q.cancel(id)
        const named = (name: string) => spans.find((s) => s.name === name)
        for (const name of ["bucketq.enqueue", "bucketq.claim", "bucketq.ack"]) {
          assert.deepStrictEqual(
            [named(name)?.attributes.get("bucketq.queue"), named(name)?.attributes.get("bucketq.job.id")],
            ["tasks", id],
            name
          )
          assert.strictEqual(named(name)?.status._tag, "Ended")
        }
        assert.strictEqual(named("bucketq.stats")?.attributes.get("bucketq.queue"), "tasks")
        assert.strictEqual(named("bucketq.cancel")?.attributes.get("bucketq.job.id"), id)
        // ids are attributes, never part of a span name (names stay few)
        assert.isTrue(spans.every((s) => !s.name.includes(id)))
      })).pipe(withRegistry))

  it.effect("a failing operation's span ends with its failure", () =>
    withSpans((spans) =>
      Effect.gen(function*() {
        const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
        yield* Effect.exit(q.stats("not a valid queue name"))
        const span = spans.find((s) => s.name === "bucketq.stats")
        assert.isTrue(span?.status._tag === "Ended" && Exit.isFailure(span.status.exit))
      })).pipe(withRegistry))

  it.live("a Worker runs each handler in a span that is a child of its claim's, and settles the job inside it", () =>
    withSpans((spans) =>
      Effect.gen(function*() {
        const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
        const handlerSpans: Array<Tracer.Span> = []
        const worker = yield* Effect.forkChild(
          Worker.run(Task, () => Effect.tap(Effect.orDie(Effect.currentSpan), (span) => Effect.sync(() => handlerSpans.push(span)))).pipe(
            Effect.provideService(JobQueue.JobQueue, q)
          )
        )
        const { id } = yield* q.enqueue(Task, 1)
        yield* q.awaitCompletion(id, { timeout: "10 seconds" })
        yield* Fiber.interrupt(worker)

        const handle = spans.find((s) => s.name === "bucketq.handle")
        assert.isDefined(handle)
        assert.strictEqual(handlerSpans[0], handle, "the handler's current span")
        const claim = parentOf(handle)
        assert.isTrue(claim?._tag === "Span" && claim.name === "bucketq.claim" && claim.attributes.get("bucketq.job.id") === id)
        assert.deepStrictEqual([handle!.attributes.get("bucketq.queue"), handle!.attributes.get("bucketq.job.id")], ["tasks", id])
        const ack = spans.find((s) => s.name === "bucketq.ack")
        assert.strictEqual(parentOf(ack), handle, "the settlement is a child of the handler's span")
      })).pipe(withRegistry))
  it.live("without a tracer installed no span is made (Effect's own exports nothing): the handler runs in none, operations are still timed", () =>
    withRegistry(Effect.gen(function*() {
      const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
      const seen: Array<boolean> = []
      const worker = yield* Effect.forkChild(
        Worker.run(Task, () => Effect.flatMap(Effect.option(Effect.currentSpan), (span) => Effect.sync(() => seen.push(span._tag === "Some")))).pipe(
          Effect.provideService(JobQueue.JobQueue, q)
        )
      )
      const { id } = yield* q.enqueue(Task, 1)
      yield* q.awaitCompletion(id, { timeout: "10 seconds" })
      yield* Fiber.interrupt(worker)
      assert.deepStrictEqual(seen, [false])
      assert.deepStrictEqual([yield* timings("enqueue"), yield* timings("ack")], [1, 1])
    })))
})

describe("Prometheus endpoint (examples/prometheus.ts)", () => {
  it.effect("the store's requests and dollars per completed job are read off the counters", () =>
    withRegistry(Effect.gen(function*() {
      const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
      yield* q.enqueueBatch(Task, [1, 2])
      assert.isUndefined(yield* costPerJob(), "no job completed yet")
      yield* Effect.forEach(yield* q.claim(Task, { max: 2 }), (claim) => q.ack(claim))
      const kinds = ["get", "head", "put", "delete", "list"] as const
      const counts = yield* Effect.forEach(kinds, (kind) => valueOf("bucketq_store_requests_total", { kind }))
      const requests = counts.reduce((a, b) => a + b, 0)
      assert.isAbove(requests, 0)
      const dollars = kinds.reduce((sum, kind, i) => sum + (counts[i]! * s3Prices[kind]) / 1000, 0)
      assert.deepStrictEqual(yield* costPerJob(), { requests: requests / 2, dollars: dollars / 2 })
    })))


  it.live("GET /metrics answers the text format with the queue's job counter, depth and the store's requests", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(metricsEndpoint(0))
      const address = Context.get(context, HttpServer.HttpServer).address
      assert.notStrictEqual(address._tag, "UnixPathAddress")
      const port = address._tag === "UnixPathAddress" ? 0 : address.port
      const q = yield* openQueue(yield* memoryStore, yield* Effect.scope)
      yield* q.enqueueBatch(Report, [1, 2])
      const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`))
      const body = yield* Effect.promise(() => response.text())
      assert.strictEqual(response.status, 200)
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/)
      assert.match(body, /^# TYPE bucketq_jobs_total counter$/m)
      assert.match(body, /^bucketq_jobs_total\{(?=[^}]*queue="reports")(?=[^}]*event="enqueued")[^}]*\} 2$/m)
      assert.match(body, /^bucketq_queue_depth\{(?=[^}]*queue="reports")(?=[^}]*state="pending")[^}]*\} 2$/m)
      assert.match(body, /^bucketq_store_requests_total\{kind="put"\} \d+$/m)
      assert.match(body, /^bucketq_operation_seconds_bucket\{(?=[^}]*operation="enqueueBatch")[^}]*\} \d+$/m)
    }))
})
