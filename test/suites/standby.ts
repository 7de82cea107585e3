// The writer record and the standby writer, written once and run on every backend under the
// TestClock: the record written at open and heartbeated with one put per takeoverAfter / 3; a
// damaged record read as Corrupt; a standby that waits while the heartbeat goes on and takes over
// within takeoverAfter plus one heartbeat once it stops (a writer whose store froze, as a killed
// process's does), with every acknowledged job; a zombie writer's late heartbeat never overwriting
// a newer writer's record, in either order of the race; two standbys racing: exactly one serves.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Fiber, Layer, Option, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as FaultInjection from "../../src/FaultInjection.ts"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import * as WriterRecord from "../../src/WriterRecord.ts"
import { reasonOf } from "../utils/exits.ts"
import { runUntilDone } from "../utils/queue.ts"
import { type AnyStore, type Backend, layerOf, serviceOf } from "../utils/stores.ts"

const Task = Job.define("tasks", { payload: Schema.Struct({ n: Schema.Number }), keepDone: "1 day" })

/** Lets real time pass too: the directory and S3 backends answer in real time. */
const realPause = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))

/** Moves virtual time on by `millis`, `step` at a time, letting real time pass in between. */
const advance = (millis: number, step = 100) =>
  Effect.gen(function*() {
    for (let t = 0; t < millis; t += step) {
      yield* TestClock.adjust(step)
      yield* realPause
    }
  })


/** Moves virtual time on `step` ms at a time (with real pauses) until `condition` holds. */
const until = (condition: Effect.Effect<boolean, unknown>, what: string, step = 10) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2000; i++) {
      if (yield* condition) return
      yield* TestClock.adjust(step)
      yield* realPause
    }
    assert.fail(`not reached: ${what}`)
  })

/** A queue writer (and its KV) over `store`, built in the test's scope. */
const writerOver = (store: AnyStore, options?: JobQueue.Options, kvOptions?: Kv.Options) =>
  Effect.map(
    Layer.build(
      JobQueue.layer(options).pipe(
        Layer.provideMerge(Kv.layer(kvOptions)),
        Layer.provide(layerOf(store))
      )
    ),
    (context) => ({ q: Context.get(context, JobQueue.JobQueue), kv: Context.get(context, Kv.Kv) })
  )

/** A standby over `store`, built in the test's scope: the build waits until it takes over. */
const standbyOver = (store: AnyStore, options?: JobQueue.StandbyOptions) =>
  Effect.map(
    Layer.build(JobQueue.layerStandby(options).pipe(Layer.provide(layerOf(store)))),
    (context) => ({ q: Context.get(context, JobQueue.JobQueue), kv: Context.get(context, Kv.Kv) })
  )

const recordOf = (store: AnyStore) =>
  Effect.map(WriterRecord.read(serviceOf(store)), (record) => Option.getOrThrowWith(record, () => new Error("no writer record")))

const heartbeatIs = (store: AnyStore, epoch: number, heartbeat: number) =>
  Effect.map(WriterRecord.read(serviceOf(store)), (r) => Option.isSome(r) && r.value.epoch === epoch && r.value.heartbeat >= heartbeat)

