// Settlement effects across a crash, on the fault-injecting memory store: an ack, a nack that
// dead-letters and a deadLetter, each carrying a follow-up (offloaded) and a user KV write, cut by a
// crash while its WAL put hangs, fails, or lands unacknowledged. After a reopen on the raw store the
// follow-up and the KV write are there together with the settlement or not at all, no job lacks its
// payload object, and the job settles again with the same effects exactly once.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Schema, Scope, Stream } from "effect"
import * as JobRecordSchema from "../schema/JobRecord.ts"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as Keys from "../src/queue/keys.ts"
import { bytes, reasonOf, text } from "./utils/exits.ts"
import { faultyMemory } from "./utils/kv.ts"
import { type AnyStore, layerOf } from "./utils/stores.ts"

const Task = Job.define("tasks", { payload: Schema.Struct({ data: Schema.String }), maxAttempts: 3, backoff: Job.Backoff.none() })
/** Dead-letters at its first nack. */
const Fragile = Job.define("fragile", { payload: Schema.Struct({ data: Schema.String }), maxAttempts: 1 })
const Notify = Job.define("notify", { payload: Schema.Struct({ user: Schema.String }) })
const big = (tag: string) => ({ data: `${tag}:${"x".repeat(200)}` })
const bigNotify = { user: `u:${"y".repeat(200)}` }

/** A queue and its KV over `store`, in a scope of their own (abandoned unclosed: a crash). */
const open = (store: AnyStore) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      JobQueue.layer({ offloadThreshold: 64, reaperInterval: "1 second", schedulerInterval: "100 millis" }).pipe(
        Layer.provideMerge(Kv.layer()),
        Layer.provide(layerOf(store))
      ),
      scope
    )
    return { q: Context.get(context, JobQueue.JobQueue), kv: Context.get(context, Kv.Kv), scope }
  })

const counts = (q: JobQueue.Service, queue: string) =>
  Effect.map(q.stats(queue), (s) => [s.pending, s.scheduled, s.claimed, s.done, s.dead])

/** Every stored job whose payload object is gone (none expected). */
const jobsMissingTheirPayload = (kv: Kv.Service, raw: ObjectStore.Service) =>
  Effect.gen(function*() {
    const missing: Array<string> = []
    for (const prefix of Keys.recordPrefixes) {
      for (const entry of yield* kv.scan({ prefix: Keys.toBytes(prefix) })) {
        const record = JobRecordSchema.decode(entry.value)
        if (record.payloadRef === undefined) continue
        if (Exit.isFailure(yield* Effect.exit(raw.head(record.payloadRef)))) missing.push(`${record.id} (${record.status})`)
      }
    }
    return missing
  })

const objectKeys = (raw: ObjectStore.Service, prefix: string) =>
  Effect.map(Stream.runCollect(raw.list(prefix)), (entries) => entries.map((e) => e.key))

/** Yields until `condition` holds (the store answers without time passing). */
const until = (condition: Effect.Effect<boolean>, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      if (yield* condition) return
      yield* Effect.yieldNow
    }
    assert.fail(`not reached: ${what}`)
  })

type Settlement = "ack" | "nack" | "deadLetter"
/** How the settlement's WAL put ends: it hangs, it fails for good (the writer stops), or it lands unacknowledged. */
type Cut = "hangs" | "fails" | "lands"

const effects: JobQueue.SettlementEffects = { enqueue: [[Notify, bigNotify]], kv: { k: bytes("v") } }

const settle = (q: JobQueue.Service, how: Settlement, claim: JobQueue.Claim<any>): Effect.Effect<unknown, unknown> =>
  how === "ack"
    ? q.ack(claim, effects)
    : how === "nack"
    ? q.nack(claim, "failed", { effects })
    : q.deadLetter(claim, "bad", { effects })

