// The operations that carry a definition, over the connection: a writer child process on the
// directory backend (test/fixtures/queueServer.ts, which holds none of these definitions) and
// this process as the client, whose `JobQueue` (QueueClient.layer) encodes and decodes. Workers
// run unchanged on it.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { NodeWS } from "@effect/platform-node"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option, Redacted, Schema } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as QueueClient from "../src/QueueClient.ts"
import { QueueRpcs, tokenHeader } from "../src/remote/protocol.ts"
import * as Worker from "../src/Worker.ts"
import { reasonOf } from "./utils/exits.ts"
import { parentOf, withSpans } from "./utils/spans.ts"
import { type Child, startChild } from "./utils/child.ts"

const token = "s3cret-token-for-job-tests"

const Render = Job.define("render", {
  payload: Schema.Struct({ page: Schema.String, n: Schema.Number }),
  result: Schema.Struct({ url: Schema.String }),
  backoff: Job.Backoff.none()
})
const Notify = Job.define("notify", { payload: Schema.Struct({ user: Schema.String }), maxAttempts: 2, backoff: Job.Backoff.none() })
const Slow = Job.define("slow", { payload: Schema.Number, leaseDuration: "600 millis" })
const Traced = Job.define("traced", { payload: Schema.Number })
/** The queue of `Notify` read with another schema: its payloads do not decode with it. */
const NotifyAsNumber = Job.define("notify", { payload: Schema.Number })

/** The client's queue for `url`, built in the test's scope. */
const clientOf = (url: string) =>
  Effect.map(Layer.build(QueueClient.layer({ url, token: Redacted.make(token) })), (context) => Context.get(context, JobQueue.JobQueue))

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