export const standbySuite = (backend: Backend) =>
  describe(`The writer record and the standby on ${backend.name}`, () => {
    const rawStore = Layer.build(backend.layer()) // the store's context: with the directory backend's local log

    it.effect("a writer writes its record at open and rewrites it every takeoverAfter / 3 with one put, its heartbeat one higher each time", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        assert.isTrue(Option.isNone(yield* WriterRecord.read(serviceOf(raw))), "no record before any writer")
        const { control, store } = FaultInjection.make(serviceOf(raw), { seed: 1 })
        yield* writerOver(store, { takeoverAfter: "3 seconds", address: "http://10.0.0.1:7450" })
        const opened = yield* recordOf(raw)
        assert.deepStrictEqual(
          { epoch: opened.epoch, heartbeat: opened.heartbeat, address: opened.address, pid: opened.pid },
          { epoch: 1, heartbeat: 1, address: Option.some("http://10.0.0.1:7450"), pid: process.pid }
        )
        yield* control.resetCounters
        for (let beat = 2; beat <= 11; beat++) {
          yield* TestClock.adjust(1000)
          yield* until(heartbeatIs(raw, 1, beat), `heartbeat ${beat}`)
        }
        const counters = yield* control.counters
        // ten heartbeats in ten seconds: ten puts; the KV's fence check reads one object per 10 s
        assert.strictEqual(counters.put.requests, 10)
        assert.strictEqual(counters.list.requests + counters.delete.requests + counters.head.requests, 0)
        assert.isAtMost(counters.get.requests, 1)
        assert.strictEqual((yield* recordOf(raw)).heartbeat, 11)
      }))

    it.effect("with writerRecord: false a writer writes no record; a damaged record is Corrupt to read, never a crash", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        yield* writerOver(raw, { writerRecord: false })
        yield* advance(20_000, 1000)
        assert.isTrue(Option.isNone(yield* WriterRecord.read(serviceOf(raw))))
        yield* serviceOf(raw).put(WriterRecord.key, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))
        const exit = yield* Effect.exit(WriterRecord.read(serviceOf(raw)))
        assert.strictEqual(reasonOf(exit), "Corrupt")
        assert.include(String(exit), "bad magic")
      }))

    it.effect("a standby takes a damaged record for a stopped writer: it takes over once it has not changed for takeoverAfter, and writes its own", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        yield* serviceOf(raw).put(WriterRecord.key, new TextEncoder().encode("not a writer record"))
        const standby = yield* Effect.forkChild(standbyOver(raw, { takeoverAfter: "3 seconds" }))
        yield* advance(2500)
        assert.isUndefined(standby.pollUnsafe(), "still waiting before takeoverAfter")
        yield* runUntilDone(standby, 5000)
        const { q } = yield* Fiber.join(standby)
        yield* q.enqueue(Task, { n: 1 })
        const record = yield* recordOf(raw)
        assert.strictEqual(record.epoch, 1)
      }))

    it.effect("a standby waits while the writer heartbeats; once its store freezes (a killed process) it takes over within takeoverAfter plus one heartbeat, with every acknowledged job, and the old writer is Fenced", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        const { control, store } = FaultInjection.make(serviceOf(raw), { seed: 2 })
        const old = yield* writerOver(store, { takeoverAfter: "3 seconds" })
        const ids: Array<string> = []
        for (let n = 0; n < 5; n++) ids.push((yield* old.q.enqueue(Task, { n })).id)
        const [claim] = yield* old.q.claim(Task)
        yield* old.q.ack(claim!)
        const standby = yield* Effect.forkChild(standbyOver(raw, { takeoverAfter: "3 seconds" }))
        yield* advance(30_000)
        assert.isUndefined(standby.pollUnsafe(), "a standby never takes over from a writer that heartbeats")
        // the takeover starts with the standby's manifest (its new epoch); on the directory and S3
        // backends the rest of its open takes real time while virtual time runs on, so the bound is
        // checked on the moment it starts
        const manifests = Effect.map(Stream.runCollect(serviceOf(raw).list("manifest/")), (entries) => entries.length)
        const before = yield* manifests
        yield* control.freeze
        const frozenAt = yield* Clock.currentTimeMillis
        // small steps: a request in flight (real time) lets the loop move virtual time on meanwhile,
        // 10 ms per 2 ms of real time, so the overshoot stays far below the bound's slack
        yield* until(Effect.map(manifests, (n) => n > before), "the standby's open", 10)
        const took = (yield* Clock.currentTimeMillis) - frozenAt
        assert.isAtMost(took, 3000 + 1000 + 100, `took over after ${took} ms`)
        assert.isAtLeast(took, 2000, `took over after ${took} ms`)
        yield* runUntilDone(standby, 10_000)
        const { kv, q } = yield* Fiber.join(standby)
        assert.strictEqual((yield* kv.stats).epoch, 2)
        assert.strictEqual((yield* recordOf(raw)).epoch, 2)
        for (const id of ids) assert.isTrue(Option.isSome(yield* q.get(id)), `job ${id} is there`)
        assert.strictEqual((yield* q.get(claim!.job.id)).pipe(Option.map((j) => j.status), Option.getOrUndefined), "Done")
        assert.deepStrictEqual(yield* q.stats("tasks"), { queue: "tasks", pending: 4, scheduled: 0, claimed: 0, done: 1, dead: 0 })
        // the old writer, its store working again (its frozen requests hang for good): Fenced
        yield* control.unfreeze
        assert.strictEqual(reasonOf(yield* Effect.exit(old.q.enqueue(Task, { n: 99 }))), "Fenced")
        // the new writer heartbeats
        const beat = (yield* recordOf(raw)).heartbeat
        yield* TestClock.adjust(1000)
        yield* until(heartbeatIs(raw, 2, beat + 1), "the new writer's heartbeat")
      }))

    it.effect("a zombie writer's heartbeat landing late, after the standby's record, fails its condition: the record stays the newer writer's and the zombie heartbeats no more", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        const { control, store } = FaultInjection.make(serviceOf(raw), { seed: 3 })
        // no fence check: the zombie learns of the newer writer from the record alone
        const zombie = yield* writerOver(store, { takeoverAfter: "3 seconds" }, { fenceCheckInterval: false })
        // from now on each of its heartbeats takes 20 s to land
        yield* control.setFaults({ put: { latency: { _tag: "Fixed", millis: 20_000 }, keyPrefix: WriterRecord.key } })
        const standby = yield* Effect.forkChild(standbyOver(raw, { takeoverAfter: "3 seconds" }))
        yield* runUntilDone(standby, 10_000)
        const { kv } = yield* Fiber.join(standby)
        assert.strictEqual((yield* kv.stats).epoch, 2)
        yield* advance(30_000) // the zombie's late put lands at 21 s
        assert.strictEqual((yield* recordOf(raw)).epoch, 2)
        yield* control.resetCounters
        yield* advance(30_000)
        assert.strictEqual((yield* control.counters).put.requests, 0, "the zombie heartbeats no more")
        assert.strictEqual((yield* recordOf(raw)).epoch, 2)
        assert.isTrue(Option.isNone(yield* zombie.kv.failure), "it stopped heartbeating without a fence check")
      }))

    it.effect("a newer writer's first record put, overtaken by an older writer's heartbeat, reads again and wins; the older one then stops heartbeating", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        const counting = FaultInjection.make(serviceOf(raw), { seed: 4 })
        yield* writerOver(counting.store, { takeoverAfter: "30 seconds" }, { fenceCheckInterval: false }) // beats at 10 s, 20 s…
        const slow = FaultInjection.make(serviceOf(raw), { seed: 5, faults: { put: { latency: { _tag: "Fixed", millis: 2000 }, keyPrefix: WriterRecord.key } } })
        yield* advance(9500)
        // opens at 9.5 s, reads the record, puts it at 11.5 s; the older writer's heartbeat lands at 10 s
        const newer = yield* Effect.forkChild(writerOver(slow.store, { takeoverAfter: "30 seconds" }))
        yield* runUntilDone(newer, 10_000)
        yield* Fiber.join(newer)
        const record = yield* recordOf(raw)
        assert.deepStrictEqual([record.epoch, record.heartbeat], [2, 1])
        yield* advance(15_000) // the older writer's heartbeat at 20 s fails its condition and finds epoch 2
        yield* counting.control.resetCounters
        yield* advance(60_000)
        assert.strictEqual((yield* counting.control.counters).put.requests, 0, "the older writer heartbeats no more")
        const later = yield* recordOf(raw)
        assert.strictEqual(later.epoch, 2)
        assert.isAbove(later.heartbeat, 1, "the newer writer heartbeats")
      }))

    it.effect("a standby that finds a newer writer's record while it opens closes what it opened and waits again; it takes over once that writer stops", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        // the standby's record puts take 2 s to land: a writer opening meanwhile gets its record in first
        const slow = FaultInjection.make(serviceOf(raw), { seed: 8, faults: { put: { latency: { _tag: "Fixed", millis: 2000 }, keyPrefix: WriterRecord.key } } })
        const standby = yield* Effect.forkChild(standbyOver(slow.store, { takeoverAfter: "3 seconds" }))
        yield* advance(500) // no record: the standby opened at once (epoch 1); its record put is in flight
        const { control, store } = FaultInjection.make(serviceOf(raw), { seed: 9 })
        // opened while virtual time moves: an open that meets the standby's in a race backs off on the clock
        const opening = yield* Effect.forkChild(writerOver(store, { takeoverAfter: "3 seconds" }))
        yield* until(Effect.sync(() => opening.pollUnsafe() !== undefined), "the newer writer open")
        const other = yield* Fiber.join(opening)
        assert.strictEqual((yield* other.kv.stats).epoch, 2)
        yield* advance(10_000)
        assert.isUndefined(standby.pollUnsafe(), "the standby waits again while the newer writer heartbeats")
        assert.strictEqual((yield* recordOf(raw)).epoch, 2)
        yield* other.q.enqueue(Task, { n: 7 })
        yield* control.freeze
        yield* runUntilDone(standby, 10_000)
        const { kv, q } = yield* Fiber.join(standby)
        assert.strictEqual((yield* kv.stats).epoch, 3)
        assert.strictEqual((yield* q.stats("tasks")).pending, 1)
        yield* until(Effect.map(recordOf(raw), (r) => r.epoch === 3), "the standby's record")
      }))

    it.effect("two standbys racing for a stopped writer's store: exactly one serves, the other waits again or is fenced", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        const { control, store } = FaultInjection.make(serviceOf(raw), { seed: 6 })
        const old = yield* writerOver(store, { takeoverAfter: "3 seconds" })
        yield* old.q.enqueue(Task, { n: 1 })
        const a = yield* Effect.forkChild(standbyOver(raw, { takeoverAfter: "3 seconds" }))
        const b = yield* Effect.forkChild(standbyOver(raw, { takeoverAfter: "3 seconds" }))
        yield* advance(1000)
        yield* control.freeze
        yield* advance(20_000)
        const serving: Array<JobQueue.Service> = []
        for (const fiber of [a, b]) {
          const exit = fiber.pollUnsafe()
          if (exit === undefined) continue // waiting again: the standby of the winner
          assert.strictEqual(exit._tag, "Success", String(exit))
          if (exit._tag !== "Success") continue
          if (Option.isNone(yield* exit.value.kv.failure)) serving.push(exit.value.q)
          else assert.strictEqual(reasonOf(yield* Effect.exit(exit.value.q.enqueue(Task, { n: 2 }))), "Fenced")
        }
        assert.strictEqual(serving.length, 1, "exactly one standby serves")
        assert.strictEqual((yield* serving[0]!.stats("tasks")).pending, 1)
      }))

    it.effect("two standbys on a store without a record both open at once: exactly one ends up serving", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        const a = yield* Effect.forkChild(standbyOver(raw, { takeoverAfter: "3 seconds" }))
        const b = yield* Effect.forkChild(standbyOver(raw, { takeoverAfter: "3 seconds" }))
        // the opens take real time on a real backend (more on a loaded machine): wait for one to
        // serve, then long enough that the other has finished its own attempt too
        yield* until(Effect.sync(() => [a, b].some((fiber) => fiber.pollUnsafe()?._tag === "Success")), "a standby serving", 100)
        yield* advance(10_000)
        let serving = 0
        for (const fiber of [a, b]) {
          const exit = fiber.pollUnsafe()
          if (exit === undefined || exit._tag !== "Success") continue
          if (Option.isNone(yield* exit.value.kv.failure)) serving++
        }
        assert.strictEqual(serving, 1, "exactly one standby serves")
      }))

    it.effect("options are checked before the store is read: takeoverAfter under 1 second, infinite or not a duration, writerRecord false, a bad address", () =>
      Effect.gen(function*() {
        const raw = yield* rawStore
        const { control, store } = FaultInjection.make(serviceOf(raw), { seed: 7 })
        const refused = [
          { takeoverAfter: "999 millis" },
          { takeoverAfter: 0 },
          { takeoverAfter: Infinity },
          { takeoverAfter: "soon" },
          { writerRecord: false },
          { address: "" },
          { kv: "fast" }
        ]
        for (const options of refused) {
          const exit = yield* Effect.exit(standbyOver(store, options as JobQueue.StandbyOptions))
          assert.strictEqual(reasonOf(exit), "InvalidOption", JSON.stringify(options))
        }
        const counters = yield* control.counters
        assert.strictEqual(counters.get.requests + counters.list.requests + counters.put.requests, 0)
        const bad = yield* Effect.exit(writerOver(store, { takeoverAfter: "500 millis" }))
        assert.strictEqual(reasonOf(bad), "InvalidOption")
      }))
  })