const scenario = (how: Settlement, cut: Cut) =>
  Effect.gen(function*() {
    const { control, raw, store } = yield* faultyMemory({ seed: `${how}-${cut}` })
    const first = yield* open(store)
    const definition = how === "nack" ? Fragile : Task
    const { id } = yield* first.q.enqueue(definition, big("task"))
    const [claim] = yield* first.q.claim(definition, { lease: "1 hour" })
    yield* first.kv.flush // the claim is durable: the reopen finds it claimed
    const wals = (yield* objectKeys(raw, "wal/")).length
    const before = yield* control.operations
    // the follow-up's payload object is put at `before`, the settlement's WAL object at `before + 1`
    if (cut === "fails") yield* control.setFaults({ put: { errorRate: 1, errorReason: "Unknown", keyPrefix: "wal/" } })
    else yield* control.freezeAt(before + 1, { applyFirst: cut === "lands" })
    const settling = yield* Effect.forkDetach(settle(first.q, how, claim!))
    yield* until(
      cut === "fails" ? Effect.sync(() => settling.pollUnsafe() !== undefined) : Effect.map(control.operations, (n) => n >= before + 2),
      "the settlement's WAL put"
    )
    if (cut === "fails") assert.strictEqual(reasonOf(settling.pollUnsafe()!), "Closed")
    else assert.isUndefined(settling.pollUnsafe(), "the settlement is not acknowledged")
    // the crash: the store stops answering the process, whose scope is never closed
    yield* control.freeze
    assert.strictEqual((yield* objectKeys(raw, "wal/")).length, wals + (cut === "lands" ? 1 : 0))

    const second = yield* open(raw)
    const { kv, q } = second
    const written = Option.map(yield* q.kv.get("k"), text)
    const notify = yield* counts(q, "notify")
    // never one without the other
    assert.deepStrictEqual([Option.isSome(written), notify[0] === 1], cut === "lands" ? [true, true] : [false, false])
    assert.deepStrictEqual(yield* jobsMissingTheirPayload(kv, raw), [])
    const stored = yield* q.get(definition, id)
    if (cut === "lands") {
      assert.deepStrictEqual(written, Option.some("v"))
      assert.deepStrictEqual(notify, [1, 0, 0, 0, 0])
      if (how === "ack") assert.isTrue(Option.isNone(stored), "the acknowledged job is gone")
      else {
        const dead = Option.getOrThrow(stored)
        assert.deepStrictEqual([dead.status, dead.lastError, dead.payload], ["Dead", how === "nack" ? "failed" : "bad", big("task")])
      }
      const [followUp] = yield* q.claim(Notify)
      assert.deepStrictEqual(followUp?.job.payload, bigNotify)
      return yield* Scope.close(second.scope, Exit.void)
    }
    assert.deepStrictEqual(notify, [0, 0, 0, 0, 0])
    const job = Option.getOrThrow(stored)
    const last = job.history?.at(-1)
    if (how === "nack") {
      // its one attempt used up: the reopen dead-letters it for the interrupted claim
      assert.deepStrictEqual([job.status, job.attempts, last?.outcome, last?.error], ["Dead", 1, "DeadLettered", "claim interrupted by process exit"])
      yield* q.requeueDead(id)
    } else {
      assert.deepStrictEqual([job.status, job.attempts, last?.outcome], ["Pending", 1, "Interrupted"])
    }
    assert.deepStrictEqual(job.payload, big("task"))
    // settled again with the same effects: exactly one follow-up and the KV write
    const [again] = yield* q.claim(definition)
    assert.strictEqual(again?.job.id, id)
    const outcome = yield* settle(q, how, again!)
    if (how === "nack") assert.strictEqual(outcome, "DeadLettered")
    assert.deepStrictEqual(Option.map(yield* q.kv.get("k"), text), Option.some("v"))
    assert.deepStrictEqual(yield* counts(q, "notify"), [1, 0, 0, 0, 0])
    assert.deepStrictEqual((yield* q.claim(Notify, { max: 5 })).map((c) => c.job.payload), [bigNotify])
    assert.deepStrictEqual(yield* jobsMissingTheirPayload(kv, raw), [])
    yield* Scope.close(second.scope, Exit.void)
  })

describe("JobQueue settlement effects across a crash", () => {
  for (const how of ["ack", "nack", "deadLetter"] as const) {
    const name = how === "nack" ? "a nack that dead-letters" : `${how === "ack" ? "an ack" : "a deadLetter"}`
    it.effect(`${name} cut by a crash while its WAL put hangs applies neither its follow-up nor its KV write; settled again, both land once`, () =>
      scenario(how, "hangs"))
    it.effect(`${name} whose WAL put fails for good (Closed) applies neither its follow-up nor its KV write after a reopen; settled again, both land once`, () =>
      scenario(how, "fails"))
    it.effect(`${name} whose WAL put landed before the crash, unacknowledged, is found with both its follow-up and its KV write`, () =>
      scenario(how, "lands"))
  }
})