describe("the JobQueue of QueueClient: definitions stay in the client, the writer stores", () => {
  let directory: string
  let child: Child
  let url: string

  beforeAll(async () => {
    directory = mkdtempSync(path.join(tmpdir(), "bucketq-client-"))
    child = startChild("queueServer.ts", [directory, "0", token])
    const line = await child.waitForLine((l) => l.startsWith("listening "))
    url = `ws://127.0.0.1:${line.split(" ")[1]}/rpc`
  }, 30_000)

  afterAll(async () => {
    child.process.kill("SIGKILL")
    await child.exited
    rmSync(directory, { recursive: true, force: true })
  })

  it.live("a Worker in this process runs the writer's jobs: each done once, its result kept and read back decoded", () =>
    Effect.gen(function*() {
      const queue = yield* clientOf(url)
      const ids = yield* queue.enqueueBatch(Render, Array.from({ length: 12 }, (_, n) => ({ page: `p${n}`, n })))
      const single = yield* queue.enqueue(Render, { page: "solo", n: 99 }, { priority: "high" })
      let runs = 0
      const worker = yield* Effect.forkChild(
        Worker.run(Render, (payload) => Effect.sync(() => ++runs).pipe(Effect.as({ url: `cdn/${payload.page}/${payload.n}` })), {
          concurrency: 4
        }).pipe(Effect.provideService(JobQueue.JobQueue, queue))
      )
      for (const [i, id] of ids.entries()) {
        const outcome = yield* queue.awaitCompletion(Render, id, { timeout: "20 seconds" })
        assert.strictEqual(outcome._tag, "Completed")
        if (outcome._tag === "Completed") assert.deepStrictEqual(outcome.result, Option.some({ url: `cdn/p${i}/${i}` }))
      }
      const solo = yield* queue.awaitCompletion(Render, single.id, { timeout: "20 seconds" })
      assert.deepStrictEqual(solo._tag === "Completed" ? solo.result : undefined, Option.some({ url: "cdn/solo/99" }))
      const done = Option.getOrThrow(yield* queue.get(Render, single.id))
      assert.deepStrictEqual([done.status, done.payload, done.result], ["Done", { page: "solo", n: 99 }, Option.some({ url: "cdn/solo/99" })])
      yield* Fiber.interrupt(worker)
      assert.strictEqual(runs, 13)
      const stats = yield* queue.stats("render")
      assert.deepStrictEqual([stats.pending, stats.claimed, stats.done, stats.dead], [0, 0, 13, 0])
      const listed = yield* queue.list(Render, "Done", { limit: 100 })
      assert.strictEqual(listed.jobs.length, 13)
      assert.isTrue(listed.jobs.every((job) => job.payloadError === undefined && typeof job.payload.page === "string"))
    }), 60_000)

  it.live("a client's operations run in the spans a local queue's do, and its Worker's handler in a child span of its claim's", () =>
    withSpans((spans) =>
      Effect.gen(function*() {
        const queue = yield* clientOf(url)
        const { id } = yield* queue.enqueue(Traced, 1)
        const worker = yield* Effect.forkChild(Worker.run(Traced, () => Effect.void).pipe(Effect.provideService(JobQueue.JobQueue, queue)))
        assert.strictEqual((yield* queue.awaitCompletion(id, { timeout: "20 seconds" }))._tag, "Completed")
        yield* Fiber.interrupt(worker)
        const enqueue = spans.find((s) => s.name === "bucketq.enqueue")
        assert.deepStrictEqual([enqueue?.attributes.get("bucketq.queue"), enqueue?.attributes.get("bucketq.job.id")], ["traced", id])
        const handle = spans.find((s) => s.name === "bucketq.handle" && s.attributes.get("bucketq.job.id") === id)
        const claim = parentOf(handle)
        assert.isTrue(claim?._tag === "Span" && claim.name === "bucketq.claim" && claim.attributes.get("bucketq.job.id") === id)
        const ack = spans.find((s) => s.name === "bucketq.ack" && s.attributes.get("bucketq.job.id") === id)
        assert.strictEqual(parentOf(ack), handle)
      })), 60_000)

  it.live("settlements over the connection: effects with the ack, a nack that retries then dead-letters with its effects, release, extendLease, discard", () =>
    Effect.gen(function*() {
      const queue = yield* clientOf(url)
      const { id } = yield* queue.enqueue(Notify, { user: "ann" }, { kv: { "seen/ann": new Uint8Array([1]) } })
      assert.deepStrictEqual(yield* queue.kv.get("seen/ann"), Option.some(new Uint8Array([1])))
      const [first] = yield* queue.claim(Notify)
      assert.deepStrictEqual(first!.job.payload, { user: "ann" })
      yield* queue.extendLease(first!, "1 minute")
      yield* queue.release(first!)
      const [again] = yield* queue.claim(Notify)
      assert.strictEqual(again!.job.id, id)
      assert.strictEqual(yield* queue.nack(again!, "smtp 451", { effects: { kv: { "never": new Uint8Array([9]) } } }), "Retried")
      assert.isTrue(Option.isNone(yield* queue.kv.get("never")), "a nack that retries applies no effects")
      const [last] = yield* queue.claim(Notify, { wait: "5 seconds" })
      const follow = yield* queue.nack(last!, "smtp 550", {
        effects: { enqueue: [[Render, { page: "bounce", n: 1 }, { dedupKey: "bounce-ann" }]], kv: { "bounced/ann": new Uint8Array([2]) } }
      })
      assert.strictEqual(follow, "DeadLettered")
      assert.deepStrictEqual(yield* queue.kv.get("bounced/ann"), Option.some(new Uint8Array([2])))
      const history = (yield* queue.history(id)).map((a) => [a.outcome, a.error ?? ""])
      assert.deepStrictEqual(history, [["Released", ""], ["Retried", "smtp 451"], ["DeadLettered", "smtp 550"]])
      const [bounce] = yield* queue.claim(Render)
      assert.deepStrictEqual(bounce!.job.payload, { page: "bounce", n: 1 })
      yield* queue.ack(bounce!, { result: { url: "cdn/bounce" }, kvDelete: ["seen/ann"] })
      assert.isTrue(Option.isNone(yield* queue.kv.get("seen/ann")))
      // a stale claim: settled already, so ClaimLost, and its effects are not applied
      assert.strictEqual(reasonOf(yield* Effect.exit(queue.ack(bounce!, { kv: { "stale": new Uint8Array([3]) } }))), "ClaimLost")
      assert.isTrue(Option.isNone(yield* queue.kv.get("stale")))
      // cancel of a claimed job: the holder sees it at its next renewal, then discards
      const cancelled = yield* queue.enqueue(Notify, { user: "bob" })
      const [held] = yield* queue.claim(Notify)
      assert.strictEqual(yield* queue.cancel(cancelled.id), "Requested")
      assert.strictEqual(reasonOf(yield* Effect.exit(queue.extendLease(held!, "1 minute"))), "CancelRequested")
      yield* queue.discard(held!)
      assert.isTrue(Option.isNone(yield* queue.get(cancelled.id)))
    }), 60_000)

  it.live("a payload that does not decode with the client's definition is dead-lettered by the client, never handed over", () =>
    Effect.gen(function*() {
      const queue = yield* clientOf(url)
      const { id } = yield* queue.enqueue(Notify, { user: "carol" })
      assert.deepStrictEqual(yield* queue.claim(NotifyAsNumber), [])
      const dead = Option.getOrThrow(yield* queue.get(id))
      assert.strictEqual(dead.status, "Dead")
      assert.match(dead.lastError ?? "", /payload does not decode/)
      yield* queue.requeueDead(id)
      const [claim] = yield* queue.claim(Notify)
      assert.deepStrictEqual(claim!.job.payload, { user: "carol" })
      yield* queue.ack(claim!)
    }), 60_000)

  it.live("a lease renewed over the connection keeps a job longer than its lease: it runs once", () =>
    Effect.gen(function*() {
      const queue = yield* clientOf(url)
      const { id } = yield* queue.enqueue(Slow, 7)
      let runs = 0
      const worker = yield* Effect.forkChild(
        Worker.run(Slow, () => Effect.andThen(Effect.sync(() => ++runs), sleep(2_000)), { renewEvery: "200 millis" }).pipe(
          Effect.provideService(JobQueue.JobQueue, queue)
        )
      )
      const outcome = yield* queue.awaitCompletion(id, { timeout: "20 seconds" })
      assert.strictEqual(outcome._tag, "Completed")
      yield* Fiber.interrupt(worker)
      assert.strictEqual(runs, 1)
    }), 60_000)

  it.live("large payloads cross in messages of bounded size: three 40 MiB enqueues made at once each arrive, and a claim answers with as many as fit, the others claimed next", () =>
    Effect.gen(function*() {
      const queue = yield* clientOf(url)
      const Big = Job.define("big", { payload: Schema.Uint8Array })
      const size = 40 * 1024 * 1024
      const payloads = [1, 2, 3].map((n) => new Uint8Array(size).fill(n))
      // together they are more than one message may hold: each goes in a request of its own
      const ids = yield* Effect.all(payloads.map((p) => queue.enqueue(Big, p)), { concurrency: "unbounded" })
      assert.strictEqual(new Set(ids.map((r) => r.id)).size, 3)
      const seen: Array<number> = []
      for (let round = 0; round < 3; round++) {
        const claims = yield* queue.claim(Big, { max: 3 })
        // one 40 MiB payload per answer: a second would pass the answer's payload bound
        assert.strictEqual(claims.length, 1)
        assert.strictEqual(claims[0]!.job.payload.length, size)
        assert.strictEqual(claims[0]!.job.attempts, 1, "the jobs given back were released: their attempts not counted")
        seen.push(claims[0]!.job.payload[0]!)
        yield* queue.ack(claims[0]!)
      }
      assert.deepStrictEqual(seen.sort(), [1, 2, 3])
      assert.deepStrictEqual(yield* queue.claim(Big, { max: 3 }), [])
    }), 60_000)

  it.live("schedule over the connection: the payload encoded by the client, the schedule stored by the writer", () =>
    Effect.gen(function*() {
      const queue = yield* clientOf(url)
      const info = yield* queue.schedule(Notify, { key: "nightly", cron: "0 3 * * *", timezone: "Europe/Paris", payload: { user: "all" } })
      assert.deepStrictEqual([info.key, info.queue, info.timezone], ["nightly", "notify", "Europe/Paris"])
      assert.isTrue((yield* queue.schedules()).some((s) => s.key === "nightly"))
      assert.strictEqual(reasonOf(yield* Effect.exit(queue.schedule(Notify, { key: "bad", cron: "nope", payload: { user: "x" } }))), "InvalidOption")
      assert.strictEqual(yield* queue.unschedule("nightly"), "Removed")
    }), 60_000)

  it.live("a client that skips its checks is refused by the writer: bad settings, options, sizes and claims are InvalidOption, each item of a batch on its own, nothing bad stored", () =>
    Effect.gen(function*() {
      const queue = yield* clientOf(url)
      const before = yield* queue.stats("raw")
      const raw = yield* RpcClient.make(QueueRpcs).pipe(Effect.provide(
        yield* Layer.build(RpcClient.layerProtocolSocket().pipe(Layer.provide([
          Layer.effect(Socket.Socket)(Socket.makeWebSocket(url, { headers: { [tokenHeader]: `Bearer ${token}` } })).pipe(
            Layer.provide(NodeWS.layerWebSocketConstructor)
          ),
          RpcSerialization.layerSchemaBinary()
        ])))
      ))
      const settings = {
        queue: "raw",
        maxAttempts: 3,
        priority: 1000,
        leaseMillis: 30_000,
        deadRetentionMillis: 1000,
        resultRetentionMillis: 1000,
        version: 1
      }
      const payload = new Uint8Array([0xa1, 0x61]) // msgpack "a"
      /** One raw enqueue, as the batch the client would send; its item's outcome as the call's. */
      const enqueue = (itemSettings: typeof settings, options: Record<string, unknown>, index = 0) =>
        Effect.flatMap(
          raw.Enqueue({ settings: [itemSettings], items: [{ settings: index, payload, options }] }),
          ([outcome]) => outcome!._tag === "Ok" ? Effect.succeed(outcome!.value) : Effect.fail(outcome!.error)
        )
      const refused: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }>> = [
        enqueue({ ...settings, maxAttempts: 0 }, {}),
        enqueue({ ...settings, queue: "../etc" }, {}),
        enqueue(settings, { priority: -5 }),
        enqueue(settings, { delayMillis: Number.NaN }),
        enqueue(settings, { kv: [{ key: "", value: new Uint8Array(1) }] }),
        enqueue(settings, {}, 1), // an item naming settings the batch does not have
        enqueue(settings, {}, -1),
        raw.Claim({ queue: "raw", max: 1.5, leaseMillis: 1000 }),
        raw.Claim({ queue: "raw", max: 1, leaseMillis: -1 })
      ]
      for (const call of refused) {
        const error = yield* Effect.flip(call)
        assert.include(["InvalidOption", "InvalidQueueName"], error._tag, String(error))
      }
      // a batch answers each item on its own: a bad item fails alone, the good one is stored
      const mixed = yield* raw.Enqueue({
        settings: [settings, { ...settings, maxAttempts: 0 }],
        items: [{ settings: 1, payload, options: {} }, { settings: 0, payload, options: { id: "01ARZ3NDEKTSV4RRFFQ69G5FAW" } }]
      })
      assert.deepStrictEqual(mixed.map((o) => o._tag), ["Failed", "Ok"])
      yield* raw.Ack({ settings: [settings], items: [] })
      const [unknownClaim] = yield* raw.Ack({
        settings: [settings],
        items: [{ claim: { id: "01ARZ3NDEKTSV4RRFFQ69G5FAV", token: "forged" }, settings: 0 }]
      })
      assert.strictEqual(unknownClaim!._tag === "Failed" && unknownClaim!.error._tag, "ClaimLost")
      assert.deepStrictEqual(yield* queue.stats("raw"), { ...before, pending: before.pending + 1 })
    }), 60_000)
})
