// Inspecting and managing jobs under TestClock, written once and run on every backend: list (every
// state, its order and its cursors), queues(), the dead-letter queue (deadJobs, requeueDead,
// purgeDead), wake, and pause/resume. Taquba's tests of these (reference §3) are ported here.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Schema, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Worker from "../../src/Worker.ts"
import { reasonOf } from "../utils/exits.ts"
import { type Backend, serviceOf } from "../utils/stores.ts"
import { eventually, openQueueAndKv } from "../utils/queue.ts"

const Email = Job.define("emails", {
  payload: Schema.Struct({ to: Schema.String }),
  backoff: Job.Backoff.exponential({ base: "1 second", max: "5 minutes" })
})
const Other = Job.define("others", { payload: Schema.Struct({ to: Schema.String }) })
const Once = Job.define("once", { payload: Schema.Number, maxAttempts: 1, deadRetention: "1 hour" })
const Kept = Job.define("kept", { payload: Schema.Number, keepDone: "1 hour" })
const Blob = Job.define("blobs", { payload: Schema.Struct({ data: Schema.String }), maxAttempts: 1 })
/** The same queue read with another schema: the payloads written by `Blob` do not decode with it. */
const BlobAsNumber = Job.define("blobs", { payload: Schema.Number })
const big = (tag: string) => ({ data: `${tag}:${"x".repeat(200)}` })

/** Every page of a listing, each page's ids. */
const allPages = <J extends { readonly id: string }>(
  page: (cursor: string | undefined) => Effect.Effect<JobQueue.JobPage<J>, unknown>
) =>
  Effect.gen(function*() {
    const pages: Array<Array<string>> = []
    let cursor: string | undefined
    do {
      const next = yield* page(cursor)
      pages.push(next.jobs.map((j) => j.id))
      cursor = Option.getOrUndefined(next.cursor)
    } while (cursor !== undefined)
    return pages
  })

/** `n` jobs of `Once` made dead (claimed and nacked: their one attempt used up), their ids in order. */
const deadOnes = (q: JobQueue.Service, n: number) =>
  Effect.gen(function*() {
    const ids = yield* q.enqueueBatch(Once, Array.from({ length: n }, (_, i) => i))
    const claims = yield* q.claim(Once, { max: n })
    yield* Effect.forEach(claims, (c) => q.nack(c, `failed ${c.job.payload}`), { concurrency: 50, discard: true })
    return ids
  })

