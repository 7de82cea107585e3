// Cron schedules (JobQueue.schedule, unschedule, schedules) under TestClock, written once and run
// on every backend: one job per slot, its id derived from key and slot; the schedule carried on by
// a new process on the same store; a model with random downtime checking the missed policies
// (every slot at most once, the missed ones as the policy says); a writer takeover; a time zone
// across its DST changes; and every option refused at the edge with nothing stored.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Cron, type Duration, Effect, Exit, Layer, Option, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import { slotJobId } from "../../src/queue/schedules.ts"
import { reasonOf } from "../utils/exits.ts"
import { type AnyStore, type Backend, layerOf } from "../utils/stores.ts"

const Digest = Job.define("digest", { payload: Schema.Struct({ to: Schema.String }) })
const minute = 60_000

/** Lets real time pass too: the directory and S3 backends answer in real time. */
const realPause = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))

/** A queue over `store` in a scope of its own, and the effect closing it (a clean shutdown). */
const openQueue = (store: AnyStore, schedulerInterval: Duration.Input = "10 seconds", kvOptions?: Kv.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      // no writer record: its heartbeat would put across the long jumps of virtual time, for nothing here
      JobQueue.layer({ reaperInterval: "1 hour", schedulerInterval, writerRecord: false }).pipe(
        Layer.provideMerge(Kv.layer(kvOptions)),
        Layer.provide(layerOf(store))
      ),
      scope
    )
    return { q: Context.get(context, JobQueue.JobQueue), kv: Context.get(context, Kv.Kv), close: Scope.close(scope, Exit.void) }
  })

/** A queue opened by `openQueue`. */
type Opened = Effect.Success<ReturnType<typeof openQueue>>

/**
 * Moves virtual time on by at least `millis` ms, until every schedule of `q` has handled every
 * slot up to now (its next slot is in the future). `interval` is the queue's scheduler interval.
 *
 * Time jumps only while the schedules are caught up and the KV flushed, and then at most to the tick after the next
 * slot: so a commit of the scheduler is in flight only across small steps (the S3 store times a
 * request out after 30 virtual seconds). While not caught up, real time passes, and virtual time
 * by one interval now and then (a tick that ran before the slot sleeps until the next one).
 */
const runFor = (queue: Opened, millis: number, interval: number = 10_000) =>
  Effect.gen(function*() {
    const { kv, q } = queue
    const end = (yield* Clock.currentTimeMillis) + millis
    let waits = 0
    for (let i = 0; i < 1_000_000; i++) {
      const now = yield* Clock.currentTimeMillis
      const next = (yield* q.schedules()).flatMap((s) => Option.toArray(s.nextSlot))
      const caughtUp = next.every((slot) => slot > now)
      if (caughtUp && now >= end) return
      if (caughtUp) {
        waits = 0
        // what the schedules show is committed; durable before time jumps (a WAL put in flight would time out)
        yield* kv.flush
        yield* TestClock.adjust(Math.max(1, Math.min(end, Math.min(...next) + interval) - now))
      } else if (++waits % 20 === 0) {
        yield* TestClock.adjust(interval)
      }
      yield* realPause
    }
    assert.fail("the schedules did not catch up")
  })

/** Claims and acks every pending job of `Digest`: their ids. */
const drain = (q: JobQueue.Service) =>
  Effect.gen(function*() {
    const ids: Array<string> = []
    for (;;) {
      const claims = yield* q.claim(Digest, { max: 1000 })
      if (claims.length === 0) return ids
      for (const claim of claims) {
        ids.push(claim.job.id)
        yield* q.ack(claim)
      }
    }
  })

/** The slots of `cron` in `(from, to]`, as `Cron.next` walks them. */
const slotsIn = (cron: Cron.Cron, from: number, to: number): Array<number> => {
  const out: Array<number> = []
  for (let at = from;;) {
    const slot = Cron.next(cron, at).getTime()
    if (slot > to) return out
    out.push(slot)
    at = slot
  }
}

