// The job queue's semantics (taquba 0.11, reference §1.8) under TestClock, written once and run
// on every backend.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, Layer, Option, Schema, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Msgpack from "../../src/internal/msgpack.ts"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import * as Keys from "../../src/queue/keys.ts"
import { reasonOf } from "../utils/exits.ts"
import { type AnyStore, type Backend, layerOf, serviceOf } from "../utils/stores.ts"
import { openQueue, openQueueAndKv } from "../utils/queue.ts"

const Email = Job.define("emails", {
  payload: Schema.Struct({ to: Schema.String }),
  backoff: Job.Backoff.exponential({ base: "1 second", max: "5 minutes" })
})
const NoBackoff = Job.define("fast", { payload: Schema.Struct({ n: Schema.Number }), backoff: Job.Backoff.none() })

export const jobQueueSuite = (backend: Backend) =>
  describe(`JobQueue on ${backend.name}`, () => {
  const storeOf = Layer.build(backend.layer()) // the store's context: with the directory backend's local log
  const fresh = Effect.flatMap(storeOf, openQueue)

  it.effect("enqueue, claim, ack: the job is gone and its completion is seen", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { created, id } = yield* q.enqueue(Email, { to: "a@b.c" }, { headers: { trace: "t1" } })
      assert.isTrue(created)
      assert.deepStrictEqual((yield* q.stats("emails")).pending, 1)
      const [claim] = yield* q.claim(Email)
      assert.deepStrictEqual([claim!.job.id, claim!.job.payload, claim!.job.attempts, claim!.job.headers], [id, { to: "a@b.c" }, 1, { trace: "t1" }])
      assert.deepStrictEqual((yield* q.stats("emails")).claimed, 1)
      const waiting = yield* Effect.forkChild(q.awaitCompletion(id), { startImmediately: true })
      yield* q.ack(claim!)
      assert.deepStrictEqual(yield* Fiber.join(waiting), { _tag: "Completed", job: Option.none() })
      assert.isTrue(Option.isNone(yield* q.get(id)))
      assert.deepStrictEqual(yield* q.stats("emails"), { queue: "emails", pending: 0, scheduled: 0, claimed: 0, done: 1, dead: 0 })
      assert.deepStrictEqual(yield* q.claim(Email), [])
    }))

  it.effect("claims go by priority (lower first), then in enqueue order", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const low = yield* q.enqueue(Email, { to: "low" }, { priority: "low" })
      const n1 = yield* q.enqueue(Email, { to: "n1" })
      const high = yield* q.enqueue(Email, { to: "high" }, { priority: "high" })
      const n2 = yield* q.enqueue(Email, { to: "n2" })
      const custom = yield* q.enqueue(Email, { to: "50" }, { priority: 50 })
      const claims = yield* q.claim(Email, { max: 10 })
      assert.deepStrictEqual(claims.map((c) => c.job.id), [custom.id, high.id, n1.id, n2.id, low.id])
    }))

  it.effect("a delayed job is scheduled, and claimable once the scheduler promotes it", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(Email, { to: "later" }, { delay: "10 seconds" })
      assert.strictEqual(Option.getOrThrow(yield* q.get(id)).status, "Scheduled")
      assert.deepStrictEqual(yield* q.claim(Email), [])
      yield* TestClock.adjust("9 seconds")
      assert.deepStrictEqual(yield* q.claim(Email), [])
      yield* TestClock.adjust("1200 millis")
      const [claim] = yield* q.claim(Email)
      assert.strictEqual(claim?.job.id, id)
    }))

  it.effect("nack retries with exponential backoff, then dead-letters when attempts are used up", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(Email, { to: "x" })
      const first = (yield* q.claim(Email))[0]!
      assert.strictEqual(yield* q.nack(first, "boom 1"), "Retried")
      const after1 = Option.getOrThrow(yield* q.get(id))
      assert.deepStrictEqual([after1.status, after1.lastError, after1.runAt], ["Scheduled", "boom 1", 1000])
      yield* TestClock.adjust("1100 millis")
      const second = (yield* q.claim(Email))[0]!
      assert.strictEqual(second.job.attempts, 2)
      assert.strictEqual(yield* q.nack(second, "boom 2"), "Retried")
      assert.strictEqual(Option.getOrThrow(yield* q.get(id)).runAt, 1100 + 2000)
      yield* TestClock.adjust("2100 millis")
      const third = (yield* q.claim(Email))[0]!
      const done = yield* Effect.forkChild(q.awaitCompletion(id), { startImmediately: true })
      assert.strictEqual(yield* q.nack(third, "boom 3"), "DeadLettered")
      const completion = yield* Fiber.join(done)
      assert.strictEqual(completion._tag === "Completed" && Option.getOrThrow(completion.job).status, "Dead")
      const dead = Option.getOrThrow(yield* q.get(id))
      assert.deepStrictEqual([dead.status, dead.attempts, dead.lastError], ["Dead", 3, "boom 3"])
      assert.strictEqual((yield* q.stats("emails")).dead, 1)
    }))

  it.effect("with no backoff a nacked job goes back to its place in line", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const a = yield* q.enqueue(NoBackoff, { n: 1 })
      yield* q.enqueue(NoBackoff, { n: 2 })
      const [claimA] = yield* q.claim(NoBackoff)
      assert.strictEqual(yield* q.nack(claimA!, "again"), "Retried")
      const [next] = yield* q.claim(NoBackoff)
      assert.deepStrictEqual([next!.job.id, next!.job.attempts], [a.id, 2])
    }))

  it.effect("deadLetter does not consume attempts", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(Email, { to: "x" }, { maxAttempts: 5 })
      yield* q.deadLetter((yield* q.claim(Email))[0]!, "permanent")
      const dead = Option.getOrThrow(yield* q.get(id))
      assert.deepStrictEqual([dead.status, dead.attempts, dead.lastError], ["Dead", 1, "permanent"])
    }))

  it.effect("an expired lease is requeued by the reaper; the old claim's settlement is ClaimLost", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(Email, { to: "x" })
      const stale = (yield* q.claim(Email, { lease: "10 seconds" }))[0]!
      yield* TestClock.adjust("9 seconds")
      assert.deepStrictEqual(yield* q.claim(Email), [])
      yield* TestClock.adjust("2 seconds")
      const again = (yield* q.claim(Email))[0]!
      assert.deepStrictEqual([again.job.id, again.job.attempts], [id, 2])
      assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(stale))), "ClaimLost")
      assert.strictEqual(reasonOf(yield* Effect.exit(q.extendLease(stale, "1 minute"))), "ClaimLost")
      yield* q.ack(again)
      assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(again))), "ClaimLost")
    }))

  it.effect("extendLease keeps a claim alive past its first lease", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      yield* q.enqueue(Email, { to: "x" })
      const held = (yield* q.claim(Email, { lease: "10 seconds" }))[0]!
      for (let i = 0; i < 6; i++) {
        yield* TestClock.adjust("8 seconds")
        yield* q.extendLease(held, "10 seconds")
      }
      assert.deepStrictEqual(yield* q.claim(Email), [])
      yield* q.ack(held)
    }))

  it.effect("the lease of the last attempt expiring dead-letters the job", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(Email, { to: "x" }, { maxAttempts: 1 })
      yield* q.claim(Email, { lease: "5 seconds" })
      yield* TestClock.adjust("7 seconds")
      const dead = Option.getOrThrow(yield* q.get(id))
      assert.deepStrictEqual([dead.status, dead.lastError], ["Dead", "lease expired"])
    }))

  it.effect("dedup: a live key returns the existing id; the claim releases it", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const first = yield* q.enqueue(Email, { to: "a" }, { dedupKey: "welcome-a" })
      const again = yield* q.enqueue(Email, { to: "a" }, { dedupKey: "welcome-a" })
      assert.deepStrictEqual(again, { id: first.id, created: false })
      assert.strictEqual((yield* q.stats("emails")).pending, 1)
      yield* q.claim(Email)
      const third = yield* q.enqueue(Email, { to: "a" }, { dedupKey: "welcome-a" })
      assert.isTrue(third.created)
      assert.notStrictEqual(third.id, first.id)
    }))

  it.effect("cancel: pending and scheduled jobs are removed (dedup key released), a claimed one is flagged", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const pending = yield* q.enqueue(Email, { to: "p" }, { dedupKey: "k" })
      const scheduled = yield* q.enqueue(Email, { to: "s" }, { delay: "1 hour" })
      const waiting = yield* Effect.forkChild(q.awaitCompletion(pending.id), { startImmediately: true })
      assert.strictEqual(yield* q.cancel(pending.id), "Removed")
      assert.deepStrictEqual(yield* Fiber.join(waiting), { _tag: "Completed", job: Option.none() })
      assert.strictEqual(yield* q.cancel(scheduled.id), "Removed")
      assert.isTrue((yield* q.enqueue(Email, { to: "p" }, { dedupKey: "k" })).created)
      const [claim] = yield* q.claim(Email)
      const noticed = yield* Effect.forkChild(claim!.cancelled)
      yield* Effect.yieldNow
      assert.isUndefined(noticed.pollUnsafe())
      assert.strictEqual(yield* q.cancel(claim!.job.id), "Requested")
      yield* Fiber.join(noticed) // the claim holder sees the request
      assert.isTrue(Option.getOrThrow(yield* q.get(claim!.job.id)).cancelRequested)
      assert.strictEqual(yield* q.cancel("01ARZ3NDEKTSV4RRFFQ69G5FAV"), "NotFound")
      yield* q.ack(claim!)
      assert.strictEqual(yield* q.cancel(claim!.job.id), "NotFound")
    }))

  it.effect("awaitCompletion: NotFound, TimedOut, and Completed for a done job kept", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      assert.deepStrictEqual(yield* q.awaitCompletion("nope"), { _tag: "NotFound" })
      const Kept = Job.define("kept", { payload: Schema.String, keepDone: "1 hour" })
      const { id } = yield* q.enqueue(Kept, "x")
      const timing = yield* Effect.forkChild(q.awaitCompletion(id, { timeout: "5 seconds" }))
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* Fiber.join(timing), { _tag: "TimedOut" })
      yield* q.ack((yield* q.claim(Kept))[0]!)
      const done = yield* q.awaitCompletion(id, { timeout: 0 })
      assert.strictEqual(done._tag === "Completed" && Option.getOrThrow(done.job).status, "Done")
      assert.strictEqual((yield* q.stats("kept")).done, 1)
    }))

  it.effect("claim with wait is woken by an enqueue, and gives up after the wait", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const waiting = yield* Effect.forkChild(q.claim(Email, { wait: "30 seconds" }))
      yield* TestClock.adjust("1 second")
      assert.isUndefined(waiting.pollUnsafe())
      const { id } = yield* q.enqueue(Email, { to: "now" })
      const claims = yield* Fiber.join(waiting)
      assert.deepStrictEqual(claims.map((c) => c.job.id), [id])
      const empty = yield* Effect.forkChild(q.claim(Email, { wait: "30 seconds" }))
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(yield* Fiber.join(empty), [])
    }))

  it.effect("enqueueBatch: one commit, ids in order, all claimable", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const ids = yield* q.enqueueBatch(Email, [{ to: "x" }, { to: "y" }, { to: "z" }])
      assert.strictEqual(ids.length, 3)
      assert.deepStrictEqual([...ids].sort(), ids)
      const claims = yield* q.claim(Email, { max: 10 })
      assert.deepStrictEqual(claims.map((c) => c.job.payload.to), ["x", "y", "z"])
      assert.deepStrictEqual(yield* q.enqueueBatch(Email, []), [])
    }))

  it.effect("bad input is refused with typed errors and nothing written", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      // define refuses a bad name at once; an operation given a hand-built definition fails typed
      assert.throws(() => Job.define("", { payload: Schema.String }), /invalid queue name/)
      const BadQueue: Job.Definition<string> = { ...Job.define("q", { payload: Schema.String }), queue: "" }
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(BadQueue, "x"))), "InvalidQueueName")
      const LongQueue: Job.Definition<string> = { ...BadQueue, queue: "q".repeat(256) }
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(LongQueue, "x"))), "InvalidQueueName")
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Email, { to: "x" }, { id: "bad id!" }))), "InvalidJobId")
      yield* q.enqueue(Email, { to: "x" }, { id: "my-job_1" })
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Email, { to: "x" }, { id: "my-job_1" }))), "DuplicateJobId")
      const Big = Job.define("big", { payload: Schema.String })
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Big, "x".repeat(64 * 1024 * 1024 + 1)))), "PayloadTooLarge")
      const Positive = Job.define("pos", { payload: Schema.Number.check(Schema.isGreaterThan(0)) })
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Positive, -1))), "InvalidPayload")
      assert.deepStrictEqual([(yield* q.stats("big")).pending, (yield* q.stats("pos")).pending, (yield* q.stats("emails")).pending], [0, 0, 1])
    }))

  it.effect("a stored payload that no longer decodes is dead-lettered with the decode error, not thrown", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const V1 = Job.define("versioned", { payload: Schema.Struct({ name: Schema.String }) })
      const V2 = Job.define("versioned", { payload: Schema.Struct({ name: Schema.String, age: Schema.Number }) })
      const { id } = yield* q.enqueue(V1, { name: "old" })
      const good = yield* q.enqueue(V2, { name: "new", age: 3 })
      const claims = yield* q.claim(V2, { max: 10 })
      assert.deepStrictEqual(claims.map((c) => c.job.id), [good.id])
      const dead = Option.getOrThrow(yield* q.get(id))
      assert.strictEqual(dead.status, "Dead")
      assert.include(dead.lastError, "payload does not decode")
    }))

  it.effect("jobs claimed by a process that died are requeued at the next open, the attempt counted", () =>
    Effect.gen(function*() {
      const store = yield* storeOf
      const first = yield* openQueue(store)
      const a = yield* first.enqueue(Email, { to: "a" })
      const b = yield* first.enqueue(Email, { to: "b" }, { maxAttempts: 1 })
      yield* first.claim(Email, { max: 2 })
      const kv = yield* first.stats("emails")
      assert.strictEqual(kv.claimed, 2)
      // the first process is abandoned (crash); its claims were not durable, but later durable
      // commits carried them: enqueue something durable to flush
      yield* first.enqueue(Email, { to: "flush" }, { priority: "low" })
      const second = yield* openQueue(store)
      const requeued = Option.getOrThrow(yield* second.get(a.id))
      assert.deepStrictEqual([requeued.status, requeued.attempts], ["Pending", 1])
      const dead = Option.getOrThrow(yield* second.get(b.id))
      assert.deepStrictEqual([dead.status, dead.lastError], ["Dead", "claim interrupted by process exit"])
      const [claim] = yield* second.claim(Email)
      assert.deepStrictEqual([claim!.job.id, claim!.job.attempts], [a.id, 2])
      // the first process is fenced
      assert.strictEqual(reasonOf(yield* Effect.exit(first.enqueue(Email, { to: "zombie" }))), "Fenced")
    }))

  // ---- ports of taquba's queue tests (reference §3) ------------------------------------------

  it.effect("a claim finds a job enqueued after empty polls, and a batch after the queue drained", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      assert.deepStrictEqual(yield* q.claim(Email), [])
      assert.deepStrictEqual(yield* q.claim(Email), [])
      const { id } = yield* q.enqueue(Email, { to: "x" })
      const [claim] = yield* q.claim(Email)
      assert.strictEqual(claim?.job.id, id)
      yield* q.ack(claim!)
      assert.deepStrictEqual(yield* q.claim(Email), [])
      const [batchId] = yield* q.enqueueBatch(Email, [{ to: "y" }])
      assert.strictEqual((yield* q.claim(Email))[0]?.job.id, batchId)
    }))

  it.effect("one enqueue wakes one waiting claim with a job; a batch of two, two", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const waiters = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(q.claim(Email, { wait: "10 seconds" })))
      yield* TestClock.adjust("1 second")
      yield* q.enqueue(Email, { to: "one" })
      yield* TestClock.adjust("10 seconds")
      const got = (yield* Fiber.joinAll(waiters)).map((claims) => claims.length)
      assert.deepStrictEqual([...got].sort(), [0, 0, 1])
      const more = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(q.claim(Email, { wait: "10 seconds" })))
      yield* TestClock.adjust("1 second")
      yield* q.enqueueBatch(Email, [{ to: "a" }, { to: "b" }])
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual((yield* Fiber.joinAll(more)).map((c) => c.length).sort(), [0, 1, 1])
    }))

  it.effect("claim batches take jobs in order up to max; max 0 claims nothing", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const ids = yield* Effect.forEach(["a", "b", "c", "d", "e"], (to) => Effect.map(q.enqueue(Email, { to }), (r) => r.id))
      assert.deepStrictEqual(yield* q.claim(Email, { max: 0 }), [])
      const first = yield* q.claim(Email, { max: 3 })
      assert.deepStrictEqual(first.map((c) => [c.job.id, c.job.status, c.job.attempts]), ids.slice(0, 3).map((id) => [id, "Claimed", 1]))
      assert.deepStrictEqual((yield* q.claim(Email, { max: 3 })).map((c) => c.job.id), ids.slice(3))
    }))

  it.effect("FIFO holds across a claim batch of 20, and ids increase within one millisecond", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const ids: Array<string> = []
      for (let i = 0; i < 20; i++) ids.push((yield* q.enqueue(NoBackoff, { n: i })).id) // TestClock stands still
      assert.isTrue(ids.every((id, i) => i === 0 || id > ids[i - 1]!))
      assert.isTrue(ids.every((id) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)))
      assert.deepStrictEqual((yield* q.claim(NoBackoff, { max: 20 })).map((c) => c.job.id), ids)
    }))

  it.effect("invalid id overrides are refused and nothing is enqueued", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      for (const id of ["", "has:colon", "has space", "has/slash", "a".repeat(129)]) {
        assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Email, { to: "x" }, { id }))), "InvalidJobId", id)
      }
      assert.deepStrictEqual(yield* q.claim(Email), [])
      const { id } = yield* q.enqueue(Email, { to: "x" }, { id: "user-42-welcome" })
      assert.strictEqual((yield* q.claim(Email))[0]?.job.id, id)
    }))

  it.effect("queues are isolated from each other", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const Resize = Job.define("resize", { payload: Schema.Struct({ to: Schema.String }) })
      const e = yield* q.enqueue(Email, { to: "mail" })
      const r = yield* q.enqueue(Resize, { to: "image" })
      assert.deepStrictEqual((yield* q.claim(Resize, { max: 5 })).map((c) => c.job.id), [r.id])
      assert.deepStrictEqual((yield* q.claim(Email, { max: 5 })).map((c) => c.job.id), [e.id])
      assert.deepStrictEqual([yield* q.claim(Email), yield* q.claim(Resize)], [[], []])
    }))

  it.effect("the reaper leaves live leases alone and ignores settled claims", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      yield* q.enqueue(Email, { to: "live" })
      const live = (yield* q.claim(Email, { lease: "300 seconds" }))[0]!
      yield* q.enqueue(Email, { to: "acked" })
      const acked = (yield* q.claim(Email, { lease: "1 second" }))[0]!
      yield* q.ack(acked)
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* q.claim(Email), [])
      yield* q.ack(live)
    }))

  it.effect("a nacked job keeps its priority and is claimed before normal ones", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      yield* q.enqueue(NoBackoff, { n: 1 })
      const high = yield* q.enqueue(NoBackoff, { n: 2 }, { priority: "high" })
      const first = (yield* q.claim(NoBackoff))[0]!
      assert.deepStrictEqual([first.job.id, first.job.priority], [high.id, Job.Priority.high])
      yield* q.nack(first, "again")
      const again = (yield* q.claim(NoBackoff))[0]!
      assert.deepStrictEqual([again.job.id, again.job.attempts], [high.id, 2])
    }))

  it.effect("runAt in the past is pending at once; in the future, scheduled", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      yield* TestClock.adjust("1 minute")
      const past = yield* q.enqueue(Email, { to: "past" }, { runAt: 1_000 })
      const future = yield* q.enqueue(Email, { to: "future" }, { runAt: new Date(3_600_000) })
      assert.deepStrictEqual([(yield* q.stats("emails")).pending, (yield* q.stats("emails")).scheduled], [1, 1])
      assert.strictEqual((yield* q.claim(Email))[0]?.job.id, past.id)
      assert.strictEqual(Option.getOrThrow(yield* q.get(future.id)).runAt, 3_600_000)
    }))

  it.effect("stats follow a job's life: pending, claimed, scheduled, dead", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const counts = Effect.map(q.stats("emails"), (s) => [s.pending, s.scheduled, s.claimed, s.dead])
      yield* q.enqueue(Email, { to: "a" }, { maxAttempts: 2 })
      yield* q.enqueue(Email, { to: "b" })
      assert.deepStrictEqual(yield* counts, [2, 0, 0, 0])
      const a = (yield* q.claim(Email))[0]!
      assert.deepStrictEqual(yield* counts, [1, 0, 1, 0])
      yield* q.nack(a, "x")
      assert.deepStrictEqual(yield* counts, [1, 1, 0, 0])
      yield* TestClock.adjust("1500 millis")
      const b = (yield* q.claim(Email, { max: 2 }))
      assert.deepStrictEqual(yield* counts, [0, 0, 2, 0])
      for (const c of b) yield* (c.job.payload.to === "a" ? q.nack(c, "y") : q.ack(c))
      assert.deepStrictEqual(yield* counts, [0, 0, 0, 1])
    }))

  it.effect("retention: done jobs kept for keepDone, dead ones for deadRetention, per definition", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const Kept = Job.define("kept", { payload: Schema.String, keepDone: "1 minute", deadRetention: "10 minutes" })
      const Ephemeral = Job.define("ephemeral", { payload: Schema.String, deadRetention: "1 minute", maxAttempts: 1 })
      const done = yield* q.enqueue(Kept, "done")
      yield* q.ack((yield* q.claim(Kept))[0]!)
      const deadKept = yield* q.enqueue(Kept, "dead")
      yield* q.deadLetter((yield* q.claim(Kept))[0]!, "no")
      const deadShort = yield* q.enqueue(Ephemeral, "dead")
      yield* q.nack((yield* q.claim(Ephemeral))[0]!, "no")
      const status = (id: string) => Effect.map(q.get(id), Option.match({ onNone: () => "gone", onSome: (r) => r.status }))
      yield* TestClock.adjust("50 seconds")
      assert.deepStrictEqual([yield* status(done.id), yield* status(deadKept.id), yield* status(deadShort.id)], ["Done", "Dead", "Dead"])
      yield* TestClock.adjust("20 seconds")
      assert.deepStrictEqual([yield* status(done.id), yield* status(deadKept.id), yield* status(deadShort.id)], ["gone", "Dead", "gone"])
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(yield* status(deadKept.id), "gone")
      assert.deepStrictEqual([(yield* q.stats("kept")).dead, (yield* q.stats("ephemeral")).dead], [0, 0])
    }))

  it.effect("a cancel request refuses lease renewals and survives a nack, a dead-letter and a lease requeue", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(NoBackoff, { n: 1 }, { maxAttempts: 5 })
      const first = (yield* q.claim(NoBackoff, { lease: "5 seconds" }))[0]!
      yield* q.extendLease(first, "10 seconds")
      assert.strictEqual(yield* q.cancel(id), "Requested")
      assert.strictEqual(reasonOf(yield* Effect.exit(q.extendLease(first, "10 seconds"))), "CancelRequested")
      assert.strictEqual(yield* q.nack(first, "stopping"), "Retried")
      assert.isTrue(Option.getOrThrow(yield* q.get(id)).cancelRequested)
      const second = (yield* q.claim(NoBackoff, { lease: "5 seconds" }))[0]!
      yield* second.cancelled // already cancelled when claimed
      yield* TestClock.adjust("12 seconds") // the lease expires and the reaper requeues it
      const third = (yield* q.claim(NoBackoff))[0]!
      assert.deepStrictEqual([third.job.id, third.job.cancelRequested], [id, true])
      yield* q.deadLetter(third, "cancelled")
      assert.isTrue(Option.getOrThrow(yield* q.get(id)).cancelRequested)
    }))

  it.effect("a settlement after the lease expired but before the reaper ran succeeds (fenced by token, not time)", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      yield* q.enqueue(Email, { to: "x" })
      const claim = (yield* q.claim(Email, { lease: "100 millis" }))[0]!
      yield* TestClock.adjust("500 millis") // the reaper runs every second
      yield* q.ack(claim)
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* q.claim(Email), [])
    }))

  it.effect("many waiters of one job's completion all wake", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(Email, { to: "x" })
      const waiters = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(q.awaitCompletion(id), { startImmediately: true }))
      yield* q.deadLetter((yield* q.claim(Email))[0]!, "gone")
      for (const result of yield* Fiber.joinAll(waiters)) {
        assert.strictEqual(result._tag === "Completed" && Option.getOrThrow(result.job).status, "Dead")
      }
    }))

  it.effect("a scheduled normal job and an immediate high one: high first after promotion", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const normal = yield* q.enqueue(Email, { to: "n" }, { delay: "1 millis" })
      yield* TestClock.adjust("200 millis")
      const high = yield* q.enqueue(Email, { to: "h" }, { priority: "high" })
      assert.deepStrictEqual((yield* q.claim(Email, { max: 2 })).map((c) => c.job.id), [high.id, normal.id])
    }))

  it.effect("a claimed record that no longer decodes does not hold up the reaping of the others", () =>
    Effect.gen(function*() {
      const store = yield* storeOf
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        JobQueue.layer({ reaperInterval: "1 second" }).pipe(
          Layer.provideMerge(Kv.layer()),
          Layer.provide(layerOf(store))
        ),
        scope
      )
      const q = Context.get(context, JobQueue.JobQueue)
      const kv = Context.get(context, Kv.Kv)
      const a = yield* q.enqueue(Email, { to: "a" })
      const b = yield* q.enqueue(Email, { to: "b" })
      yield* q.claim(Email, { max: 2, lease: "1 second" })
      yield* kv.write([{ _tag: "Put", key: Keys.toBytes(Keys.claimed("emails", a.id)), value: new Uint8Array([0xc1]) }])
      yield* TestClock.adjust("3 seconds")
      const [again] = yield* q.claim(Email)
      assert.strictEqual(again?.job.id, b.id)
      assert.strictEqual((yield* q.stats("emails")).claimed, 2) // a stays claimed; b is claimed again
    }))

  it.effect("a nacked job does not corrupt the dedup index of a newer job with its key", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const id1 = (yield* q.enqueue(NoBackoff, { n: 1 }, { dedupKey: "k" })).id
      const first = (yield* q.claim(NoBackoff))[0]!
      assert.isUndefined(first.job.dedupKey)
      yield* q.nack(first, "again")
      const id2 = (yield* q.enqueue(NoBackoff, { n: 2 }, { dedupKey: "k" })).id
      assert.notStrictEqual(id2, id1)
      const again = (yield* q.claim(NoBackoff))[0]!
      assert.strictEqual(again.job.id, id1)
      assert.deepStrictEqual(yield* q.enqueue(NoBackoff, { n: 3 }, { dedupKey: "k" }), { id: id2, created: false })
      yield* q.ack(again)
      yield* q.ack((yield* q.claim(NoBackoff))[0]!)
      assert.strictEqual((yield* q.stats("fast")).pending, 0)
    }))

  it.effect("get follows a kept job: Pending, Claimed, Done", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const Kept = Job.define("kept2", { payload: Schema.String, keepDone: "1 minute" })
      const { id } = yield* q.enqueue(Kept, "x")
      const status = Effect.map(q.get(id), (r) => Option.getOrThrow(r).status)
      assert.strictEqual(yield* status, "Pending")
      const claim = (yield* q.claim(Kept))[0]!
      assert.strictEqual(yield* status, "Claimed")
      yield* q.ack(claim)
      const done = Option.getOrThrow(yield* q.get(id))
      assert.deepStrictEqual([done.status, done.completedAt, done.claimedAt], ["Done", 0, undefined])
    }))

  it.effect("settlements of a claim whose lease expired into the dead-letter queue are all ClaimLost", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(Email, { to: "x" }, { maxAttempts: 1 })
      const stale = (yield* q.claim(Email, { lease: "1 second" }))[0]!
      yield* TestClock.adjust("2500 millis")
      assert.strictEqual(Option.getOrThrow(yield* q.get(id)).status, "Dead")
      const settlements: Array<Effect.Effect<unknown, unknown>> = [q.ack(stale), q.nack(stale, "x"), q.deadLetter(stale, "y"), q.extendLease(stale, "1 minute")]
      for (const settle of settlements) {
        assert.strictEqual(reasonOf(yield* Effect.exit(settle)), "ClaimLost")
      }
      assert.deepStrictEqual([(yield* q.stats("emails")).dead, (yield* q.stats("emails")).claimed], [1, 0])
      assert.deepStrictEqual(yield* q.claim(Email), [])
    }))

  it.effect("claim with wait: a pending job is taken at once; a waiter woken for a job another took waits on to its deadline", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const ready = yield* q.enqueue(Email, { to: "ready" })
      assert.deepStrictEqual((yield* q.claim(Email, { wait: "10 seconds" })).map((c) => c.job.id), [ready.id]) // no clock moved
      const w1 = yield* Effect.forkChild(q.claim(Email, { wait: "10 seconds" }))
      const w2 = yield* Effect.forkChild(q.claim(Email, { wait: "10 seconds" }))
      yield* TestClock.adjust("1 second")
      const j1 = yield* q.enqueue(Email, { to: "j1" })
      const won = yield* Effect.race(Fiber.join(w1), Fiber.join(w2))
      assert.deepStrictEqual(won.map((c) => c.job.id), [j1.id])
      const loser = w1.pollUnsafe() === undefined ? w1 : w2
      yield* TestClock.adjust("8 seconds") // 9 s into its 10 s wait, woken once for nothing
      assert.isUndefined(loser.pollUnsafe())
      const j2 = yield* q.enqueue(Email, { to: "j2" })
      assert.deepStrictEqual((yield* Fiber.join(loser)).map((c) => c.job.id), [j2.id])
      // after waits that succeeded, a wait on the empty queue lasts its whole deadline
      const empty = yield* Effect.forkChild(q.claim(Email, { wait: "5 seconds" }))
      yield* TestClock.adjust("4900 millis")
      assert.isUndefined(empty.pollUnsafe())
      yield* TestClock.adjust("200 millis")
      assert.deepStrictEqual(yield* Fiber.join(empty), [])
    }))

  it.effect("after a partial claim batch and empty polls, an enqueue or a nack makes the job claimable again", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const a = yield* q.enqueue(NoBackoff, { n: 1 })
      const [first, ...none] = yield* q.claim(NoBackoff, { max: 8 })
      assert.deepStrictEqual([first?.job.id, none.length], [a.id, 0])
      assert.deepStrictEqual(yield* q.claim(NoBackoff), [])
      const b = yield* q.enqueue(NoBackoff, { n: 2 })
      const second = (yield* q.claim(NoBackoff))[0]!
      assert.strictEqual(second.job.id, b.id)
      assert.deepStrictEqual(yield* q.claim(NoBackoff), [])
      assert.strictEqual(yield* q.nack(first!, "transient error"), "Retried")
      const again = (yield* q.claim(NoBackoff))[0]!
      assert.deepStrictEqual(
        [again.job.id, again.job.attempts, again.job.status, again.job.lastError, again.job.payload],
        [a.id, 2, "Claimed", "transient error", { n: 1 }]
      )
    }))

  it.effect("an id override is refused while its job exists (pending, claimed, dead), and free once an ack deleted it", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      yield* q.enqueue(Email, { to: "first" }, { id: "order-1" })
      const duplicate = yield* Effect.flip(q.enqueue(Email, { to: "second" }, { id: "order-1" }))
      assert.deepStrictEqual([duplicate._tag, duplicate._tag === "DuplicateJobId" && duplicate.id], ["DuplicateJobId", "order-1"])
      assert.strictEqual((yield* q.stats("emails")).pending, 1)
      const claim = (yield* q.claim(Email, { max: 5 }))
      assert.deepStrictEqual(claim.map((c) => [c.job.id, c.job.payload.to]), [["order-1", "first"]])
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Email, { to: "third" }, { id: "order-1" }))), "DuplicateJobId")
      yield* q.ack(claim[0]!)
      assert.deepStrictEqual(yield* q.enqueue(Email, { to: "fourth" }, { id: "order-1" }), { id: "order-1", created: true })
      yield* q.deadLetter((yield* q.claim(Email))[0]!, "no")
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Email, { to: "fifth" }, { id: "order-1" }))), "DuplicateJobId")
      const dead = Option.getOrThrow(yield* q.get("order-1"))
      assert.deepStrictEqual([dead.status, dead.attempts], ["Dead", 1])
      assert.deepStrictEqual(yield* q.claim(Email), [])
    }))

  it.effect("a claim without options takes the definition's lease and maxAttempts", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const Fast = Job.define("short-lease", { payload: Schema.String, maxAttempts: 1, leaseDuration: "5 seconds" })
      yield* TestClock.adjust("2 seconds")
      const { id } = yield* q.enqueue(Fast, "x")
      const [claim] = yield* q.claim(Fast)
      assert.deepStrictEqual([claim!.job.maxAttempts, claim!.job.claimedAt, claim!.job.queue], [1, 2000, "short-lease"])
      yield* TestClock.adjust("4 seconds")
      assert.strictEqual(Option.getOrThrow(yield* q.get(id)).status, "Claimed")
      yield* TestClock.adjust("2 seconds")
      const dead = Option.getOrThrow(yield* q.get(id))
      assert.deepStrictEqual([dead.status, dead.lastError, dead.attempts], ["Dead", "lease expired", 1])
    }))

  it.effect("zero leases: every attempt's expiry is reaped, the last one dead-letters, and no claim is left behind", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const counts = Effect.map(q.stats("emails"), (s) => [s.pending, s.claimed, s.dead])
      const a = yield* q.enqueue(Email, { to: "a" }, { maxAttempts: 2 })
      const b = yield* q.enqueue(Email, { to: "b" }, { maxAttempts: 1 })
      const firsts = yield* q.claim(Email, { max: 2, lease: 0 })
      assert.deepStrictEqual(yield* q.claim(Email), []) // claimed, not yet reaped
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* counts, [1, 0, 1])
      assert.deepStrictEqual(Option.map(yield* q.get(b.id), (r) => [r.status, r.lastError]), Option.some(["Dead", "lease expired"]))
      for (const stale of firsts) assert.strictEqual(reasonOf(yield* Effect.exit(q.extendLease(stale, "1 minute"))), "ClaimLost")
      const second = (yield* q.claim(Email, { lease: 0 }))[0]!
      assert.deepStrictEqual([second.job.id, second.job.attempts], [a.id, 2])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* counts, [0, 0, 2])
      const dead = Option.getOrThrow(yield* q.get(a.id))
      assert.deepStrictEqual([dead.status, dead.attempts, dead.lastError], ["Dead", 2, "lease expired"])
      assert.deepStrictEqual(yield* q.claim(Email), [])
    }))

  it.effect("stale settlements after a reaper requeue and after a re-claim are ClaimLost and change nothing", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const counts = Effect.map(q.stats("emails"), (s) => [s.pending, s.scheduled, s.claimed, s.done, s.dead])
      const { id } = yield* q.enqueue(Email, { to: "x" })
      const stale = (yield* q.claim(Email, { lease: "1 second" }))[0]!
      const settleStale = Effect.gen(function*() {
        const settlements: Array<Effect.Effect<unknown, unknown>> = [
          q.ack(stale), q.nack(stale, "late"), q.deadLetter(stale, "late"), q.extendLease(stale, "1 minute")
        ]
        for (const settle of settlements) assert.strictEqual(reasonOf(yield* Effect.exit(settle)), "ClaimLost")
      })
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* counts, [1, 0, 0, 0, 0])
      yield* settleStale
      assert.deepStrictEqual(yield* counts, [1, 0, 0, 0, 0])
      assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => [r.status, r.attempts]), Option.some(["Pending", 1]))
      const fresh2 = (yield* q.claim(Email))[0]!
      assert.deepStrictEqual([fresh2.job.id, fresh2.job.attempts], [id, 2])
      yield* settleStale
      assert.deepStrictEqual(yield* counts, [0, 0, 1, 0, 0])
      yield* q.ack(fresh2)
      assert.deepStrictEqual(yield* counts, [0, 0, 0, 1, 0])
    }))

  it.effect("a renewed claim acks cleanly and the reaper finds nothing later; a renewal can also shorten a lease", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const counts = Effect.map(q.stats("emails"), (s) => [s.pending, s.scheduled, s.claimed, s.done, s.dead])
      yield* q.enqueue(Email, { to: "renewed" })
      const renewed = (yield* q.claim(Email))[0]!
      yield* TestClock.adjust("10 seconds")
      yield* q.extendLease(renewed, "60 seconds")
      yield* q.ack(renewed)
      assert.deepStrictEqual(yield* counts, [0, 0, 0, 1, 0])
      yield* TestClock.adjust("61 seconds")
      assert.deepStrictEqual(yield* counts, [0, 0, 0, 1, 0])
      assert.deepStrictEqual(yield* q.claim(Email), [])
      const { id } = yield* q.enqueue(Email, { to: "shortened" })
      const shortened = (yield* q.claim(Email, { lease: "1 minute" }))[0]!
      yield* q.extendLease(shortened, "1 second")
      yield* TestClock.adjust("2 seconds")
      const again = (yield* q.claim(Email))[0]!
      assert.deepStrictEqual([again.job.id, again.job.attempts], [id, 2])
      assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(shortened))), "ClaimLost")
    }))

  it.effect("a settlement whose claimed record is gone is ClaimLost even while its lease is held, and writes nothing", () =>
    Effect.gen(function*() {
      const { kv, q } = yield* openQueueAndKv(yield* storeOf)
      const Kept = Job.define("kept-fence", { payload: Schema.String, keepDone: "1 hour" })
      yield* q.enqueue(Email, { to: "a" })
      yield* q.enqueue(Kept, "b")
      const [forgotten] = yield* q.claim(Email)
      const [kept] = yield* q.claim(Kept)
      yield* kv.write([
        { _tag: "Delete", key: Keys.toBytes(Keys.claimed("emails", forgotten!.job.id)) },
        { _tag: "Delete", key: Keys.toBytes(Keys.claimed("kept-fence", kept!.job.id)) }
      ])
      for (const claim of [forgotten!, kept!]) {
        const settlements: Array<Effect.Effect<unknown, unknown>> = [q.ack(claim), q.nack(claim, "x"), q.deadLetter(claim, "y")]
        for (const settle of settlements) assert.strictEqual(reasonOf(yield* Effect.exit(settle)), "ClaimLost")
        const stats = yield* q.stats(claim.job.queue)
        assert.deepStrictEqual([stats.pending, stats.scheduled, stats.done, stats.dead], [0, 0, 0, 0])
        assert.isTrue(Option.isNone(yield* q.get(claim.job.id)))
      }
    }))

  it.effect("a dead-lettered job's completion is the stored record: failedAt stamped, claimedAt cleared, the last reason", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      yield* TestClock.adjust("3 seconds")
      const byDeadLetter = yield* q.enqueue(Email, { to: "x" }, { maxAttempts: 5 })
      const byNack = yield* q.enqueue(NoBackoff, { n: 1 }, { maxAttempts: 2 })
      const waitDeadLetter = yield* Effect.forkChild(q.awaitCompletion(byDeadLetter.id), { startImmediately: true })
      const waitNack = yield* Effect.forkChild(q.awaitCompletion(byNack.id), { startImmediately: true })
      yield* q.deadLetter((yield* q.claim(Email))[0]!, "permanent")
      yield* q.nack((yield* q.claim(NoBackoff))[0]!, "first failure")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* q.nack((yield* q.claim(NoBackoff))[0]!, "final failure"), "DeadLettered")
      for (const [id, waiting, reason, attempts, failedAt] of [
        [byDeadLetter.id, waitDeadLetter, "permanent", 1, 3000],
        [byNack.id, waitNack, "final failure", 2, 4000]
      ] as const) {
        const stored = Option.getOrThrow(yield* q.get(id))
        assert.deepStrictEqual(
          [stored.status, stored.lastError, stored.attempts, stored.failedAt, stored.claimedAt],
          ["Dead", reason, attempts, failedAt, undefined]
        )
        assert.deepStrictEqual(yield* Fiber.join(waiting), { _tag: "Completed", job: Option.some(stored) })
        assert.deepStrictEqual(yield* q.awaitCompletion(id, { timeout: 0 }), { _tag: "Completed", job: Option.some(stored) })
      }
      assert.deepStrictEqual([(yield* q.stats("emails")).dead, (yield* q.stats("emails")).claimed], [1, 0])
    }))

  it.effect("awaitCompletion sleeps through a cancel request, a retry and a lease requeue; wakes on the ack of a kept job and on a reaper dead-letter", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const Kept = Job.define("kept-wait", { payload: Schema.String, keepDone: "1 hour", backoff: Job.Backoff.none() })
      const { id } = yield* q.enqueue(Kept, "x")
      const waiting = yield* Effect.forkChild(q.awaitCompletion(id), { startImmediately: true })
      const first = (yield* q.claim(Kept, { lease: "1 minute" }))[0]!
      assert.strictEqual(yield* q.cancel(id), "Requested")
      yield* TestClock.adjust("1 second")
      assert.isUndefined(waiting.pollUnsafe())
      assert.strictEqual(yield* q.nack(first, "retry"), "Retried")
      yield* TestClock.adjust("1 second")
      assert.isUndefined(waiting.pollUnsafe())
      yield* q.claim(Kept, { lease: "1 second" })
      yield* TestClock.adjust("3 seconds") // the lease expires and the reaper requeues the job
      assert.strictEqual(Option.getOrThrow(yield* q.get(id)).status, "Pending")
      assert.isUndefined(waiting.pollUnsafe())
      const third = (yield* q.claim(Kept))[0]!
      assert.strictEqual(third.job.attempts, 3)
      yield* q.ack(third)
      const done = yield* Fiber.join(waiting)
      assert.deepStrictEqual(done, { _tag: "Completed", job: yield* q.get(id) })
      assert.strictEqual(done._tag === "Completed" && Option.getOrThrow(done.job).status, "Done")
      // a reaper dead-letter wakes its waiters
      const last = yield* q.enqueue(Email, { to: "y" }, { maxAttempts: 1 })
      const reaped = yield* Effect.forkChild(q.awaitCompletion(last.id), { startImmediately: true })
      yield* q.claim(Email, { lease: "10 millis" })
      yield* TestClock.adjust("1 second")
      const completion = yield* Fiber.join(reaped)
      const reapedJob = completion._tag === "Completed" ? Option.getOrThrow(completion.job) : undefined
      assert.deepStrictEqual([reapedJob?.status, reapedJob?.lastError], ["Dead", "lease expired"])
    }))

  it.effect("done retention counts from the ack, not from the enqueue", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const Kept = Job.define("kept-late", { payload: Schema.String, keepDone: "1 minute" })
      const { id } = yield* q.enqueue(Kept, "x", { delay: "5 minutes" })
      yield* TestClock.adjust("5 minutes")
      yield* TestClock.adjust("500 millis")
      yield* q.ack((yield* q.claim(Kept))[0]!)
      const done = Option.getOrThrow(yield* q.get(id))
      assert.deepStrictEqual([done.status, done.enqueuedAt, done.completedAt], ["Done", 0, 300_500])
      yield* TestClock.adjust("3 seconds") // reaper ticks after the ack, long after enqueue + keepDone
      assert.strictEqual(Option.getOrThrow(yield* q.get(id)).status, "Done")
      yield* TestClock.adjust("58 seconds")
      assert.isTrue(Option.isNone(yield* q.get(id)))
      assert.strictEqual((yield* q.stats("kept-late")).done, 1)
    }))

  it.effect("cancel removes pending, scheduled and backing-off jobs from get, claims and counters; they never come back", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      assert.isTrue(Option.isNone(yield* q.get("01ARZ3NDEKTSV4RRFFQ69G5FAV")))
      const pending = yield* q.enqueue(Email, { to: "p" })
      const scheduled = yield* q.enqueue(Email, { to: "s" }, { delay: "1 minute", dedupKey: "later" })
      assert.deepStrictEqual(yield* q.enqueue(Email, { to: "s" }, { dedupKey: "later" }), { id: scheduled.id, created: false })
      const retrying = yield* q.enqueue(Email, { to: "r" }, { priority: "high" })
      yield* q.nack((yield* q.claim(Email))[0]!, "backing off") // retrying is claimed first (high)
      const counts = Effect.map(q.stats("emails"), (s) => [s.pending, s.scheduled, s.claimed, s.done, s.dead])
      assert.deepStrictEqual(yield* counts, [1, 2, 0, 0, 0])
      for (const id of [pending.id, scheduled.id, retrying.id]) {
        assert.strictEqual(yield* q.cancel(id), "Removed")
        assert.isTrue(Option.isNone(yield* q.get(id)))
        assert.strictEqual(yield* q.cancel(id), "NotFound")
      }
      assert.deepStrictEqual(yield* counts, [0, 0, 0, 0, 0])
      assert.isTrue((yield* q.enqueue(Email, { to: "s2" }, { dedupKey: "later", delay: "10 minutes" })).created)
      yield* TestClock.adjust("2 minutes")
      assert.deepStrictEqual(yield* q.claim(Email, { max: 10 }), [])
      assert.deepStrictEqual(yield* counts, [0, 1, 0, 0, 0])
    }))

  it.effect("queues whose names extend one another stay apart: claims, reaping, counters and dedup keys", () =>
    Effect.gen(function*() {
      const names = ["mail", "mailx", "mail:x", "mai"]
      const defs = names.map((name) => Job.define(name, { payload: Schema.String }))
      const q = yield* fresh
      const ids: Array<string> = []
      for (const def of defs) ids.push((yield* q.enqueue(def, def.queue, { dedupKey: "same" })).id)
      for (const [i, def] of defs.entries()) {
        assert.strictEqual((yield* q.stats(def.queue)).pending, 1)
        const claims = yield* q.claim(def, { max: 10, lease: "1 second" })
        assert.deepStrictEqual(claims.map((c) => [c.job.id, c.job.payload]), [[ids[i], def.queue]])
      }
      yield* TestClock.adjust("2 seconds") // every lease expires: each job goes back to its own queue
      for (const [i, def] of defs.entries()) {
        const stats = yield* q.stats(def.queue)
        assert.deepStrictEqual([stats.pending, stats.claimed], [1, 0], def.queue)
        const again = yield* q.claim(def, { max: 10 })
        assert.deepStrictEqual(again.map((c) => [c.job.id, c.job.attempts]), [[ids[i], 2]])
      }
    }))

  it.effect("after a clean close and a reopen: a held claim is requeued in its place, priorities hold, an emptied queue revives", () =>
    Effect.gen(function*() {
      const store = yield* storeOf
      const first = yield* openQueueAndKv(store)
      const [a, b, c] = yield* Effect.forEach(["a", "b", "c"], (to) => Effect.map(first.q.enqueue(Email, { to }), (r) => r.id))
      yield* first.q.ack((yield* first.q.claim(Email))[0]!)
      const held = (yield* first.q.claim(Email))[0]!
      assert.strictEqual(held.job.id, b)
      yield* Scope.close(first.scope, Exit.void)
      const second = yield* openQueueAndKv(store)
      assert.deepStrictEqual(Option.map(yield* second.q.get(b!), (r) => [r.status, r.attempts]), Option.some(["Pending", 1]))
      assert.isTrue(Option.isNone(yield* second.q.get(a!)))
      const high = yield* second.q.enqueue(Email, { to: "h" }, { priority: "high" })
      const claims = yield* second.q.claim(Email, { max: 10 })
      assert.deepStrictEqual(claims.map((x) => [x.job.id, x.job.attempts]), [[high.id, 1], [b, 2], [c, 1]])
      yield* Effect.forEach(claims, (c) => second.q.ack(c), { discard: true })
      assert.deepStrictEqual(yield* second.q.claim(Email), [])
      yield* Scope.close(second.scope, Exit.void)
      const third = yield* openQueueAndKv(store)
      assert.deepStrictEqual(yield* third.q.claim(Email), [])
      assert.deepStrictEqual(yield* third.q.stats("emails"), { queue: "emails", pending: 0, scheduled: 0, claimed: 0, done: 4, dead: 0 })
      const { id } = yield* third.q.enqueue(Email, { to: "d" })
      assert.strictEqual((yield* third.q.claim(Email))[0]?.job.id, id)
    }))

  it.effect("enqueueBatch counts every job pending at once; an empty batch writes nothing", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      assert.deepStrictEqual(yield* q.enqueueBatch(NoBackoff, []), [])
      assert.deepStrictEqual(yield* q.stats("fast"), { queue: "fast", pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0 })
      const ids = yield* q.enqueueBatch(NoBackoff, [{ n: 1 }, { n: 2 }, { n: 3 }])
      assert.strictEqual((yield* q.stats("fast")).pending, 3)
      const records = yield* Effect.forEach(ids, (id) => Effect.map(q.get(id), Option.getOrThrow))
      assert.deepStrictEqual(records.map((r) => [r.status, r.attempts, r.maxAttempts, r.priority]), ids.map(() => ["Pending", 0, 3, 1000]))
      assert.strictEqual(new Set(records.map((r) => r.enqueuedAt)).size, 1)
      const claims = yield* q.claim(NoBackoff, { max: 2 })
      assert.deepStrictEqual(claims.map((c) => c.job.id), ids.slice(0, 2))
      assert.deepStrictEqual([(yield* q.stats("fast")).pending, (yield* q.stats("fast")).claimed], [1, 2])
    }))

  it.effect("release gives a claim back uncounted; discard removes the job and wakes its waiters; nack takes a delay", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const { id } = yield* q.enqueue(Email, { to: "r" })
      const [first] = yield* q.claim(Email)
      yield* q.release(first!)
      assert.strictEqual(reasonOf(yield* Effect.exit(q.release(first!))), "ClaimLost")
      assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => [r.status, r.attempts, r.claimedAt ?? "none"]), Option.some(["Pending", 0, "none"]))
      assert.deepStrictEqual([(yield* q.stats("emails")).pending, (yield* q.stats("emails")).claimed], [1, 0])
      const [second] = yield* q.claim(Email)
      assert.strictEqual(second!.job.attempts, 1)
      // an explicit delay instead of the backoff: none at all, then ten seconds
      assert.strictEqual(yield* q.nack(second!, "now", { delay: 0 }), "Retried")
      const [third] = yield* q.claim(Email)
      assert.strictEqual(third!.job.attempts, 2)
      const before = yield* Clock.currentTimeMillis
      yield* q.nack(third!, "later", { delay: "10 seconds" })
      assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => [r.status, r.runAt ?? 0]), Option.some(["Scheduled", before + 10_000]))
      yield* TestClock.adjust("11 seconds")
      const [fourth] = yield* q.claim(Email)
      const waiter = yield* Effect.forkChild(q.awaitCompletion(id))
      yield* Effect.yieldNow
      yield* q.discard(fourth!)
      assert.deepStrictEqual(yield* Fiber.join(waiter), { _tag: "Completed", job: Option.none() })
      assert.isTrue(Option.isNone(yield* q.get(id)))
      assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(fourth!))), "ClaimLost")
      assert.deepStrictEqual(yield* q.stats("emails"), { queue: "emails", pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0 })
    }))

  it.effect("a job that does not decode is dead-lettered and the claim goes on to the good ones behind it", () =>
    Effect.gen(function*() {
      const q = yield* fresh
      const Loose = Job.define("fast", { payload: Schema.Struct({ n: Schema.Unknown }) })
      const bad = yield* q.enqueue(Loose, { n: "text" })
      const good = yield* q.enqueue(NoBackoff, { n: 2 })
      const before = yield* Clock.currentTimeMillis
      const claims = yield* q.claim(NoBackoff, { wait: "5 seconds" })
      assert.deepStrictEqual(claims.map((c) => c.job.id), [good.id])
      assert.strictEqual(yield* Clock.currentTimeMillis, before, "no waiting")
      assert.deepStrictEqual(Option.map(yield* q.get(bad.id), (r) => r.status), Option.some("Dead"))
    }))

  // ---- payloads over the offload threshold (64 bytes here): objects of their own --------------

  const Blob = Job.define("blobs", { payload: Schema.Struct({ data: Schema.String }), backoff: Job.Backoff.none(), deadRetention: "1 hour" })
  const big = (tag: string) => ({ data: `${tag}:${"x".repeat(200)}` })
  const payloadObjects = (store: AnyStore) =>
    Effect.map(Stream.runCollect(serviceOf(store).list("payloads/")), (entries) => entries.map((e) => e.key))
  const offloading = (options?: JobQueue.Options) =>
    Effect.gen(function*() {
      const store = yield* storeOf
      return { store, q: yield* openQueue(store, { offloadThreshold: 64, ...options }) }
    })

  it.effect("an offloaded payload: one object, read back by get and claim, deleted by the ack; small ones stay inline", () =>
    Effect.gen(function*() {
      const { q, store } = yield* offloading()
      const { id } = yield* q.enqueue(Blob, big("a"))
      const small = yield* q.enqueue(Blob, { data: "s" })
      const objects = yield* payloadObjects(store)
      assert.strictEqual(objects.length, 1)
      const stored = Option.getOrThrow(yield* q.get(id))
      assert.deepStrictEqual(Msgpack.decode(stored.payload), big("a"))
      assert.strictEqual(stored.payloadRef, objects[0])
      assert.isUndefined(Option.getOrThrow(yield* q.get(small.id)).payloadRef)
      const [claim, claimSmall] = yield* q.claim(Blob, { max: 2 })
      assert.deepStrictEqual([claim!.job.payload, claimSmall!.job.payload], [big("a"), { data: "s" }])
      // a retry keeps the object; the ack deletes it
      assert.strictEqual(yield* q.nack(claim!, "again"), "Retried")
      assert.strictEqual((yield* payloadObjects(store)).length, 1)
      const [again] = yield* q.claim(Blob)
      assert.deepStrictEqual(again!.job.payload, big("a"))
      yield* q.ack(again!)
      yield* q.ack(claimSmall!)
      assert.deepStrictEqual(yield* payloadObjects(store), [])
    }))

  it.effect("offloaded payloads: a dedup hit and a duplicate id delete their own object, the existing job keeps its", () =>
    Effect.gen(function*() {
      const { q, store } = yield* offloading()
      const first = yield* q.enqueue(Blob, big("first"), { dedupKey: "k", id: "job-1" })
      const hit = yield* q.enqueue(Blob, big("second"), { dedupKey: "k" })
      assert.deepStrictEqual(hit, { id: first.id, created: false })
      const duplicate = yield* Effect.exit(q.enqueue(Blob, big("third"), { id: "job-1" }))
      assert.strictEqual(reasonOf(duplicate), "DuplicateJobId")
      assert.strictEqual((yield* payloadObjects(store)).length, 1)
      const [claim] = yield* q.claim(Blob)
      assert.deepStrictEqual(claim!.job.payload, big("first"))
    }))

  it.effect("offloaded payloads in a batch, a scheduled job, the dead-letter queue and a cancel", () =>
    Effect.gen(function*() {
      const { q, store } = yield* offloading()
      const ids = yield* q.enqueueBatch(Blob, [big("1"), { data: "small" }, big("3")])
      assert.strictEqual((yield* payloadObjects(store)).length, 2)
      const later = yield* q.enqueue(Blob, big("later"), { delay: "1 minute" })
      const cancelled = yield* q.enqueue(Blob, big("cancelled"))
      assert.strictEqual((yield* payloadObjects(store)).length, 4)
      assert.strictEqual(yield* q.cancel(cancelled.id), "Removed")
      assert.strictEqual((yield* payloadObjects(store)).length, 3)
      const claims = yield* q.claim(Blob, { max: 10 })
      assert.deepStrictEqual(claims.map((c) => c.job.id), ids)
      assert.deepStrictEqual(claims.map((c) => c.job.payload), [big("1"), { data: "small" }, big("3")])
      yield* q.ack(claims[0]!)
      yield* q.ack(claims[1]!)
      yield* q.deadLetter(claims[2]!, "broken")
      assert.strictEqual((yield* payloadObjects(store)).length, 2) // the dead one and the scheduled one
      assert.deepStrictEqual(Msgpack.decode(Option.getOrThrow(yield* q.get(ids[2]!)).payload), big("3"))
      yield* TestClock.adjust("2 minutes")
      const [promoted] = yield* q.claim(Blob)
      assert.deepStrictEqual([promoted!.job.id, promoted!.job.payload], [later.id, big("later")])
      yield* q.ack(promoted!)
      // the dead job's retention (1 hour) ends: its record and its object go
      yield* TestClock.adjust("61 minutes")
      assert.isTrue(Option.isNone(yield* q.get(ids[2]!)))
      assert.deepStrictEqual(yield* payloadObjects(store), [])
    }))

  it.effect("a payload object deleted from outside: get is PayloadMissing, a claim dead-letters the job", () =>
    Effect.gen(function*() {
      const { q, store } = yield* offloading()
      const { id } = yield* q.enqueue(Blob, big("gone"))
      const [key] = yield* payloadObjects(store)
      yield* serviceOf(store).delete(key!)
      assert.strictEqual(reasonOf(yield* Effect.exit(q.get(id))), "PayloadMissing")
      assert.deepStrictEqual(yield* q.claim(Blob), [])
      const dead = yield* q.awaitCompletion(id)
      assert.strictEqual(dead._tag, "Completed")
      const record = dead._tag === "Completed" ? Option.getOrThrow(dead.job) : undefined
      assert.deepStrictEqual([record?.status, record?.lastError], ["Dead", `payload object ${key} is missing`])
    }))

  it.effect("a payload over maxPayloadBytes is PayloadTooLarge with the limit, and nothing is written", () =>
    Effect.gen(function*() {
      const { q, store } = yield* offloading({ maxPayloadBytes: 150 })
      const error = yield* Effect.flip(q.enqueue(Blob, big("huge")))
      assert.deepStrictEqual([error._tag, error._tag === "PayloadTooLarge" ? error.limit : undefined], ["PayloadTooLarge", 150])
      assert.deepStrictEqual(yield* payloadObjects(store), [])
      assert.strictEqual((yield* q.stats("blobs")).pending, 0)
    }))
})