export const queueManagementSuite = (backend: Backend) =>
  describe(`Inspecting and managing jobs on ${backend.name}`, () => {
    const storeOf = Layer.build(backend.layer()) // the store's context: with the directory backend's local log
    const fresh = Effect.flatMap(Effect.flatMap(storeOf, (store) => openQueueAndKv(store)), ({ q }) => Effect.succeed(q))

    // ---- wake ---------------------------------------------------------------------------------

    it.effect("wake makes a delayed job pending at once: claimable, counted pending, its due time gone", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Email, { to: "later" }, { delay: "60 seconds" })
        assert.strictEqual(yield* q.wake(id), "Woken")
        const stats = yield* q.stats("emails")
        assert.deepStrictEqual([stats.scheduled, stats.pending], [0, 1])
        const [claim] = yield* q.claim(Email)
        assert.deepStrictEqual([claim?.job.id, claim?.job.runAt], [id, undefined])
      }))

    it.effect("wake of a pending, claimed or kept done job is NotScheduled; of an unknown or cancelled one NotFound", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const pending = yield* q.enqueue(Email, { to: "p" })
        assert.strictEqual(yield* q.wake(pending.id), "NotScheduled")
        yield* q.claim(Email)
        assert.strictEqual(yield* q.wake(pending.id), "NotScheduled")
        const kept = yield* q.enqueue(Kept, 1)
        yield* q.ack((yield* q.claim(Kept))[0]!)
        assert.strictEqual(yield* q.wake(kept.id), "NotScheduled")
        assert.strictEqual(yield* q.wake("01NOSUCHJOB"), "NotFound")
        const cancelled = yield* q.enqueue(Email, { to: "c" }, { delay: "1 minute" })
        assert.strictEqual(yield* q.cancel(cancelled.id), "Removed")
        assert.strictEqual(yield* q.wake(cancelled.id), "NotFound")
        assert.deepStrictEqual(yield* q.stats("emails"), { queue: "emails", pending: 0, scheduled: 0, claimed: 1, done: 0, dead: 0 })
      }))

    it.effect("wake after the scheduler promoted the job is NotScheduled", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Email, { to: "soon" }, { delay: "1 second" })
        yield* TestClock.adjust("1500 millis")
        yield* eventually(Effect.map(q.stats("emails"), (s) => s.pending === 1), "promoted", 10)
        assert.strictEqual(yield* q.wake(id), "NotScheduled")
      }))

    it.effect("wake of a job waiting out its backoff wakes a claim waiting on its queue", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Email, { to: "retry" })
        assert.strictEqual(yield* q.nack((yield* q.claim(Email))[0]!, "boom"), "Retried")
        assert.strictEqual(Option.getOrThrow(yield* q.get(id)).status, "Scheduled")
        const waiting = yield* Effect.forkChild(q.claim(Email, { wait: "30 seconds" }), { startImmediately: true })
        assert.strictEqual(yield* q.wake(id), "Woken")
        const [claim] = yield* Fiber.join(waiting)
        assert.deepStrictEqual([claim?.job.id, claim?.job.attempts, claim?.job.lastError], [id, 2, "boom"])
      }))

    it.effect("a job delayed by a duration that is not whole milliseconds is not made pending before its run time", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        // due at 100.5 ms: the scheduler's run at 100 ms finds its key (whole milliseconds) before it is due
        const { id } = yield* q.enqueue(Email, { to: "later" }, { delay: Duration.micros(100_500n) })
        assert.strictEqual(Option.getOrThrow(yield* q.get(id)).runAt, 100.5)
        yield* TestClock.adjust("100 millis")
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
        assert.deepStrictEqual(yield* q.claim(Email), [])
        assert.strictEqual((yield* q.stats("emails")).scheduled, 1)
        yield* TestClock.adjust("100 millis")
        yield* eventually(Effect.map(q.stats("emails"), (s) => s.pending === 1), "promoted at the next run", 10)
        assert.strictEqual((yield* q.claim(Email))[0]?.job.id, id)
      }))

    it.effect("wake refuses what cannot be a job id, with InvalidJobId", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        assert.strictEqual(reasonOf(yield* Effect.exit(q.wake("not an id"))), "InvalidJobId")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.wake(42 as unknown as string))), "InvalidJobId")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.wake(""))), "InvalidJobId")
      }))

    // ---- list ---------------------------------------------------------------------------------

    it.effect("list Pending pages in claim order: priority first, then enqueue order", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const low = yield* q.enqueue(Email, { to: "low" }, { priority: "low" })
        const a = yield* q.enqueue(Email, { to: "a" })
        const b = yield* q.enqueue(Email, { to: "b" })
        const high = yield* q.enqueue(Email, { to: "high" }, { priority: "high" })
        const pages = yield* allPages((cursor) => q.list("emails", "Pending", { cursor, limit: 2 }))
        assert.deepStrictEqual(pages, [[high.id, a.id], [b.id, low.id]])
        const claims = yield* q.claim(Email, { max: 4 })
        assert.deepStrictEqual(claims.map((c) => c.job.id), pages.flat())
      }))

    it.effect("list Scheduled goes by due time and lists only the queue asked for", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const later = yield* q.enqueue(Email, { to: "2h" }, { delay: "2 hours" })
        yield* q.enqueue(Other, { to: "90m" }, { delay: "90 minutes" })
        const sooner = yield* q.enqueue(Email, { to: "1h" }, { delay: "1 hour" })
        yield* q.enqueue(Other, { to: "30m" }, { delay: "30 minutes" })
        const page = yield* q.list(Email, "Scheduled")
        assert.deepStrictEqual(page.jobs.map((j) => [j.id, j.status, j.payload]), [
          [sooner.id, "Scheduled", { to: "1h" }],
          [later.id, "Scheduled", { to: "2h" }]
        ])
        assert.isTrue(Option.isNone(page.cursor))
        assert.deepStrictEqual(yield* allPages((cursor) => q.list("emails", "Scheduled", { cursor, limit: 1 })), [[sooner.id], [later.id]])
        assert.strictEqual((yield* q.list("others", "Scheduled")).jobs.length, 2)
      }))

    it.effect("list Claimed goes by id, one queue at a time, while other queues' claims interleave", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const ours: Array<string> = []
        for (let i = 0; i < 3; i++) {
          ours.push((yield* q.enqueue(Email, { to: `a${i}` })).id)
          yield* q.enqueue(Other, { to: `b${i}` })
        }
        yield* q.claim(Other, { max: 1, lease: "90 seconds" })
        yield* q.claim(Email, { max: 2, lease: "30 seconds" })
        yield* q.claim(Other, { max: 2 })
        yield* q.claim(Email, { max: 1, lease: "60 seconds" })
        const pages = yield* allPages((cursor) => q.list("emails", "Claimed", { cursor, limit: 1 }))
        assert.deepStrictEqual(pages, [[ours[0]], [ours[1]], [ours[2]]])
        const all = yield* q.list("emails", "Claimed")
        assert.isTrue(all.jobs.every((j) => j.status === "Claimed" && j.queue === "emails"))
      }))

    it.effect("list Claimed stays in id order after the first-claimed job's lease is extended past the others'", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const ids = yield* q.enqueueBatch(Email, [{ to: "a" }, { to: "b" }, { to: "c" }])
        const [first] = yield* q.claim(Email, { max: 1, lease: "30 seconds" })
        yield* TestClock.adjust("1 second")
        yield* q.claim(Email, { max: 2, lease: "60 seconds" })
        assert.strictEqual(first?.job.id, ids[0])
        yield* q.extendLease(first!, "1 hour")
        assert.deepStrictEqual((yield* q.list("emails", "Claimed")).jobs.map((j) => j.id), [...ids])
        assert.deepStrictEqual(yield* allPages((cursor) => q.list(Email, "Claimed", { cursor, limit: 1 })), ids.map((id) => [id]))
      }))

    it.effect("list Done lists the kept done jobs by completion time, and none of a queue that keeps none", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const ids = yield* q.enqueueBatch(Kept, [1, 2, 3])
        const claims = yield* q.claim(Kept, { max: 3 })
        for (const claim of [claims[2]!, claims[0]!, claims[1]!]) {
          yield* q.ack(claim)
          yield* TestClock.adjust("1 second")
        }
        yield* q.enqueue(Email, { to: "not kept" })
        yield* q.ack((yield* q.claim(Email))[0]!)
        const page = yield* q.list(Kept, "Done")
        assert.deepStrictEqual(page.jobs.map((j) => [j.id, j.status, j.payload]), [[ids[2]!, "Done", 3], [ids[0]!, "Done", 1], [ids[1]!, "Done", 2]])
        assert.deepStrictEqual((yield* q.list("emails", "Done")).jobs, [])
      }))

    it.effect("list Dead goes by id and matches deadJobs", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const ids = yield* deadOnes(q, 4)
        const listed = yield* allPages((cursor) => q.list("once", "Dead", { cursor, limit: 3 }))
        assert.deepStrictEqual(listed, [ids.slice(0, 3), ids.slice(3)])
        assert.deepStrictEqual((yield* q.deadJobs("once")).map((j) => j.id), [...ids])
        const decoded = yield* q.list(Once, "Dead")
        assert.deepStrictEqual(decoded.jobs.map((j) => [j.payload, j.lastError]), [[0, "failed 0"], [1, "failed 1"], [2, "failed 2"], [3, "failed 3"]])
      }))

    it.effect("a listing paged while jobs are enqueued and claimed between pages lists no job twice and every job there throughout", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const initial = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) =>
          Effect.map(q.enqueue(Email, { to: `j${i}` }, { priority: i % 3 === 0 ? "high" : "normal" }), (r) => r.id))
        const seen: Array<string> = []
        const claimed = new Set<string>()
        let cursor: string | undefined
        let round = 0
        do {
          const page = yield* q.list(Email, "Pending", { cursor, limit: 4 })
          seen.push(...page.jobs.map((j) => j.id))
          cursor = Option.getOrUndefined(page.cursor)
          // between pages: new jobs (one of them ahead of the cursor, high), and claims from the front
          yield* q.enqueue(Email, { to: `n${round}` })
          yield* q.enqueue(Email, { to: `h${round}` }, { priority: "high" })
          for (const c of yield* q.claim(Email, { max: 2 })) claimed.add(c.job.id)
          round++
        } while (cursor !== undefined && round < 100)
        assert.strictEqual(new Set(seen).size, seen.length, "a job listed twice")
        const stillPending = initial.filter((id) => !claimed.has(id))
        for (const id of stillPending) assert.include(seen, id)
        const listedThenGone = seen.filter((id) => claimed.has(id))
        assert.isAbove(listedThenGone.length + stillPending.length, 0)
      }))

    it.effect("bad cursors, limits, states and names are refused with typed errors", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        yield* q.enqueueBatch(Email, [{ to: "a" }, { to: "b" }])
        const pending = yield* q.list("emails", "Pending", { limit: 1 })
        const cursor = Option.getOrThrow(pending.cursor)
        const exit = (effect: Effect.Effect<unknown, unknown>) => Effect.map(Effect.exit(effect), reasonOf)
        // a cursor of another listing (state, queue), garbage, not strict base64url
        assert.strictEqual(yield* exit(q.list("emails", "Dead", { cursor })), "InvalidOption")
        assert.strictEqual(yield* exit(q.list("others", "Pending", { cursor })), "InvalidOption")
        assert.strictEqual(yield* exit(q.list("emails", "Scheduled", { cursor })), "InvalidOption")
        assert.strictEqual(yield* exit(q.list("emails", "Pending", { cursor: "!!!" })), "InvalidOption")
        assert.strictEqual(yield* exit(q.list("emails", "Pending", { cursor: `${cursor}=` })), "InvalidOption")
        assert.strictEqual(yield* exit(q.list("emails", "Pending", { cursor: "" })), "InvalidOption")
        assert.strictEqual(yield* exit(q.list("emails", "Pending", { cursor: 5 as unknown as string })), "InvalidOption")
        for (const limit of [0, 1001, 1.5, -1, Number.NaN, "10" as unknown as number]) {
          assert.strictEqual(yield* exit(q.list("emails", "Pending", { limit })), "InvalidOption", String(limit))
          assert.strictEqual(yield* exit(q.deadJobs("emails", { limit })), "InvalidOption", String(limit))
        }
        assert.strictEqual(yield* exit(q.list("emails", "Lost" as JobQueue.JobStatus)), "InvalidOption")
        assert.strictEqual(yield* exit(q.list("../x", "Pending")), "InvalidQueueName")
        assert.strictEqual(yield* exit(q.list(42 as unknown as string, "Pending")), "InvalidQueueName")
        assert.strictEqual(yield* exit(q.list("emails", "Pending", "x" as unknown as JobQueue.ListOptions)), "InvalidOption")
        assert.strictEqual(yield* exit(q.deadJobs("emails", { after: "no such id!" })), "InvalidOption")
        assert.strictEqual(yield* exit(q.deadJobs("", {})), "InvalidQueueName")
        // limits at the edges are fine, and the good cursor goes on
        assert.strictEqual((yield* q.list("emails", "Pending", { limit: 1000 })).jobs.length, 2)
        assert.strictEqual((yield* q.list("emails", "Pending", { cursor, limit: 1 })).jobs.length, 1)
      }))

    it.effect("decoded and encoded listings: offloaded payloads read back, a payload that does not decode listed with why", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { q } = yield* openQueueAndKv(store, { offloadThreshold: 64 })
        const large = yield* q.enqueue(Blob, big("large"))
        const small = yield* q.enqueue(Blob, { data: "s" })
        const decoded = yield* q.list(Blob, "Pending")
        assert.deepStrictEqual(decoded.jobs.map((j) => [j.id, j.payload, j.payloadError]), [
          [large.id, big("large"), undefined],
          [small.id, { data: "s" }, undefined]
        ])
        const encoded = yield* q.list("blobs", "Pending")
        const got = yield* Effect.forEach([large.id, small.id], (id) => Effect.map(q.get(id), Option.getOrThrow))
        assert.deepStrictEqual(encoded.jobs.map((j) => j.payload), got.map((r) => r.payload))
        assert.isDefined(encoded.jobs[0]!.payloadRef)
        // read with a schema the payloads do not match: both listed, as get returns them, with why
        const wrong = yield* q.list(BlobAsNumber, "Pending")
        assert.deepStrictEqual(wrong.jobs.map((j) => j.id), [large.id, small.id])
        for (const [i, job] of wrong.jobs.entries()) {
          assert.match(job.payloadError ?? "", /payload does not decode/)
          assert.deepStrictEqual(job.payload, got[i]!.payload)
        }
        // an offloaded payload whose object is gone: listed as stored, with why; the others as they are
        const [key] = yield* Effect.map(Stream.runCollect(serviceOf(store).list("payloads/")), (e) => e.map((x) => x.key))
        yield* serviceOf(store).delete(key!)
        const afterLoss = yield* q.list(Blob, "Pending")
        assert.match(afterLoss.jobs[0]!.payloadError ?? "", /missing/)
        assert.deepStrictEqual(afterLoss.jobs[1]!.payload, { data: "s" })
        const encodedAfterLoss = yield* q.list("blobs", "Pending")
        assert.deepStrictEqual([encodedAfterLoss.jobs[0]!.payload.length, encodedAfterLoss.jobs[0]!.payloadRef], [0, key])
        assert.match(encodedAfterLoss.jobs[0]!.payloadError ?? "", /missing/)
      }))

    // ---- queues() -----------------------------------------------------------------------------

    it.effect("queues() lists every queue with counters, by name, with its counters and whether it is paused", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        assert.deepStrictEqual(yield* q.queues(), [])
        yield* q.enqueue(Other, { to: "x" })
        yield* q.enqueue(Email, { to: "y" }, { delay: "1 minute" })
        yield* q.enqueue(Kept, 1)
        yield* q.ack((yield* q.claim(Kept))[0]!)
        yield* q.pause("others")
        yield* q.pause("gamma")
        const zero = { pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0 }
        assert.deepStrictEqual(yield* q.queues(), [
          { ...zero, queue: "emails", scheduled: 1, paused: false },
          { ...zero, queue: "gamma", paused: true },
          { ...zero, queue: "kept", done: 1, paused: false },
          { ...zero, queue: "others", pending: 1, paused: true }
        ])
        for (const info of yield* q.queues()) {
          const { paused: _, ...counters } = info
          assert.deepStrictEqual(counters, yield* q.stats(info.queue))
        }
      }))

    // ---- dead jobs --------------------------------------------------------------------------

    it.effect("deadJobs pages by id after an id; a requeued job is claimable again with its attempts reset", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const ids = yield* deadOnes(q, 5)
        assert.deepStrictEqual((yield* q.deadJobs("once", { limit: 2 })).map((j) => j.id), ids.slice(0, 2))
        assert.deepStrictEqual((yield* q.deadJobs("once", { after: ids[1]!, limit: 2 })).map((j) => j.id), ids.slice(2, 4))
        assert.deepStrictEqual((yield* q.deadJobs("once", { after: ids[3]!, limit: 2 })).map((j) => j.id), ids.slice(4))
        assert.deepStrictEqual(yield* q.deadJobs("once", { after: ids[4]! }), [])
        assert.isTrue((yield* q.deadJobs("once")).every((j) => j.status === "Dead"))
        yield* q.requeueDead(ids[0]!)
        const [claim] = yield* q.claim(Once)
        assert.deepStrictEqual([claim?.job.id, claim?.job.attempts, claim?.job.failedAt], [ids[0], 1, undefined])
      }))

    it.effect("requeueDead of one job: pending with attempts 0, history ending in Requeued, lastError kept, counters exact", () =>
      Effect.gen(function*() {
        const { kv, q } = yield* openQueueAndKv(yield* storeOf)
        const expiries = Effect.map(kv.scan({ prefix: new Uint8Array([10, 1]) }), (entries) => entries.length)
        const [id] = yield* deadOnes(q, 1)
        assert.strictEqual(yield* expiries, 1)
        const before = Option.getOrThrow(yield* q.get(id!))
        yield* TestClock.adjust("5 seconds")
        const waiter = yield* q.awaitCompletion(id!, { timeout: 0 })
        assert.strictEqual(waiter._tag, "Completed") // dead: answered at once
        yield* q.requeueDead(id!)
        const after = Option.getOrThrow(yield* q.get(id!))
        assert.deepStrictEqual(
          [after.status, after.attempts, after.lastError, after.failedAt, after.expiresAt, after.enqueuedAt],
          ["Pending", 0, "failed 0", undefined, undefined, before.enqueuedAt]
        )
        const history = after.history ?? []
        assert.deepStrictEqual(history.slice(0, -1), before.history ?? [])
        assert.deepStrictEqual(history.at(-1), { claimedAt: 5000, endedAt: 5000, outcome: "Requeued" })
        assert.deepStrictEqual(yield* q.stats("once"), { queue: "once", pending: 1, scheduled: 0, claimed: 0, done: 0, dead: 0 })
        assert.strictEqual(yield* expiries, 0, "its retention expiry entry left with it")
        // alive again: a new wait sees its new end
        const waiting = yield* Effect.forkChild(q.awaitCompletion(id!), { startImmediately: true })
        yield* q.ack((yield* q.claim(Once))[0]!)
        assert.deepStrictEqual(yield* Fiber.join(waiting), { _tag: "Completed", job: Option.none() })
      }))

    it.effect("a requeued job is not swept when its dead retention would have ended", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const [id, other] = yield* deadOnes(q, 2)
        yield* q.requeueDead(id!)
        yield* TestClock.adjust("2 hours")
        yield* eventually(Effect.map(q.get(other!), Option.isNone), "the other dead job swept", 10)
        assert.deepStrictEqual(Option.map(yield* q.get(id!), (r) => r.status), Option.some("Pending"))
        assert.deepStrictEqual(yield* q.stats("once"), { queue: "once", pending: 1, scheduled: 0, claimed: 0, done: 0, dead: 0 })
      }))

    it.effect("requeueDead of an unknown id is JobNotFound, of a live job InvalidState, of a non-id InvalidJobId; nothing changes", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const unknown = yield* Effect.flip(q.requeueDead("01UNKNOWNJOB"))
        assert.deepStrictEqual([unknown._tag, unknown._tag === "JobNotFound" && unknown.id], ["JobNotFound", "01UNKNOWNJOB"])
        const { id } = yield* q.enqueue(Email, { to: "alive" })
        const pending = yield* Effect.flip(q.requeueDead(id))
        assert.strictEqual(pending._tag, "InvalidState")
        if (pending._tag === "InvalidState") assert.deepStrictEqual([pending.id, pending.state, pending.expected], [id, "Pending", "Dead"])
        yield* q.claim(Email)
        assert.strictEqual(reasonOf(yield* Effect.exit(q.requeueDead(id))), "InvalidState")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.requeueDead("a b"))), "InvalidJobId")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.requeueDead("emails", { all: false as unknown as true }))), "InvalidOption")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.requeueDead("../x", { all: true }))), "InvalidQueueName")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.purgeDead("a//b"))), "InvalidQueueName")
        assert.deepStrictEqual(yield* q.stats("emails"), { queue: "emails", pending: 0, scheduled: 0, claimed: 1, done: 0, dead: 0 })
      }))

    it.effect("requeueDead of a dead job the retention sweep deleted is JobNotFound, and nothing comes back", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const Brief = Job.define("brief", { payload: Schema.Number, deadRetention: "1 minute" })
        const { id } = yield* q.enqueue(Brief, 1)
        yield* q.deadLetter((yield* q.claim(Brief))[0]!, "no")
        assert.deepStrictEqual((yield* q.deadJobs("brief")).map((j) => j.id), [id])
        yield* TestClock.adjust("61 seconds")
        yield* eventually(Effect.map(q.get(id), Option.isNone), "the dead job swept", 10)
        const missing = yield* Effect.flip(q.requeueDead(id))
        assert.deepStrictEqual([missing._tag, missing._tag === "JobNotFound" && missing.id], ["JobNotFound", id])
        assert.deepStrictEqual(yield* q.stats("brief"), { queue: "brief", pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0 })
        assert.deepStrictEqual(yield* q.deadJobs("brief"), [])
        assert.deepStrictEqual(yield* q.claim(Brief), [])
      }))

    it.effect("a dead job and a kept done job whose retention is not a whole number of milliseconds are swept once it ends", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        // 60 000.5 ms: the sweep at 60 000 finds their expiry entries (whole milliseconds) before they expire
        const Dead = Job.define("frac-dead", { payload: Schema.Number, deadRetention: Duration.micros(60_000_500n) })
        const Done = Job.define("frac-done", { payload: Schema.Number, keepDone: Duration.micros(60_000_500n) })
        const dead = yield* q.enqueue(Dead, 1)
        yield* q.deadLetter((yield* q.claim(Dead))[0]!, "no")
        const done = yield* q.enqueue(Done, 2)
        yield* q.ack((yield* q.claim(Done))[0]!)
        assert.deepStrictEqual([Option.getOrThrow(yield* q.get(dead.id)).expiresAt, Option.getOrThrow(yield* q.get(done.id)).expiresAt], [60_000.5, 60_000.5])
        for (let second = 0; second < 60; second++) yield* TestClock.adjust("1 second") // each sweep at its tick
        assert.isTrue(Option.isSome(yield* q.get(dead.id)) && Option.isSome(yield* q.get(done.id)), "kept until its retention ends")
        yield* TestClock.adjust("1 second")
        yield* eventually(
          Effect.map(Effect.all([q.get(dead.id), q.get(done.id)]), ([a, b]) => Option.isNone(a) && Option.isNone(b)),
          "both swept at the next tick",
          100
        )
        assert.deepStrictEqual([(yield* q.stats("frac-dead")).dead, (yield* q.stats("frac-done")).done], [0, 1])
      }))

    it.effect("history after a requeue: the first death, a Requeued entry at the requeue instant, then the second death", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Once, 1)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* q.nack((yield* q.claim(Once))[0]!, "unroutable"), "DeadLettered")
        yield* TestClock.adjust("2 seconds")
        yield* q.requeueDead(id)
        yield* TestClock.adjust("3 seconds")
        const [claim] = yield* q.claim(Once)
        assert.deepStrictEqual([claim?.job.id, claim?.job.attempts], [id, 1])
        yield* TestClock.adjust("4 seconds")
        yield* q.deadLetter(claim!, "again")
        assert.deepStrictEqual(yield* q.history(id), [
          { claimedAt: 1000, endedAt: 1000, outcome: "DeadLettered", error: "unroutable" },
          { claimedAt: 3000, endedAt: 3000, outcome: "Requeued" },
          { claimedAt: 6000, endedAt: 10_000, outcome: "DeadLettered", error: "again" }
        ])
        assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => [r.status, r.attempts, r.lastError]), Option.some(["Dead", 1, "again"]))
      }))

    it.effect("an offloaded job dead by its lease after a cancel request: requeued with its payload object, the request cleared, the object deleted at its ack", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { q } = yield* openQueueAndKv(store, { offloadThreshold: 64 })
        const objects = Effect.map(Stream.runCollect(serviceOf(store).list("payloads/")), (e) => e.length)
        const { id } = yield* q.enqueue(Blob, big("dead"))
        const [first] = yield* q.claim(Blob, { lease: "1 second" })
        assert.strictEqual(yield* q.cancel(id), "Requested")
        yield* TestClock.adjust("3 seconds")
        yield* eventually(Effect.map(q.stats("blobs"), (s) => s.dead === 1), "dead-lettered by the reaper", 10)
        assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(first!))), "ClaimLost")
        assert.strictEqual(yield* objects, 1)
        const [dead] = yield* q.deadJobs("blobs")
        assert.deepStrictEqual([dead?.id, dead?.cancelRequested, dead?.payloadError, dead?.payloadRef !== undefined], [id, true, undefined, true])
        assert.deepStrictEqual((yield* q.list(Blob, "Dead")).jobs.map((j) => j.payload), [big("dead")])
        yield* q.requeueDead(id)
        assert.strictEqual(yield* objects, 1)
        assert.isUndefined(Option.getOrThrow(yield* q.get(id)).cancelRequested)
        const [claim] = yield* q.claim(Blob)
        assert.deepStrictEqual([claim?.job.id, claim?.job.payload], [id, big("dead")])
        const cancelled = yield* Effect.forkChild(claim!.cancelled, { startImmediately: true })
        yield* Effect.yieldNow
        assert.isUndefined(cancelled.pollUnsafe(), "the requeued claim is not asked to cancel")
        yield* q.extendLease(claim!, "1 minute") // refused were a cancel asked
        yield* q.ack(claim!)
        assert.strictEqual(yield* objects, 0)
        assert.deepStrictEqual(yield* q.stats("blobs"), { queue: "blobs", pending: 0, scheduled: 0, claimed: 0, done: 1, dead: 0 })
      }))

    it.effect("requeueDead of a whole queue takes more than one page, and every job comes back once", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const ids = yield* deadOnes(q, 520)
        yield* q.enqueue(Other, { to: "untouched" })
        assert.strictEqual((yield* q.stats("once")).dead, 520)
        assert.strictEqual(yield* q.requeueDead("once", { all: true }), 520)
        assert.deepStrictEqual(yield* q.stats("once"), { queue: "once", pending: 520, scheduled: 0, claimed: 0, done: 0, dead: 0 })
        assert.deepStrictEqual(yield* q.deadJobs("once"), [])
        const claims = yield* q.claim(Once, { max: 1000 })
        assert.deepStrictEqual(claims.map((c) => c.job.id), [...ids])
        assert.isTrue(claims.every((c) => c.job.attempts === 1 && c.job.history?.at(-1)?.outcome === "Requeued"))
        assert.strictEqual(yield* q.requeueDead("once", { all: true }), 0)
        assert.strictEqual((yield* q.stats("others")).pending, 1)
      }))

    it.effect("purgeDead deletes every dead job of the queue with its payload object and counter; others stay", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { kv, q } = yield* openQueueAndKv(store, { offloadThreshold: 64 })
        const objects = Effect.map(Stream.runCollect(serviceOf(store).list("payloads/")), (e) => e.length)
        const dead = yield* q.enqueueBatch(Blob, [big("a"), big("b"), { data: "small" }])
        const claims = yield* q.claim(Blob, { max: 3 })
        yield* Effect.forEach(claims, (c) => q.nack(c, "no"), { discard: true })
        const live = yield* q.enqueue(Blob, big("live"))
        yield* deadOnes(q, 2)
        assert.strictEqual(yield* objects, 3)
        assert.strictEqual(yield* q.purgeDead("blobs"), 3)
        assert.strictEqual(yield* objects, 1)
        for (const id of dead) assert.isTrue(Option.isNone(yield* q.get(id)))
        assert.deepStrictEqual(yield* q.stats("blobs"), { queue: "blobs", pending: 1, scheduled: 0, claimed: 0, done: 0, dead: 0 })
        assert.strictEqual((yield* q.stats("once")).dead, 2)
        assert.deepStrictEqual(Option.map(yield* q.get(live.id), (r) => r.status), Option.some("Pending"))
        assert.strictEqual(yield* q.purgeDead("blobs"), 0)
        assert.strictEqual((yield* kv.scan({ prefix: new Uint8Array([10, 1]) })).length, 2, "only the other queue's expiry entries are left")
        // the retention sweep finds nothing left of them later
        yield* TestClock.adjust("2 hours")
        yield* eventually(Effect.map(q.stats("once"), (s) => s.dead === 0), "the other queue's dead swept", 10)
        assert.strictEqual((yield* q.stats("blobs")).dead, 0)
      }))

    // ---- pause / resume ---------------------------------------------------------------------

    it.effect("a paused queue's claims return nothing while enqueues succeed; resume wakes a waiting claim", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        yield* q.pause("emails")
        yield* q.pause("emails") // idempotent
        const { id } = yield* q.enqueue(Email, { to: "held" })
        assert.deepStrictEqual(yield* q.claim(Email), [])
        assert.strictEqual((yield* q.stats("emails")).pending, 1)
        yield* q.enqueue(Other, { to: "free" })
        assert.strictEqual((yield* q.claim(Other)).length, 1) // other queues go on
        const waiting = yield* Effect.forkChild(q.claim(Email, { wait: "1 minute" }), { startImmediately: true })
        yield* q.enqueue(Email, { to: "another" }) // an arrival does not get past the pause
        yield* TestClock.adjust("10 seconds")
        assert.isUndefined(waiting.pollUnsafe())
        yield* q.resume("emails")
        const [claim] = yield* Fiber.join(waiting)
        assert.strictEqual(claim?.job.id, id)
        yield* q.resume("emails") // idempotent
        assert.strictEqual(reasonOf(yield* Effect.exit(q.pause("bad name"))), "InvalidQueueName")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.resume(7 as unknown as string))), "InvalidQueueName")
      }))

    it.effect("a paused claim with a wait returns nothing at its deadline", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        yield* q.enqueue(Email, { to: "held" })
        yield* q.pause("emails")
        const waiting = yield* Effect.forkChild(q.claim(Email, { wait: "5 seconds" }), { startImmediately: true })
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(yield* Fiber.join(waiting), [])
      }))

    it.effect("a Worker of a paused queue idles without spinning, and takes the jobs once resumed", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        let claims = 0
        const counting: JobQueue.Service = { ...q, claim: (definition, options) => Effect.suspend(() => (claims++, q.claim(definition, options))) }
        yield* q.pause("emails")
        yield* q.enqueueBatch(Email, [{ to: "a" }, { to: "b" }])
        const handled: Array<string> = []
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(
          Worker.layer(Email, (payload) => Effect.sync(() => void handled.push(payload.to)), { idleWait: "5 seconds" }).pipe(
            Layer.provide(Layer.succeed(JobQueue.JobQueue, counting))
          ),
          scope
        )
        for (let i = 0; i < 60; i++) yield* TestClock.adjust("500 millis") // thirty seconds
        assert.deepStrictEqual(handled, [])
        assert.isAtMost(claims, 10, "a claim every idleWait, not a spin")
        yield* q.resume("emails")
        yield* eventually(Effect.map(q.stats("emails"), (s) => s.done === 2), "both done once resumed", 10)
        assert.deepStrictEqual(handled.sort(), ["a", "b"])
        yield* Scope.close(scope, Exit.void)
      }))

    it.effect("a pause survives a reopen of the queue on the same store, and so does a resume", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const first = yield* openQueueAndKv(store)
        yield* first.q.pause("emails")
        const { id } = yield* first.q.enqueue(Email, { to: "x" })
        yield* Scope.close(first.scope, Exit.void)
        const second = yield* openQueueAndKv(store)
        assert.deepStrictEqual(yield* second.q.claim(Email), [])
        assert.isTrue((yield* second.q.queues()).find((i) => i.queue === "emails")?.paused)
        yield* second.q.resume("emails")
        yield* Scope.close(second.scope, Exit.void)
        const third = yield* openQueueAndKv(store)
        assert.strictEqual((yield* third.q.claim(Email))[0]?.job.id, id)
        assert.isFalse((yield* third.q.queues()).find((i) => i.queue === "emails")?.paused)
      }))
  })