/** A small seeded generator (mulberry32), for the model's random downtimes. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const sorted = (ids: ReadonlyArray<string>) => [...ids].sort()

export const cronSchedulesSuite = (backend: Backend) =>
  describe(`Cron schedules on ${backend.name}`, () => {
    const storeOf = Layer.build(backend.layer()) // the store's context: with the directory backend's local log

    it.effect("a schedule enqueues one job per slot as time passes, its id derived from the key and the slot", () =>
      Effect.gen(function*() {
        const queue = yield* openQueue(yield* storeOf)
        const { q } = queue
        yield* TestClock.adjust(30_000) // the first slot is the first one after schedule was called
        const info = yield* q.schedule(Digest, { key: "digest", cron: "* * * * *", payload: { to: "all" }, priority: "high" })
        assert.deepStrictEqual(info, {
          key: "digest",
          queue: "digest",
          cron: "* * * * *",
          timezone: "UTC",
          missed: "latest",
          maxCatchUp: 100,
          nextSlot: Option.some(minute),
          lastSlot: Option.none()
        })
        assert.deepStrictEqual(yield* drain(q), [])
        yield* runFor(queue, 3 * minute)
        const claims = yield* q.claim(Digest, { max: 10 })
        assert.deepStrictEqual(claims.map((c) => c.job.id), [minute, 2 * minute, 3 * minute].map((slot) => slotJobId("digest", slot)))
        assert.deepStrictEqual(claims.map((c) => [c.job.payload, c.job.priority]), [[{ to: "all" }, 100], [{ to: "all" }, 100], [{ to: "all" }, 100]])
        assert.strictEqual(slotJobId("digest", minute), "ZGlnZXN0-0000000000060000")
        const [listed] = yield* q.schedules()
        assert.deepStrictEqual([listed!.lastSlot, listed!.nextSlot], [Option.some(3 * minute), Option.some(4 * minute)])
        assert.deepStrictEqual(yield* q.stats("digest"), { queue: "digest", pending: 0, scheduled: 0, claimed: 3, done: 0, dead: 0 })
      }))

    it.effect("unschedule stops a schedule, and tells NotFound for a key never scheduled", () =>
      Effect.gen(function*() {
        const queue = yield* openQueue(yield* storeOf)
        const { q } = queue
        yield* q.schedule(Digest, { key: "a", cron: "* * * * *", payload: { to: "a" } })
        yield* q.schedule(Digest, { key: "b", cron: "*/2 * * * *", payload: { to: "b" }, missed: "all", maxCatchUp: 5 })
        yield* runFor(queue, 2 * minute)
        assert.strictEqual(yield* q.unschedule("a"), "Removed")
        assert.strictEqual(yield* q.unschedule("a"), "NotFound")
        assert.strictEqual(yield* q.unschedule("never"), "NotFound")
        const list = yield* q.schedules()
        assert.deepStrictEqual(list.map((s) => [s.key, s.cron, s.missed, s.maxCatchUp]), [["b", "*/2 * * * *", "all", 5]])
        yield* runFor(queue, 4 * minute)
        assert.deepStrictEqual(
          sorted(yield* drain(q)),
          sorted([slotJobId("a", minute), slotJobId("a", 2 * minute), ...[2, 4, 6].map((m) => slotJobId("b", m * minute))])
        )
      }))

    it.effect("a schedule survives a clean reopen of the queue on the same store, and scheduling its key again keeps its last slot", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const first = yield* openQueue(store)
        yield* first.q.schedule(Digest, { key: "digest", cron: "* * * * *", payload: { to: "x" }, missed: "all" })
        yield* runFor(first, 2 * minute)
        assert.deepStrictEqual(yield* drain(first.q), [minute, 2 * minute].map((s) => slotJobId("digest", s)))
        yield* first.close
        const second = yield* openQueue(store)
        const [carried] = yield* second.q.schedules()
        assert.deepStrictEqual([carried?.key, carried?.lastSlot], ["digest", Option.some(2 * minute)])
        yield* runFor(second, 2 * minute)
        assert.deepStrictEqual(yield* drain(second.q), [3 * minute, 4 * minute].map((s) => slotJobId("digest", s)))
        // replaced: every 2 minutes now; its progress kept, so no slot up to now comes again
        const replaced = yield* second.q.schedule(Digest, { key: "digest", cron: "*/2 * * * *", payload: { to: "y" } })
        assert.deepStrictEqual([replaced.cron, replaced.lastSlot, replaced.nextSlot], ["*/2 * * * *", Option.some(4 * minute), Option.some(6 * minute)])
        yield* runFor(second, 4 * minute)
        const claims = yield* second.q.claim(Digest, { max: 10 })
        assert.deepStrictEqual(claims.map((c) => [c.job.id, c.job.payload]), [[slotJobId("digest", 6 * minute), { to: "y" }], [slotJobId("digest", 8 * minute), { to: "y" }]])
      }))

    for (const missed of ["all", "latest", "none"] as const) {
      it.effect(`under missed "${missed}", random downtime: every slot at most once, the missed ones as the policy says (seeds 1-4)`, () =>
        Effect.gen(function*() {
          const expression = "*/5 * * * *"
          const cron = Cron.parseUnsafe(expression, "UTC")
          const maxCatchUp = 4
          for (const seed of [1, 2, 3, 4]) {
            const random = seeded(seed * 7919 + missed.length)
            const store = yield* storeOf
            let queue = yield* openQueue(store)
            const createdAt = yield* Clock.currentTimeMillis
            yield* queue.q.schedule(Digest, { key: `m${seed}`, cron: expression, payload: { to: "m" }, missed, maxCatchUp })
            const seen: Array<string> = []
            const expected: Array<number> = []
            let runningFrom = createdAt
            for (let round = 0; round < 4; round++) {
              yield* runFor(queue, Math.floor(random() * 30) * minute)
              const closedAt = yield* Clock.currentTimeMillis
              expected.push(...slotsIn(cron, runningFrom, closedAt))
              seen.push(...(yield* drain(queue.q)))
              yield* queue.close
              yield* TestClock.adjust(Math.floor(random() * 180 * minute))
              queue = yield* openQueue(store)
              const openedAt = yield* Clock.currentTimeMillis
              const missedSlots = slotsIn(cron, closedAt, openedAt)
              expected.push(...(missed === "all" ? missedSlots.slice(-maxCatchUp) : missed === "latest" ? missedSlots.slice(-1) : []))
              runningFrom = openedAt
            }
            yield* runFor(queue, 20 * minute)
            expected.push(...slotsIn(cron, runningFrom, yield* Clock.currentTimeMillis))
            seen.push(...(yield* drain(queue.q)))
            yield* queue.close
            assert.deepStrictEqual(sorted(seen), sorted(expected.map((slot) => slotJobId(`m${seed}`, slot))), `seed ${seed}`)
            assert.strictEqual(new Set(seen).size, seen.length, `seed ${seed}: a slot enqueued twice`)
          }
        }))
    }

    it.effect("writer takeovers enqueue no slot twice and lose none", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const cron = Cron.parseUnsafe("* * * * *", "UTC")
        let writer = yield* openQueue(store, "1 second")
        const createdAt = yield* Clock.currentTimeMillis
        yield* writer.q.schedule(Digest, { key: "t", cron: "* * * * *", payload: { to: "t" }, missed: "all" })
        const seen: Array<string> = []
        for (const offset of [0, 500, 1_000, 15_000]) {
          yield* runFor(writer, 3 * minute, 1_000)
          seen.push(...(yield* drain(writer.q)))
          // a slot falls due, and the next writer opens while the current one may be committing it
          yield* TestClock.adjust(minute - 1 + offset)
          const next = yield* openQueue(store, "1 second")
          const fenced = yield* Effect.exit(writer.q.schedule(Digest, { key: "u", cron: "* * * * *", payload: { to: "u" } }))
          assert.strictEqual(reasonOf(fenced), "Fenced")
          writer = next
        }
        yield* runFor(writer, 3 * minute, 1_000)
        seen.push(...(yield* drain(writer.q)))
        const end = yield* Clock.currentTimeMillis
        assert.deepStrictEqual(sorted(seen), sorted(slotsIn(cron, createdAt, end).map((slot) => slotJobId("t", slot))))
        assert.strictEqual((yield* writer.q.stats("digest")).done, seen.length)
        assert.deepStrictEqual((yield* writer.q.schedules()).map((s) => s.key), ["t"])
      }))

    it.effect("a slot whose job id exists already is not enqueued again, and the counters stay exact", () =>
      Effect.gen(function*() {
        const queue = yield* openQueue(yield* storeOf)
        const { q } = queue
        yield* q.schedule(Digest, { key: "taken", cron: "* * * * *", payload: { to: "schedule" } })
        yield* q.enqueue(Digest, { to: "mine" }, { id: slotJobId("taken", minute) })
        yield* runFor(queue, 2 * minute)
        const claims = yield* q.claim(Digest, { max: 10 })
        assert.deepStrictEqual(claims.map((c) => [c.job.id, c.job.payload]), [
          [slotJobId("taken", minute), { to: "mine" }],
          [slotJobId("taken", 2 * minute), { to: "schedule" }]
        ])
        assert.deepStrictEqual(yield* q.stats("digest"), { queue: "digest", pending: 0, scheduled: 0, claimed: 2, done: 0, dead: 0 })
      }))

    it.effect("a large catch-up is committed in several batches: the newest maxCatchUp slots, each once", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const cron = Cron.parseUnsafe("* * * * *", "UTC")
        const first = yield* openQueue(store)
        const payload = { to: "x".repeat(60_000) } // about 62 jobs fit one commit
        yield* first.q.schedule(Digest, { key: "big", cron: "* * * * *", payload, missed: "all", maxCatchUp: 150 })
        yield* first.close
        yield* TestClock.adjust(5 * 60 * minute)
        const second = yield* openQueue(store)
        yield* runFor(second, 0)
        const ids = yield* drain(second.q)
        // the catch-up takes real time (several commits of large records): a minute may pass meanwhile
        // in virtual time, and the slot it brings is due like any other, once
        const lastSlot = Option.getOrThrow((yield* second.q.schedules())[0]!.lastSlot)
        assert.isAtLeast(lastSlot, 5 * 60 * minute)
        const expected = [...slotsIn(cron, 0, 5 * 60 * minute).slice(-150), ...slotsIn(cron, 5 * 60 * minute, lastSlot)]
        assert.deepStrictEqual(ids, expected.map((slot) => slotJobId("big", slot)))
      }))

    it.effect("in a time zone with DST changes the slots are what Cron.next says, each once (Europe/Paris, 02:30 daily)", () =>
      Effect.gen(function*() {
        const cron = Cron.parseUnsafe("30 2 * * *", "Europe/Paris")
        const seen: Array<string> = []
        const expected: Array<number> = []
        for (const [from, days] of [["2026-03-26T12:00:00Z", 6], ["2026-10-22T12:00:00Z", 6]] as const) {
          yield* TestClock.setTime(Date.parse(from))
          // a queue of its own for each change (no fence check: days go by)
          const queue = yield* openQueue(yield* storeOf, "20 seconds", { fenceCheckInterval: false })
          const { close, q } = queue
          yield* q.schedule(Digest, { key: "paris", cron: "30 2 * * *", timezone: "Europe/Paris", payload: { to: "p" } })
          const start = yield* Clock.currentTimeMillis
          yield* runFor(queue, days * 24 * 60 * minute, 20_000)
          expected.push(...slotsIn(cron, start, yield* Clock.currentTimeMillis))
          seen.push(...(yield* drain(q)))
          yield* close
        }
        const iso = expected.map((slot) => new Date(slot).toISOString())
        // the spring gap (02:30 does not exist on 29 March) and the autumn fold (it happens twice on 25 October)
        assert.includeMembers(iso, ["2026-03-28T01:30:00.000Z", "2026-03-29T01:30:00.000Z", "2026-03-30T00:30:00.000Z"])
        assert.includeMembers(iso, ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"])
        assert.notInclude(iso, "2026-10-25T01:30:00.000Z") // the repeated 02:30 once: the earlier one
        assert.strictEqual(expected.length, 12)
        assert.deepStrictEqual(sorted(seen), sorted(expected.map((slot) => slotJobId("paris", slot))))
        assert.strictEqual(new Set(seen).size, seen.length)
      }))

    it.effect("every option outside its rule is InvalidOption naming it, and nothing is stored", () =>
      Effect.gen(function*() {
        const queue = yield* openQueue(yield* storeOf)
        const { q } = queue
        const base = { key: "k", cron: "* * * * *", payload: { to: "x" } }
        const cases: ReadonlyArray<readonly [string, unknown]> = [
          ["key", { ...base, key: "" }],
          ["key", { ...base, key: "k".repeat(65) }],
          ["key", { ...base, key: 42 }],
          ["key", { ...base, key: "\uD800" }],
          ["cron", { ...base, cron: "not a cron" }],
          ["cron", { ...base, cron: "61 * * * *" }],
          ["cron", { ...base, cron: 5 }],
          ["cron", { ...base, cron: "0 0 30 2 *" }], // 30 February: never
          ["timezone", { ...base, timezone: "Mars/Olympus_Mons" }],
          ["timezone", { ...base, timezone: 1 }],
          ["missed", { ...base, missed: "some" }],
          ["maxCatchUp", { ...base, maxCatchUp: 0 }],
          ["maxCatchUp", { ...base, maxCatchUp: 10_001 }],
          ["maxCatchUp", { ...base, maxCatchUp: 1.5 }],
          ["maxCatchUp", { ...base, maxCatchUp: Number.NaN }],
          ["priority", { ...base, priority: "urgent" }],
          ["maxAttempts", { ...base, maxAttempts: 0 }],
          ["headers", { ...base, headers: { a: 1 } }],
          ["options", null],
          ["definition", undefined]
        ]
        for (const [option, options] of cases) {
          const definition = option === "definition" ? ({ ...Digest, maxAttempts: -1 } as typeof Digest) : Digest
          const exit = yield* Effect.exit(q.schedule(definition, options as JobQueue.ScheduleOptions<{ to: string }>))
          const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
          const failure = error?._tag === "Fail" ? (error.error as { _tag: string; option?: string }) : undefined
          assert.strictEqual(failure?._tag, "InvalidOption", `${option}: ${String(exit)}`)
          assert.isTrue(failure?.option?.startsWith(option), `${option}: named ${failure?.option}`)
        }
        assert.deepStrictEqual(yield* q.schedules(), [])
      }))

    it.effect("a queue name, a payload and a key refused: InvalidQueueName, InvalidPayload, PayloadTooLarge, InvalidOption; nothing stored", () =>
      Effect.gen(function*() {
        const queue = yield* openQueue(yield* storeOf)
        const { q } = queue
        const badQueue = { ...Digest, queue: "../up" }
        assert.strictEqual(reasonOf(yield* Effect.exit(q.schedule(badQueue, { key: "k", cron: "* * * * *", payload: { to: "x" } }))), "InvalidQueueName")
        const notAPayload = { to: 42 } as unknown as { to: string }
        assert.strictEqual(reasonOf(yield* Effect.exit(q.schedule(Digest, { key: "k", cron: "* * * * *", payload: notAPayload }))), "InvalidPayload")
        const large = { to: "x".repeat(64 * 1024) }
        assert.strictEqual(reasonOf(yield* Effect.exit(q.schedule(Digest, { key: "k", cron: "* * * * *", payload: large }))), "PayloadTooLarge")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.unschedule(""))), "InvalidOption")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.unschedule(7 as unknown as string))), "InvalidOption")
        assert.deepStrictEqual(yield* q.schedules(), [])
        yield* runFor(queue, 2 * minute)
        assert.deepStrictEqual(yield* q.stats("digest"), { queue: "digest", pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0 })
      }))

    it.effect("the longest key (64 bytes of UTF-8) gives a job id within the rule", () =>
      Effect.gen(function*() {
        const queue = yield* openQueue(yield* storeOf)
        const { q } = queue
        const key = "é".repeat(32)
        yield* q.schedule(Digest, { key, cron: "* * * * *", payload: { to: "x" } })
        yield* runFor(queue, minute)
        const [claim] = yield* q.claim(Digest)
        assert.strictEqual(claim?.job.id, slotJobId(key, minute))
        assert.match(claim!.job.id, /^[A-Za-z0-9_-]{1,128}$/)
        assert.notStrictEqual(slotJobId("a", 1), slotJobId("a-", 1))
      }))
  })
