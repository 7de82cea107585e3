// The queue's second-round contract under TestClock, written once and run on every backend: the
// attempt history of a job, the user KV namespace, the effects a settlement commits with it, and
// a job's result kept for its retention.
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Option, Schema, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Core from "../../src/queue/core.ts"
import * as Keys from "../../src/queue/keys.ts"
import { settingsOf } from "../../src/queue/wire.ts"
import * as Worker from "../../src/Worker.ts"
import { bytes, reasonOf, text } from "../utils/exits.ts"
import { type AnyStore, type Backend, serviceOf } from "../utils/stores.ts"
import { eventually, openQueue, openQueueAndKv } from "../utils/queue.ts"

const Email = Job.define("emails", { payload: Schema.Struct({ to: Schema.String }), backoff: Job.Backoff.none() })
const Kept = Job.define("kept", { payload: Schema.Struct({ n: Schema.Number }), keepDone: "1 hour", backoff: Job.Backoff.none() })
const Receipt = Schema.Struct({ messageId: Schema.String, size: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0)) })
const Send = Job.define("send", { payload: Schema.Struct({ to: Schema.String }), result: Receipt, backoff: Job.Backoff.none() })
const Blob = Job.define("blobs", { payload: Schema.Struct({ data: Schema.String }) })
const big = (tag: string) => ({ data: `${tag}:${"x".repeat(200)}` })

/** The typed failure of an exit (fails the test when it succeeded or died). */
const failureOf = (exit: Exit.Exit<unknown, unknown>): { readonly _tag: string; readonly option?: string; readonly reason?: string } => {
  if (Exit.isSuccess(exit)) return assert.fail("expected a failure, got a success")
  const error = exit.cause.reasons.find(Cause.isFailReason)?.error
  if (error === undefined) return assert.fail(`expected a typed failure: ${Cause.pretty(exit.cause)}`)
  return error as { readonly _tag: string }
}

/** The counters of a queue without its name, in the order pending, scheduled, claimed, done, dead. */
const counts = (q: JobQueue.Service, queue: string) =>
  Effect.map(q.stats(queue), (s) => [s.pending, s.scheduled, s.claimed, s.done, s.dead])

const payloadObjects = (store: AnyStore) =>
  Effect.map(Stream.runCollect(serviceOf(store).list("payloads/")), (entries) => entries.map((e) => e.key))

/** The user KV as `{ key: text }`. */
const userEntries = (q: JobQueue.Service, prefix = "") =>
  Effect.map(q.kv.scan(prefix), (entries) => Object.fromEntries(entries.map((e) => [e.key, text(e.value)])))

export const queueContractSuite = (backend: Backend) =>
  describe(`history, results, user KV and settlement effects on ${backend.name}`, () => {
    const storeOf = Layer.build(backend.layer()) // the store's context: with the directory backend's local log
    const fresh = Effect.flatMap(storeOf, (store) => openQueue(store))

    // ---- attempt history ---------------------------------------------------------------------

    it.effect("a kept job's history shows a retry with its error, then its completion, with the TestClock's instants", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Kept, { n: 1 })
        yield* TestClock.adjust("1 second")
        const first = (yield* q.claim(Kept))[0]!
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(yield* q.nack(first, "smtp timeout"), "Retried")
        yield* TestClock.adjust("1 second")
        const second = (yield* q.claim(Kept))[0]!
        yield* TestClock.adjust("500 millis")
        yield* q.ack(second)
        assert.deepStrictEqual(yield* q.history(id), [
          { claimedAt: 1000, endedAt: 3000, outcome: "Retried", error: "smtp timeout" },
          { claimedAt: 4000, endedAt: 4500, outcome: "Completed" }
        ])
        assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => r.history), Option.some(yield* q.history(id)))
      }))

    it.effect("a nack with no attempts left, a deadLetter and a payload that does not decode at claim each end in DeadLettered with the reason", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const byNack = yield* q.enqueue(Email, { to: "a" }, { maxAttempts: 2 })
        yield* q.nack((yield* q.claim(Email))[0]!, "first")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* q.nack((yield* q.claim(Email))[0]!, "second"), "DeadLettered")
        assert.deepStrictEqual(yield* q.history(byNack.id), [
          { claimedAt: 0, endedAt: 0, outcome: "Retried", error: "first" },
          { claimedAt: 1000, endedAt: 1000, outcome: "DeadLettered", error: "second" }
        ])
        const byDeadLetter = yield* q.enqueue(Email, { to: "b" }, { maxAttempts: 5 })
        yield* TestClock.adjust("1 second")
        yield* q.deadLetter((yield* q.claim(Email))[0]!, "permanent")
        assert.deepStrictEqual(yield* q.history(byDeadLetter.id), [{ claimedAt: 2000, endedAt: 2000, outcome: "DeadLettered", error: "permanent" }])
        const Loose = Job.define("emails", { payload: Schema.Struct({ to: Schema.Unknown }) })
        const undecodable = yield* q.enqueue(Loose, { to: 42 })
        assert.deepStrictEqual(yield* q.claim(Email), [])
        const [attempt, ...rest] = yield* q.history(undecodable.id)
        assert.deepStrictEqual([attempt?.outcome, attempt?.claimedAt, attempt?.endedAt, rest], ["DeadLettered", 2000, 2000, []])
        assert.include(attempt?.error, "payload does not decode")
        assert.deepStrictEqual(yield* counts(q, "emails"), [0, 0, 0, 0, 3])
      }))

    it.effect("a lease the reaper finds expired is LeaseExpired, ended when the reaper ran", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Email, { to: "slow" })
        yield* TestClock.adjust("500 millis")
        yield* q.claim(Email, { lease: "2 seconds" })
        yield* TestClock.adjust("3 seconds") // the reaper runs every second: at 3000 it finds the lease (ended 2500) expired
        const [attempt] = yield* q.history(id)
        assert.deepStrictEqual([attempt?.outcome, attempt?.claimedAt, attempt?.error], ["LeaseExpired", 500, "lease expired"])
        assert.isTrue(attempt!.endedAt > 2500 && attempt!.endedAt <= 3500, `ended at ${attempt!.endedAt}`)
        assert.deepStrictEqual(yield* counts(q, "emails"), [1, 0, 0, 0, 0])
        // the last attempt's lease expiring dead-letters it: that attempt is DeadLettered
        const last = yield* q.enqueue(Email, { to: "last" }, { maxAttempts: 1, priority: "high" })
        yield* q.claim(Email, { lease: "1 second" })
        yield* TestClock.adjust("3 seconds")
        assert.deepStrictEqual((yield* q.history(last.id)).map((a) => [a.outcome, a.error]), [["DeadLettered", "lease expired"]])
      }))

    it.effect("a job left claimed by a queue abandoned is Interrupted, requeued when the store is opened again", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const first = yield* openQueue(store)
        const { id } = yield* first.enqueue(Email, { to: "a" })
        yield* TestClock.adjust("1 second")
        yield* first.claim(Email, { lease: "1 hour" })
        // the claim is not durable: a later durable commit carries it
        yield* first.enqueue(Email, { to: "flush" }, { priority: "low" })
        yield* TestClock.adjust("4 seconds")
        const second = yield* openQueue(store)
        assert.deepStrictEqual(yield* second.history(id), [
          { claimedAt: 1000, endedAt: 5000, outcome: "Interrupted", error: "claim interrupted by process exit" }
        ])
        assert.deepStrictEqual(Option.map(yield* second.get(id), (r) => [r.status, r.attempts]), Option.some(["Pending", 1]))
        assert.deepStrictEqual(yield* counts(second, "emails"), [2, 0, 0, 0, 0])
      }))

    it.effect("a claim held by another process (over QueueServer) is kept by a writer that opens after a crash: its holder settles it with the same token", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const first = yield* openQueue(store)
        const { id } = yield* first.enqueue(Email, { to: "a" })
        // the server's claim for a remote holder (what QueueServer's Claim does)
        const [held] = yield* Core.servedOf(first)!.core.claim("emails", 1, 60_000, 0, undefined, true)
        yield* first.enqueue(Email, { to: "flush" }, { priority: "low" }) // a durable commit carries the claim
        yield* TestClock.adjust("5 seconds")
        const second = yield* openQueue(store)
        const served = Core.servedOf(second)!
        const claim = served.held(id, held!.token)
        assert.isDefined(claim, "the claim is held again, with its token")
        assert.deepStrictEqual(Option.map(yield* second.get(id), (r) => [r.status, r.attempts]), Option.some(["Claimed", 1]))
        yield* served.core.extendLease(claim!, 60_000)
        yield* served.core.ack(claim!, settingsOf(Email), undefined, undefined)
        assert.isTrue(Option.isNone(yield* second.get(id)))
        assert.deepStrictEqual(yield* counts(second, "emails"), [1, 0, 0, 1, 0])
        // a holder that never comes back: its lease runs out, and the reaper requeues the job
        const { id: lost } = yield* second.enqueue(Email, { to: "b" }, { priority: "high" })
        yield* served.core.claim("emails", 1, 2_000, 0, undefined, true)
        yield* second.enqueue(Email, { to: "flush" }, { priority: "low" })
        const third = yield* openQueue(store)
        yield* TestClock.adjust("4 seconds")
        yield* eventually(Effect.map(third.get(lost), (r) => Option.isSome(r) && r.value.status === "Pending"), "requeued by the reaper", 100)
        assert.deepStrictEqual((yield* third.history(lost)).map((a) => a.outcome), ["LeaseExpired"])
      }))

    it.effect("a released claim is Released and its attempt not counted", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Email, { to: "a" })
        yield* TestClock.adjust("1 second")
        const claim = (yield* q.claim(Email))[0]!
        yield* TestClock.adjust("1 second")
        yield* q.release(claim)
        assert.deepStrictEqual(yield* q.history(id), [{ claimedAt: 1000, endedAt: 2000, outcome: "Released" }])
        assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => r.attempts), Option.some(0))
      }))

    it.effect("history is oldest first and keeps the last 32 attempts: 40 nacks with 50 attempts allowed leave attempts 9 to 40", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Email, { to: "flaky" }, { maxAttempts: 50 })
        for (let i = 1; i <= 40; i++) {
          yield* TestClock.adjust("10 millis")
          assert.strictEqual(yield* q.nack((yield* q.claim(Email))[0]!, `failure ${i}`), "Retried")
        }
        const history = yield* q.history(id)
        assert.strictEqual(history.length, 32)
        assert.deepStrictEqual(history.map((a) => a.error), Array.from({ length: 32 }, (_, i) => `failure ${i + 9}`))
        assert.deepStrictEqual(history.map((a) => a.claimedAt), Array.from({ length: 32 }, (_, i) => (i + 9) * 10))
        assert.isTrue(history.every((a) => a.outcome === "Retried"))
        assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => r.attempts), Option.some(40))
      }))

    it.effect("history of an unknown id or of a job acknowledged without keepDone is JobNotFound; a claimed job shows only its ended attempts", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const missing = failureOf(yield* Effect.exit(q.history("01ARZ3NDEKTSV4RRFFQ69G5FAV")))
        assert.deepStrictEqual([missing._tag, (missing as { id?: string }).id], ["JobNotFound", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        assert.strictEqual(reasonOf(yield* Effect.exit(q.history(42 as unknown as string))), "InvalidOption")
        const gone = yield* q.enqueue(Email, { to: "gone" })
        yield* q.ack((yield* q.claim(Email))[0]!)
        assert.strictEqual(reasonOf(yield* Effect.exit(q.history(gone.id))), "JobNotFound")
        const { id } = yield* q.enqueue(Email, { to: "busy" })
        assert.deepStrictEqual(yield* q.history(id), [])
        yield* q.nack((yield* q.claim(Email))[0]!, "once")
        const held = (yield* q.claim(Email))[0]!
        assert.deepStrictEqual((yield* q.history(id)).map((a) => a.outcome), ["Retried"])
        yield* q.ack(held)
        assert.strictEqual(reasonOf(yield* Effect.exit(q.history(id))), "JobNotFound")
      }))

    // ---- the user KV namespace -----------------------------------------------------------------

    it.effect("kv: put, get and delete round trip, and values are copies of the caller's buffers", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        assert.isTrue(Option.isNone(yield* q.kv.get("k")))
        const value = bytes("hello")
        yield* q.kv.put("k", value)
        value[0] = 0x4a // the caller reuses its buffer
        const read = Option.getOrThrow(yield* q.kv.get("k"))
        assert.strictEqual(text(read), "hello")
        read[0] = 0x4a // nor does mutating what get returned change the stored value
        assert.strictEqual(text(Option.getOrThrow(yield* q.kv.get("k"))), "hello")
        yield* q.kv.put("k", bytes("again"))
        assert.strictEqual(text(Option.getOrThrow(yield* q.kv.get("k"))), "again")
        yield* q.kv.put("empty", new Uint8Array(0))
        assert.deepStrictEqual(Option.map(yield* q.kv.get("empty"), (v) => v.length), Option.some(0))
        yield* q.kv.delete("k")
        yield* q.kv.delete("never-there")
        assert.isTrue(Option.isNone(yield* q.kv.get("k")))
        // a compareAndSet's stored value is a copy too
        const next = bytes("cas")
        assert.isTrue(yield* q.kv.compareAndSet("c", Option.none(), next))
        next[0] = 0x4a
        assert.strictEqual(text(Option.getOrThrow(yield* q.kv.get("c"))), "cas")
      }))

    it.effect("kv.compareAndSet: none expected sets an absent key only, a value expected must match, none next deletes", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        assert.isTrue(yield* q.kv.compareAndSet("lock", Option.none(), bytes("owner-1")))
        assert.isFalse(yield* q.kv.compareAndSet("lock", Option.none(), bytes("owner-2")))
        assert.strictEqual(text(Option.getOrThrow(yield* q.kv.get("lock"))), "owner-1")
        assert.isFalse(yield* q.kv.compareAndSet("lock", Option.some(bytes("owner-2")), bytes("owner-3")))
        assert.isFalse(yield* q.kv.compareAndSet("lock", bytes("owner-"), bytes("owner-3")), "a prefix is not a match")
        assert.strictEqual(text(Option.getOrThrow(yield* q.kv.get("lock"))), "owner-1")
        assert.isTrue(yield* q.kv.compareAndSet("lock", bytes("owner-1"), Option.some(bytes("owner-3"))))
        assert.strictEqual(text(Option.getOrThrow(yield* q.kv.get("lock"))), "owner-3")
        assert.isFalse(yield* q.kv.compareAndSet("lock", bytes("owner-1"), Option.none()))
        assert.isTrue(yield* q.kv.compareAndSet("lock", Option.some(bytes("owner-3")), Option.none()))
        assert.isTrue(Option.isNone(yield* q.kv.get("lock")))
        assert.isFalse(yield* q.kv.compareAndSet("absent", bytes("x"), bytes("y")), "a value expected of an absent key")
        assert.isTrue(yield* q.kv.compareAndSet("absent", Option.none(), Option.none()), "absent stays absent")
        assert.isTrue(Option.isNone(yield* q.kv.get("absent")))
      }))

    it.effect("kv.compareAndSet under contention: 4 fibers × 25 get-and-compareAndSet increments of one counter end at 100, with no TransactionConflict", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const read = Effect.map(q.kv.get("counter"), (v) => Option.match(v, { onNone: () => 0, onSome: (b) => Number(text(b)) }))
        const increment = Effect.gen(function*() {
          for (let tries = 1; ; tries++) {
            const current = yield* q.kv.get("counter")
            const next = Option.match(current, { onNone: () => 1, onSome: (b) => Number(text(b)) + 1 })
            yield* Effect.yieldNow // the other fibers read the same value meanwhile: all but one compareAndSet lose
            if (yield* q.kv.compareAndSet("counter", current, bytes(String(next)))) return tries
          }
        })
        const tries = yield* Effect.all(
          Array.from({ length: 4 }, () => Effect.forEach(Array.from({ length: 25 }), () => increment)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(yield* read, 100)
        const attempts = tries.flat().reduce((a, b) => a + b, 0)
        assert.isAbove(attempts, 100, "some compareAndSet lost a race and was tried again")
      }))

    it.effect("kv.scan: a prefix's entries in UTF-8 byte order, paged with after and limit; scan(\"\") lists every user key and no queue key", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        // queue keys first: jobs pending, claimed, scheduled, kept done, dead, dedup keys, counters
        yield* q.enqueue(Kept, { n: 1 }, { dedupKey: "d" })
        yield* q.enqueue(Kept, { n: 2 }, { delay: "1 hour" })
        yield* q.enqueue(Email, { to: "x" })
        yield* q.ack((yield* q.claim(Kept))[0]!)
        yield* q.deadLetter((yield* q.claim(Email))[0]!, "no")
        yield* q.enqueue(Email, { to: "held" })
        yield* q.claim(Email)
        // "\uFF01" comes before "😀" in UTF-8 (EF.. < F0..) though after it in UTF-16
        const keys = ["user/2", "user/10", "user/1", "users", "use", "z", "😀", "\uFF01", "\x01\x01emails", "\x06\x01x"]
        for (const key of keys) yield* q.kv.put(key, bytes(`v:${key}`))
        const all = yield* q.kv.scan("")
        const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        assert.deepStrictEqual(all.map((e) => e.key), sorted)
        assert.deepStrictEqual(all.map((e) => text(e.value)), sorted.map((k) => `v:${k}`))
        assert.deepStrictEqual(sorted.slice(-2), ["\uFF01", "😀"])
        assert.deepStrictEqual((yield* q.kv.scan("user/")).map((e) => e.key), ["user/1", "user/10", "user/2"])
        assert.deepStrictEqual((yield* q.kv.scan("user")).map((e) => e.key), ["user/1", "user/10", "user/2", "users"])
        assert.deepStrictEqual(yield* q.kv.scan("nothing"), [])
        // paging: after the last key returned, limit at a time
        const pages: Array<Array<string>> = []
        let after: string | undefined
        while (true) {
          const page = yield* q.kv.scan("", { limit: 3, ...(after === undefined ? {} : { after }) })
          if (page.length === 0) break
          pages.push(page.map((e) => e.key))
          after = page[page.length - 1]!.key
        }
        assert.deepStrictEqual(pages.map((p) => p.length), [3, 3, 3, 1])
        assert.deepStrictEqual(pages.flat(), sorted)
        assert.deepStrictEqual((yield* q.kv.scan("user/", { after: "user/1" })).map((e) => e.key), ["user/10", "user/2"])
        assert.deepStrictEqual((yield* q.kv.scan("user/", { after: "a" })).map((e) => e.key), ["user/1", "user/10", "user/2"])
        assert.deepStrictEqual(yield* q.kv.scan("user/", { after: "zz" }), [])
        // keys shaped like queue keys stay user keys, and the queue never sees them
        assert.strictEqual(text(Option.getOrThrow(yield* q.kv.get("\x01\x01emails"))), "v:\x01\x01emails")
        assert.deepStrictEqual(yield* counts(q, "emails"), [0, 0, 1, 0, 1])
        assert.deepStrictEqual(yield* counts(q, "kept"), [0, 1, 0, 1, 0])
        assert.deepStrictEqual(yield* q.claim(Email), [])
      }))

    it.effect("kv: written values survive a clean close and a reopen of the store", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const first = yield* openQueueAndKv(store)
        yield* first.q.kv.put("a", bytes("1"))
        yield* first.q.kv.put("b", bytes("2"))
        yield* first.q.kv.compareAndSet("c", Option.none(), bytes("3"))
        yield* first.q.kv.delete("b")
        yield* Scope.close(first.scope, Exit.void)
        // the closed queue refuses its KV and its reads with why
        for (const op of [first.q.kv.get("a"), first.q.kv.put("a", bytes("x")), first.q.kv.scan(""), first.q.history("x")]) {
          assert.strictEqual(reasonOf(yield* Effect.exit(op as Effect.Effect<unknown, unknown>)), "Closed")
        }
        const second = yield* openQueueAndKv(store)
        assert.deepStrictEqual(yield* userEntries(second.q), { a: "1", c: "3" })
        yield* Scope.close(second.scope, Exit.void)
      }))

    it.effect("kv: bad keys and values are InvalidOption, a value over 256 KiB is ValueTooLarge, and nothing is written", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const badKeys: ReadonlyArray<unknown> = ["", 42, undefined, null, "\uD800", "a\uDC00b", "é".repeat(513), "x".repeat(1025)]
        for (const key of badKeys) {
          const k = key as string
          for (const op of [q.kv.get(k), q.kv.put(k, bytes("v")), q.kv.delete(k), q.kv.compareAndSet(k, Option.none(), bytes("v"))]) {
            const error = failureOf(yield* Effect.exit(op as Effect.Effect<unknown, unknown>))
            assert.deepStrictEqual([error._tag, error.option], ["InvalidOption", "key"], String(key))
          }
        }
        yield* q.kv.put("x".repeat(1024), bytes("at the limit"))
        yield* q.kv.put("é".repeat(512), bytes("at the limit"))
        for (const value of ["text", [1, 2], new ArrayBuffer(2), Buffer.from("ok").toJSON(), null]) {
          const error = failureOf(yield* Effect.exit(q.kv.put("v", value as unknown as Uint8Array)))
          assert.deepStrictEqual([error._tag, error.option], ["InvalidOption", "value"])
        }
        assert.deepStrictEqual(failureOf(yield* Effect.exit(q.kv.compareAndSet("v", "x" as unknown as Uint8Array, bytes("y")))).option, "expected")
        assert.deepStrictEqual(failureOf(yield* Effect.exit(q.kv.compareAndSet("v", Option.none(), Option.some("y" as unknown as Uint8Array)))).option, "next")
        for (const bad of [{ limit: 0 }, { limit: 10_001 }, { limit: 1.5 }, { after: "" }, { after: 3 }, "opts"]) {
          assert.strictEqual(reasonOf(yield* Effect.exit(q.kv.scan("", bad as never))), "InvalidOption", JSON.stringify(bad))
        }
        assert.strictEqual(reasonOf(yield* Effect.exit(q.kv.scan(7 as unknown as string))), "InvalidOption")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.kv.scan("\uD800"))), "InvalidOption")
        // sizes: 256 KiB is taken, one byte more is not, by put and compareAndSet
        yield* q.kv.put("max", new Uint8Array(256 * 1024))
        const tooLarge = failureOf(yield* Effect.exit(q.kv.put("big", new Uint8Array(256 * 1024 + 1))))
        assert.deepStrictEqual([tooLarge._tag, (tooLarge as { limit?: number }).limit], ["ValueTooLarge", 256 * 1024])
        assert.strictEqual(reasonOf(yield* Effect.exit(q.kv.compareAndSet("big", Option.none(), new Uint8Array(256 * 1024 + 1)))), "ValueTooLarge")
        assert.isTrue(Option.isNone(yield* q.kv.get("big")))
        assert.deepStrictEqual((yield* q.kv.scan("")).map((e) => e.key).sort(), ["max", "x".repeat(1024), "é".repeat(512)].sort())
      }))

    it.effect("enqueue's kv is written with the job; a dedup hit and a refused kv write nothing", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const first = yield* q.enqueue(Email, { to: "a" }, { kv: { "sent/a": bytes("queued"), counter: bytes("1") }, dedupKey: "a" })
        assert.isTrue(first.created)
        assert.deepStrictEqual(yield* userEntries(q), { counter: "1", "sent/a": "queued" })
        const hit = yield* q.enqueue(Email, { to: "a" }, { kv: { "sent/a": bytes("twice"), other: bytes("x") }, dedupKey: "a" })
        assert.deepStrictEqual(hit, { id: first.id, created: false })
        assert.deepStrictEqual(yield* userEntries(q), { counter: "1", "sent/a": "queued" })
        // without a dedup key or an id
        yield* q.enqueue(Email, { to: "b" }, { kv: { "sent/b": bytes("queued") } })
        assert.deepStrictEqual(yield* userEntries(q, "sent/"), { "sent/a": "queued", "sent/b": "queued" })
        for (const kv of [{ "": bytes("v") }, { k: "text" }, { k: bytes("v"), "\uD800": bytes("v") }, [bytes("v")], "kv"]) {
          assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Email, { to: "c" }, { kv: kv as never }))), "InvalidOption", JSON.stringify(kv))
        }
        assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Email, { to: "c" }, { kv: { big: new Uint8Array(256 * 1024 + 1) } }))), "ValueTooLarge")
        assert.deepStrictEqual(yield* counts(q, "emails"), [2, 0, 0, 0, 0])
        assert.deepStrictEqual(Object.keys(yield* userEntries(q)), ["counter", "sent/a", "sent/b"])
      }))

    it.effect("enqueue with an id and kv writes both; the same id again is DuplicateJobId and writes none of its kv, nor leaves its payload object", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* openQueue(store, { offloadThreshold: 64 })
        const first = yield* q.enqueue(Email, { to: "a" }, { id: "custom-1", kv: { a: bytes("1") } })
        assert.deepStrictEqual(first, { id: "custom-1", created: true })
        assert.deepStrictEqual(yield* userEntries(q), { a: "1" })
        const before = yield* counts(q, "emails")
        const again = failureOf(yield* Effect.exit(q.enqueue(Email, { to: "b" }, { id: "custom-1", kv: { b: bytes("2"), a: bytes("overwritten") } })))
        assert.strictEqual(again._tag, "DuplicateJobId")
        assert.deepStrictEqual(yield* userEntries(q), { a: "1" })
        assert.deepStrictEqual(yield* counts(q, "emails"), before)
        assert.deepStrictEqual(before, [1, 0, 0, 0, 0])
        // with a payload stored as an object of its own (in another queue: ids are unique across queues)
        const offloaded = failureOf(yield* Effect.exit(q.enqueue(Blob, big("dup"), { id: "custom-1", kv: { c: bytes("3") } })))
        assert.strictEqual(offloaded._tag, "DuplicateJobId")
        assert.deepStrictEqual([yield* userEntries(q), yield* payloadObjects(store), yield* counts(q, "blobs")], [{ a: "1" }, [], [0, 0, 0, 0, 0]])
        assert.deepStrictEqual((yield* q.claim(Email, { max: 5 })).map((c) => c.job.payload), [{ to: "a" }])
      }))

    // ---- settlement effects ----------------------------------------------------------------------

    const Notify = Job.define("notify", { payload: Schema.Struct({ user: Schema.String }), backoff: Job.Backoff.none() })

    it.effect("ack's effects commit with it: follow-ups with their options, KV writes and deletes; a dedup hit enqueues nothing", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        yield* q.kv.put("pending/1", bytes("x"))
        yield* q.kv.put("stale", bytes("x"))
        const existing = yield* q.enqueue(Notify, { user: "dup" }, { dedupKey: "notify-dup" })
        yield* q.enqueue(Email, { to: "a" })
        const claim = (yield* q.claim(Email))[0]!
        yield* q.ack(claim, {
          enqueue: [
            [Notify, { user: "low" }, { priority: "low" }],
            [Notify, { user: "high" }, { priority: "high", headers: { from: "ack" } }],
            [Notify, { user: "later" }, { delay: "10 seconds" }],
            [Notify, { user: "dup-again" }, { dedupKey: "notify-dup" }],
            [Email, { to: "chained" }, { id: "chained-1", maxAttempts: 7 }]
          ],
          kv: { "done/1": bytes("ok"), stale: bytes("rewritten") },
          kvDelete: ["pending/1", "stale", "never-there"]
        })
        assert.deepStrictEqual(yield* userEntries(q), { "done/1": "ok", stale: "rewritten" })
        assert.deepStrictEqual(yield* counts(q, "emails"), [1, 0, 0, 1, 0])
        assert.deepStrictEqual(yield* counts(q, "notify"), [3, 1, 0, 0, 0])
        const notified = yield* q.claim(Notify, { max: 10 })
        assert.deepStrictEqual(notified.map((c) => c.job.payload.user), ["high", "dup", "low"])
        assert.deepStrictEqual(notified.map((c) => c.job.id)[1], existing.id)
        assert.deepStrictEqual(notified[0]!.job.headers, { from: "ack" })
        const [chained] = yield* q.claim(Email)
        assert.deepStrictEqual([chained!.job.id, chained!.job.maxAttempts, chained!.job.payload], ["chained-1", 7, { to: "chained" }])
        yield* TestClock.adjust("10 seconds")
        yield* eventually(Effect.map(q.stats("notify"), (s) => s.pending === 1), "the delayed follow-up promoted", 10)
        assert.deepStrictEqual((yield* q.claim(Notify)).map((c) => c.job.payload.user), ["later"])
        assert.deepStrictEqual(yield* counts(q, "notify"), [0, 0, 4, 0, 0])
      }))

    it.effect("a stale claim's ack is ClaimLost and applies none of its effects: no follow-up, no KV change, counters unchanged", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        yield* q.kv.put("keep", bytes("as it was"))
        yield* q.enqueue(Email, { to: "a" })
        const stale = (yield* q.claim(Email, { lease: "2 seconds" }))[0]!
        yield* TestClock.adjust("4 seconds")
        const again = (yield* q.claim(Email))[0]!
        assert.strictEqual(again.job.id, stale.job.id)
        const before = [yield* counts(q, "emails"), yield* counts(q, "notify")]
        const effects: JobQueue.SettlementEffects = {
          enqueue: [[Notify, { user: "u" }]],
          kv: { written: bytes("no") },
          kvDelete: ["keep"]
        }
        assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(stale, effects))), "ClaimLost")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.deadLetter(stale, "r", { effects }))), "ClaimLost")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.nack(stale, "r", { effects }))), "ClaimLost")
        assert.deepStrictEqual([yield* counts(q, "emails"), yield* counts(q, "notify")], before)
        assert.deepStrictEqual(yield* userEntries(q), { keep: "as it was" })
        assert.deepStrictEqual(yield* q.claim(Notify), [])
        // the live claim settles with them
        yield* q.ack(again, effects)
        assert.deepStrictEqual(yield* userEntries(q), { written: "no" })
        assert.deepStrictEqual(yield* counts(q, "notify"), [1, 0, 0, 0, 0])
      }))

    it.effect("effects that do not check fail the ack with nothing written, and the claim stays settleable", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const Positive = Job.define("positive", { payload: Schema.Number.check(Schema.isGreaterThan(0)) })
        yield* q.kv.put("keep", bytes("x"))
        yield* q.enqueue(Email, { to: "a" })
        const claim = (yield* q.claim(Email))[0]!
        const refused: ReadonlyArray<readonly [JobQueue.AckOptions, string, string | undefined]> = [
          [{ enqueue: [[Positive, -1]] }, "InvalidPayload", undefined],
          [{ enqueue: [[Notify, { user: "u" }], [Positive, -1]] }, "InvalidPayload", undefined],
          [{ enqueue: [[Notify, { user: "u" }, { priority: -1 }]] }, "InvalidOption", "priority"],
          [{ enqueue: [[Notify, { user: "u" }, { delay: "1 second", runAt: 5 }]] }, "InvalidOption", "delay"],
          [{ enqueue: [[Notify, { user: "u" }, { id: "bad id!" }]] }, "InvalidJobId", undefined],
          [{ enqueue: [[{ ...Notify, queue: "" }, { user: "u" }]] }, "InvalidQueueName", undefined],
          [{ enqueue: "not an array" as never }, "InvalidOption", "enqueue"],
          [{ enqueue: [[Notify]] as never }, "InvalidOption", "enqueue[0]"],
          [{ enqueue: [[Notify, { user: "u" }, { kv: { k: bytes("v") } } as never]] }, "InvalidOption", "enqueue[0].kv"],
          [{ enqueue: [[Notify, { user: "u" }, "options" as never]] }, "InvalidOption", undefined],
          [{ kv: { "": bytes("v") } }, "InvalidOption", undefined],
          [{ kv: { k: "text" as never } }, "InvalidOption", undefined],
          [{ kv: { k: new Uint8Array(256 * 1024 + 1) } }, "ValueTooLarge", undefined],
          [{ kvDelete: "keep" as never }, "InvalidOption", "kvDelete"],
          [{ kvDelete: ["keep", ""] }, "InvalidOption", "kvDelete[1]"],
          [{ enqueue: [[Notify, { user: "u" }]], kv: { ok: bytes("v") }, kvDelete: ["\uD800"] }, "InvalidOption", "kvDelete[0]"]
        ]
        for (const [options, tag, option] of refused) {
          const error = failureOf(yield* Effect.exit(q.ack(claim, options)))
          assert.strictEqual(error._tag, tag, JSON.stringify(options))
          if (option !== undefined) assert.strictEqual(error.option, option)
        }
        assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(claim, "options" as never))), "InvalidOption")
        assert.deepStrictEqual(yield* counts(q, "emails"), [0, 0, 1, 0, 0])
        assert.deepStrictEqual([yield* counts(q, "notify"), yield* counts(q, "positive")], [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
        assert.deepStrictEqual(yield* userEntries(q), { keep: "x" })
        yield* q.ack(claim)
        assert.deepStrictEqual(yield* counts(q, "emails"), [0, 0, 0, 1, 0])
      }))

    it.effect("a follow-up with an id that exists fails the ack with DuplicateJobId, nothing written, the claim still settleable", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        yield* q.enqueue(Notify, { user: "first" }, { id: "taken" })
        yield* q.enqueue(Email, { to: "a" })
        const claim = (yield* q.claim(Email))[0]!
        const exit = yield* Effect.exit(q.ack(claim, { enqueue: [[Notify, { user: "second" }, { id: "taken" }]], kv: { k: bytes("v") } }))
        assert.strictEqual(reasonOf(exit), "DuplicateJobId")
        assert.deepStrictEqual([yield* counts(q, "emails"), yield* counts(q, "notify")], [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0]])
        assert.deepStrictEqual(yield* q.kv.scan(""), [])
        yield* q.ack(claim)
        assert.deepStrictEqual(yield* counts(q, "emails"), [0, 0, 0, 1, 0])
      }))

    it.effect("nack's effects apply only when it dead-letters; deadLetter's apply with it", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Email, { to: "a" }, { maxAttempts: 2 })
        const effects = (tag: string): JobQueue.SettlementEffects => ({
          enqueue: [[Notify, { user: tag }]],
          kv: { [`failed/${tag}`]: bytes(tag) }
        })
        assert.strictEqual(yield* q.nack((yield* q.claim(Email))[0]!, "first", { effects: effects("retry") }), "Retried")
        assert.deepStrictEqual([yield* counts(q, "notify"), yield* q.kv.scan("")], [[0, 0, 0, 0, 0], []])
        assert.strictEqual(yield* q.nack((yield* q.claim(Email))[0]!, "second", { effects: effects("dead") }), "DeadLettered")
        assert.deepStrictEqual(yield* userEntries(q), { "failed/dead": "dead" })
        assert.deepStrictEqual(yield* counts(q, "notify"), [1, 0, 0, 0, 0])
        assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => r.status), Option.some("Dead"))
        yield* q.enqueue(Email, { to: "b" }, { maxAttempts: 5 })
        yield* q.deadLetter((yield* q.claim(Email))[0]!, "permanent", { effects: effects("manual") })
        assert.deepStrictEqual(yield* userEntries(q), { "failed/dead": "dead", "failed/manual": "manual" })
        assert.deepStrictEqual((yield* q.claim(Notify, { max: 5 })).map((c) => c.job.payload.user), ["dead", "manual"])
        assert.deepStrictEqual(yield* counts(q, "emails"), [0, 0, 0, 0, 2])
        assert.deepStrictEqual(yield* counts(q, "notify"), [0, 0, 2, 0, 0])
        // effects that do not check fail the nack and the deadLetter too, the claim kept
        yield* q.enqueue(Email, { to: "c" }, { maxAttempts: 1 })
        const last = (yield* q.claim(Email))[0]!
        assert.strictEqual(reasonOf(yield* Effect.exit(q.nack(last, "x", { effects: { kv: { "": bytes("v") } } }))), "InvalidOption")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.deadLetter(last, "x", { effects: { enqueue: 3 as never } }))), "InvalidOption")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.deadLetter(last, "x", { effects: "e" as never }))), "InvalidOption")
        assert.deepStrictEqual(yield* counts(q, "emails"), [0, 0, 1, 0, 2])
        assert.strictEqual(yield* q.nack(last, "x"), "DeadLettered")
      }))

    it.effect("an offloaded follow-up lands with its payload object; a follow-up of a ClaimLost ack leaves no object behind", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* openQueue(store, { offloadThreshold: 64 })
        yield* q.enqueue(Email, { to: "a" })
        yield* q.enqueue(Email, { to: "b" })
        const [live, stale] = yield* q.claim(Email, { max: 2, lease: "2 seconds" })
        yield* q.extendLease(live!, "1 hour")
        yield* q.ack(live!, { enqueue: [[Blob, big("kept")], [Blob, { data: "small" }]] })
        assert.strictEqual((yield* payloadObjects(store)).length, 1)
        const claims = yield* q.claim(Blob, { max: 2 })
        assert.deepStrictEqual(claims.map((c) => c.job.payload), [big("kept"), { data: "small" }])
        yield* Effect.forEach(claims, (c) => q.ack(c), { discard: true })
        assert.deepStrictEqual(yield* payloadObjects(store), [])
        // the stale claim: its lease expired and its job was claimed again
        yield* TestClock.adjust("4 seconds")
        const again = (yield* q.claim(Email))[0]!
        assert.strictEqual(again.job.id, stale!.job.id)
        assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(stale!, { enqueue: [[Blob, big("lost")]] }))), "ClaimLost")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.deadLetter(stale!, "r", { effects: { enqueue: [[Blob, big("lost")]] } }))), "ClaimLost")
        assert.deepStrictEqual(yield* payloadObjects(store), [])
        // a refused follow-up after an offloaded one: the object written for it is deleted
        const Positive = Job.define("positive", { payload: Schema.Number.check(Schema.isGreaterThan(0)) })
        assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(again, { enqueue: [[Blob, big("first")], [Positive, -1]] }))), "InvalidPayload")
        assert.deepStrictEqual(yield* payloadObjects(store), [])
        // a dedup hit's follow-up deletes its own object, the existing job keeps its
        yield* q.enqueue(Blob, big("existing"), { dedupKey: "blob" })
        yield* q.ack(again, { enqueue: [[Blob, big("duplicate"), { dedupKey: "blob" }]] })
        assert.strictEqual((yield* payloadObjects(store)).length, 1)
        assert.deepStrictEqual((yield* q.claim(Blob)).map((c) => c.job.payload), [big("existing")])
        assert.deepStrictEqual(yield* counts(q, "blobs"), [0, 0, 1, 2, 0])
      }))

    it.effect("a claim settled once is ClaimLost when settled again with effects, on the fast and the transactional ack path: no follow-up, no KV change, no object left", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* openQueue(store, { offloadThreshold: 64 })
        yield* q.kv.put("keep", bytes("as it was"))
        const effects: JobQueue.SettlementEffects = { enqueue: [[Blob, big("follow-up")]], kv: { written: bytes("no") }, kvDelete: ["keep"] }
        for (const definition of [Email, Kept] as const) {
          yield* q.enqueue(definition as Job.Definition<any, any>, definition === Email ? { to: "a" } : { n: 1 })
          const [claim] = yield* q.claim(definition as Job.Definition<any, any>)
          yield* q.ack(claim!) // Email: the fast path; Kept (keepDone): a transaction
          const before = yield* counts(q, definition.queue)
          assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(claim!, effects))), "ClaimLost", definition.queue)
          assert.strictEqual(reasonOf(yield* Effect.exit(q.deadLetter(claim!, "r", { effects }))), "ClaimLost", definition.queue)
          assert.strictEqual(reasonOf(yield* Effect.exit(q.nack(claim!, "r", { effects }))), "ClaimLost", definition.queue)
          assert.deepStrictEqual(yield* counts(q, definition.queue), before)
          assert.deepStrictEqual([yield* counts(q, "blobs"), yield* userEntries(q), yield* payloadObjects(store)], [[0, 0, 0, 0, 0], { keep: "as it was" }, []])
        }
        assert.deepStrictEqual([yield* counts(q, "emails"), yield* counts(q, "kept")], [[0, 0, 0, 1, 0], [0, 0, 0, 1, 0]])
      }))

    it.effect("one claim settled four ways at once (a plain ack on the fast path, and three settlements with effects): one wins, only its effects land, the losers' objects are deleted", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* openQueue(store, { offloadThreshold: 64 })
        let followUps = 0
        for (let round = 0; round < 4; round++) {
          yield* q.enqueue(Email, { to: `r${round}` }, { maxAttempts: 1 })
          const [claim] = yield* q.claim(Email)
          const effects = (tag: string): JobQueue.SettlementEffects => ({ enqueue: [[Blob, big(`${round}-${tag}`)]], kv: { [`${round}/${tag}`]: bytes(tag) } })
          const settlements: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
            ["ack", q.ack(claim!, effects("ack"))],
            ["dead", q.deadLetter(claim!, "r", { effects: effects("dead") })],
            ["nack", q.nack(claim!, "n", { effects: effects("nack") })],
            ["plain", q.ack(claim!)]
          ]
          // each round starts a different settlement first
          const ordered = [...settlements.slice(round), ...settlements.slice(0, round)]
          const exits = yield* Effect.forEach(ordered, ([, settle]) => Effect.exit(settle), { concurrency: "unbounded" })
          const winners = ordered.filter((_, i) => Exit.isSuccess(exits[i]!)).map(([tag]) => tag)
          assert.strictEqual(winners.length, 1, `round ${round}: ${exits.map(reasonOf).join(", ")}`)
          assert.isTrue(exits.every((exit) => Exit.isSuccess(exit) || reasonOf(exit) === "ClaimLost"), exits.map(reasonOf).join(", "))
          const followUp = yield* q.claim(Blob, { max: 5 })
          if (winners[0] === "plain") {
            assert.deepStrictEqual([yield* userEntries(q, `${round}/`), followUp], [{}, []])
          } else {
            assert.deepStrictEqual(Object.keys(yield* userEntries(q, `${round}/`)), [`${round}/${winners[0]}`])
            assert.deepStrictEqual(followUp.map((c) => c.job.payload), [big(`${round}-${winners[0]}`)])
            yield* q.ack(followUp[0]!)
            followUps++
          }
          assert.deepStrictEqual(yield* payloadObjects(store), [], `round ${round}: no object left`)
        }
        assert.deepStrictEqual(yield* counts(q, "blobs"), [0, 0, 0, followUps, 0])
      }))

    it.effect("a nack that retries applies none of its effects and deletes the object written for its offloaded follow-up", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* openQueue(store, { offloadThreshold: 64 })
        const { id } = yield* q.enqueue(Email, { to: "a" }, { maxAttempts: 2 })
        const effects: JobQueue.SettlementEffects = { enqueue: [[Blob, big("retry")]], kv: { k: bytes("v") } }
        assert.strictEqual(yield* q.nack((yield* q.claim(Email))[0]!, "once", { effects }), "Retried")
        assert.deepStrictEqual([yield* payloadObjects(store), yield* q.kv.scan(""), yield* counts(q, "blobs")], [[], [], [0, 0, 0, 0, 0]])
        assert.strictEqual(yield* q.nack((yield* q.claim(Email))[0]!, "twice", { effects }), "DeadLettered")
        assert.strictEqual((yield* payloadObjects(store)).length, 1)
        assert.deepStrictEqual([yield* userEntries(q), yield* counts(q, "blobs")], [{ k: "v" }, [1, 0, 0, 0, 0]])
        assert.deepStrictEqual(Option.map(yield* q.get(id), (r) => r.status), Option.some("Dead"))
      }))

    // ---- results -----------------------------------------------------------------------------

    it.effect("ack with a result keeps the done job for resultRetention: get and awaitCompletion return it decoded, then the sweep deletes it", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Send, { to: "a" })
        const waiting = yield* Effect.forkChild(q.awaitCompletion(Send, id), { startImmediately: true })
        yield* TestClock.adjust("1 second")
        yield* q.ack((yield* q.claim(Send))[0]!, { result: { messageId: "m-1", size: 12 } })
        const woken = yield* Fiber.join(waiting)
        assert.deepStrictEqual(woken._tag === "Completed" && woken.result, Option.some({ messageId: "m-1", size: 12 }))
        const got = Option.getOrThrow(yield* q.get(Send, id))
        assert.deepStrictEqual([got.status, got.payload, got.result, got.completedAt, got.expiresAt], [
          "Done",
          { to: "a" },
          Option.some({ messageId: "m-1", size: 12 }),
          1000,
          1000 + 3600_000
        ])
        assert.deepStrictEqual(got.history, [{ claimedAt: 1000, endedAt: 1000, outcome: "Completed" }])
        // after the fact too, and the encoded result is on the plain record
        const after = yield* q.awaitCompletion(Send, id)
        assert.strictEqual(after._tag, "Completed")
        if (after._tag === "Completed") {
          assert.deepStrictEqual(after.result, Option.some({ messageId: "m-1", size: 12 }))
          assert.deepStrictEqual(Option.map(after.job, (r) => r.status), Option.some("Done"))
        }
        assert.isDefined(Option.getOrThrow(yield* q.get(id)).result)
        assert.deepStrictEqual(yield* counts(q, "send"), [0, 0, 0, 1, 0])
        yield* TestClock.adjust("59 minutes")
        assert.isTrue(Option.isSome(yield* q.get(id)))
        yield* TestClock.adjust("1 minute")
        yield* eventually(Effect.map(q.get(id), Option.isNone), "the result swept after its retention", 100)
        assert.deepStrictEqual(yield* q.awaitCompletion(Send, id), { _tag: "NotFound" })
        assert.strictEqual(reasonOf(yield* Effect.exit(q.history(id))), "JobNotFound")
        assert.deepStrictEqual(yield* counts(q, "send"), [0, 0, 0, 1, 0])
      }))

    it.effect("a result's retention and keepDone: the longer one keeps the done job; an ack without a result keeps keepDone only", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const LongKeep = Job.define("long-keep", { payload: Schema.Number, result: Schema.String, keepDone: "3 hours", resultRetention: "1 hour" })
        const ShortKeep = Job.define("short-keep", { payload: Schema.Number, result: Schema.String, keepDone: "1 minute", resultRetention: "2 hours" })
        const NoKeep = Job.define("no-keep", { payload: Schema.Number, result: Schema.String, resultRetention: "10 minutes" })
        const cases = [[LongKeep, 3 * 3600_000], [ShortKeep, 2 * 3600_000], [NoKeep, 600_000]] as const
        for (const [def, keptFor] of cases) {
          const { id } = yield* q.enqueue(def, 1)
          yield* q.ack((yield* q.claim(def))[0]!, { result: "r" })
          assert.deepStrictEqual(Option.map(yield* q.get(def, id), (j) => [j.expiresAt, j.result]), Option.some([keptFor, Option.some("r")]))
        }
        const plainShort = yield* q.enqueue(ShortKeep, 2)
        yield* q.ack((yield* q.claim(ShortKeep))[0]!)
        assert.deepStrictEqual(Option.map(yield* q.get(ShortKeep, plainShort.id), (j) => [j.expiresAt, j.result]), Option.some([60_000, Option.none()]))
        const plainNone = yield* q.enqueue(NoKeep, 2)
        yield* q.ack((yield* q.claim(NoKeep))[0]!)
        assert.isTrue(Option.isNone(yield* q.get(plainNone.id)))
        assert.deepStrictEqual(yield* q.awaitCompletion(NoKeep, plainNone.id), { _tag: "NotFound" })
      }))

    it.effect("a result is refused with the claim kept: no result schema, one the schema refuses (InvalidOption), over 64 KiB (ValueTooLarge)", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const Big = Job.define("big-result", { payload: Schema.Number, result: Schema.String })
        yield* q.enqueue(Email, { to: "a" })
        const plain = (yield* q.claim(Email))[0]!
        const noSchema = failureOf(yield* Effect.exit(q.ack(plain, { result: "anything" })))
        assert.deepStrictEqual([noSchema._tag, noSchema.option], ["InvalidOption", "result"])
        yield* q.ack(plain, { result: undefined }) // left out: nothing to refuse
        yield* q.enqueue(Send, { to: "b" })
        const send = (yield* q.claim(Send))[0]!
        for (const result of [{ messageId: 1, size: 1 }, { messageId: "m", size: -1 }, "text", null]) {
          const error = failureOf(yield* Effect.exit(q.ack(send, { result, kv: { k: bytes("v") }, enqueue: [[Email, { to: "c" }]] })))
          assert.deepStrictEqual([error._tag, error.option], ["InvalidOption", "result"], JSON.stringify(result))
        }
        yield* q.enqueue(Big, 1)
        const bigClaim = (yield* q.claim(Big))[0]!
        assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(bigClaim, { result: "x".repeat(64 * 1024) }))), "ValueTooLarge")
        assert.deepStrictEqual([yield* counts(q, "send"), yield* counts(q, "big-result"), yield* counts(q, "emails")], [
          [0, 0, 1, 0, 0],
          [0, 0, 1, 0, 0],
          [0, 0, 0, 1, 0]
        ])
        assert.deepStrictEqual(yield* q.kv.scan(""), [])
        yield* q.ack(send, { result: { messageId: "ok", size: 0 } })
        yield* q.ack(bigClaim, { result: "x".repeat(60 * 1024) })
        assert.deepStrictEqual(Option.map(yield* q.get(Send, send.job.id), (j) => j.result), Option.some(Option.some({ messageId: "ok", size: 0 })))
        assert.deepStrictEqual(Option.map(yield* q.get(Big, bigClaim.job.id), (j) => Option.map(j.result, (r) => r.length)), Option.some(Option.some(60 * 1024)))
      }))

    it.effect("awaitCompletion with a definition: a dead job has no result; get and awaitCompletion with the definition of another queue are InvalidOption", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const { id } = yield* q.enqueue(Send, { to: "a" }, { maxAttempts: 1 })
        assert.strictEqual(yield* q.nack((yield* q.claim(Send))[0]!, "bounced"), "DeadLettered")
        const dead = yield* q.awaitCompletion(Send, id)
        assert.strictEqual(dead._tag, "Completed")
        if (dead._tag === "Completed") {
          assert.deepStrictEqual(Option.map(dead.job, (r) => r.status), Option.some("Dead"))
          assert.isTrue(Option.isNone(dead.result))
        }
        const stored = Option.getOrThrow(yield* q.get(Send, id))
        assert.deepStrictEqual([stored.status, Option.isNone(stored.result), stored.payload], ["Dead", true, { to: "a" }])
        const other = failureOf(yield* Effect.exit(q.get(Email, id)))
        assert.deepStrictEqual([other._tag, other.option], ["InvalidOption", "definition"])
        const otherAwait = failureOf(yield* Effect.exit(q.awaitCompletion(Email, id)))
        assert.deepStrictEqual([otherAwait._tag, otherAwait.option], ["InvalidOption", "definition"])
        assert.deepStrictEqual(yield* q.get(Send, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), Option.none())
        assert.deepStrictEqual(yield* q.awaitCompletion(Send, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), { _tag: "NotFound" })
        // a job of a definition without a result schema completes with none
        const plain = yield* q.enqueue(Kept, { n: 1 })
        yield* q.ack((yield* q.claim(Kept))[0]!)
        const done = yield* q.awaitCompletion(Kept, plain.id)
        assert.deepStrictEqual(done._tag === "Completed" && done.result, Option.none())
      }))

    it.effect("a Worker's handler value is the job's result; a value the schema refuses or over 64 KiB makes the job retry with why", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const scope = yield* Scope.make()
        const ok = yield* q.enqueue(Send, { to: "good" })
        const bad = yield* q.enqueue(Send, { to: "bad" }, { maxAttempts: 2 })
        const huge = yield* q.enqueue(Send, { to: "huge" }, { maxAttempts: 2 })
        yield* Layer.buildWithScope(
          Worker.layer(Send, (payload) =>
            Effect.succeed({
              messageId: payload.to === "huge" ? "x".repeat(70 * 1024) : `m-${payload.to}`,
              size: payload.to === "bad" ? -1 : payload.to.length
            })).pipe(Layer.provide(Layer.succeed(JobQueue.JobQueue, q))),
          scope
        )
        yield* eventually(Effect.map(q.stats("send"), (s) => s.done === 1 && s.dead === 2), "one done, two dead", 10)
        assert.deepStrictEqual(Option.map(yield* q.get(Send, ok.id), (j) => j.result), Option.some(Option.some({ messageId: "m-good", size: 4 })))
        for (const id of [bad.id, huge.id]) {
          const history = yield* q.history(id)
          assert.deepStrictEqual(history.map((a) => a.outcome), ["Retried", "DeadLettered"])
          assert.isTrue(history.every((a) => a.error?.startsWith("the handler's result was refused") === true), JSON.stringify(history))
        }
        yield* Scope.close(scope, Exit.void)
      }))

    it.effect("get with a definition reads an offloaded payload back and decodes it with the result", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* openQueue(store, { offloadThreshold: 64 })
        const Render = Job.define("render", { payload: Schema.Struct({ data: Schema.String }), result: Schema.Number })
        const { id } = yield* q.enqueue(Render, big("page"))
        assert.deepStrictEqual(Option.map(yield* q.get(Render, id), (j) => [j.status, j.payload, Option.isNone(j.result)]), Option.some(["Pending", big("page"), true]))
        yield* q.ack((yield* q.claim(Render))[0]!, { result: 42 })
        assert.deepStrictEqual(Option.map(yield* q.get(Render, id), (j) => [j.payload, j.result]), Option.some([big("page"), Option.some(42)]))
        assert.strictEqual((yield* payloadObjects(store)).length, 1, "kept with the done job")
        yield* TestClock.adjust("61 minutes")
        yield* eventually(Effect.map(payloadObjects(store), (keys) => keys.length === 0), "the object deleted with the swept job", 100)
        assert.isTrue(Option.isNone(yield* q.get(Render, id)))
      }))

    it.effect("a settlement whose claimed record is gone while its lease is held is ClaimLost, its follow-up's object deleted", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { kv, q } = yield* openQueueAndKv(store, { offloadThreshold: 64 })
        yield* q.enqueue(Email, { to: "a" })
        const claim = (yield* q.claim(Email))[0]!
        yield* kv.write([{ _tag: "Delete", key: Keys.toBytes(Keys.claimed("emails", claim.job.id)) }])
        const effects: JobQueue.SettlementEffects = { enqueue: [[Blob, big("lost")]], kv: { k: bytes("v") } }
        assert.strictEqual(reasonOf(yield* Effect.exit(q.ack(claim, effects))), "ClaimLost")
        assert.strictEqual(reasonOf(yield* Effect.exit(q.deadLetter(claim, "r", { effects }))), "ClaimLost")
        assert.deepStrictEqual([yield* payloadObjects(store), yield* q.kv.scan("")], [[], []])
        assert.deepStrictEqual(yield* counts(q, "blobs"), [0, 0, 0, 0, 0])
      }))

    it.effect("events: each change told once it is committed, in order, to every subscriber; the streams end when the queue closes", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { q, scope } = yield* openQueueAndKv(store)
        const watch = (n: number) =>
          Effect.forkChild(Stream.runCollect(Stream.take(q.events, n)), { startImmediately: true })
        const first = yield* watch(10)
        const second = yield* watch(2)
        yield* Effect.yieldNow
        const a = yield* q.enqueue(Email, { to: "a" })
        const [claimA] = yield* q.claim(Email)
        yield* q.ack(claimA!)
        const b = yield* q.enqueue(Email, { to: "b" }, { maxAttempts: 2 })
        yield* q.nack((yield* q.claim(Email))[0]!, "smtp 451")
        yield* q.claim(Email, { lease: "1 second" })
        yield* TestClock.adjust("2 seconds") // the reaper: its last attempt's lease ran out
        const c = yield* q.enqueue(Email, { to: "c" }, { delay: "1 hour" })
        yield* q.cancel(c.id)
        const events = yield* Fiber.join(first)
        const instants = events.map((e) => e.at)
        assert.deepStrictEqual(instants, [...instants].sort((x, y) => x - y), "in order of time")
        const got = events.map((e) => {
          const { at: _, ...rest } = e
          return rest
        })
        assert.deepStrictEqual(got, [
          { _tag: "Enqueued", id: a.id, queue: "emails" },
          { _tag: "Claimed", id: a.id, queue: "emails", attempt: 1 },
          { _tag: "Completed", id: a.id, queue: "emails" },
          { _tag: "Enqueued", id: b.id, queue: "emails" },
          { _tag: "Claimed", id: b.id, queue: "emails", attempt: 1 },
          { _tag: "Retried", id: b.id, queue: "emails", error: "smtp 451", runAt: Option.none() },
          { _tag: "Claimed", id: b.id, queue: "emails", attempt: 2 },
          { _tag: "DeadLettered", id: b.id, queue: "emails", reason: "lease expired" },
          { _tag: "Enqueued", id: c.id, queue: "emails" },
          { _tag: "Cancelled", id: c.id, queue: "emails" }
        ])
        assert.deepStrictEqual((yield* Fiber.join(second)).map((e) => e._tag), ["Enqueued", "Claimed"])
        // the streams end with the queue
        const late = yield* watch(100)
        yield* Effect.yieldNow
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(yield* Fiber.join(late), [])
      }))

    it.effect("events of a batch, a settlement's follow-ups, a dead-letter and a discard after a cancel", () =>
      Effect.gen(function*() {
        const q = yield* fresh
        const watching = yield* Effect.forkChild(Stream.runCollect(Stream.take(q.events, 10)), { startImmediately: true })
        yield* Effect.yieldNow
        const [x, y] = yield* q.enqueueBatch(Email, [{ to: "x" }, { to: "y" }])
        const [claimX, claimY] = yield* q.claim(Email, { max: 2 })
        yield* q.ack(claimX!, { enqueue: [[Email, { to: "follow" }], [Email, { to: "later" }, { delay: "1 minute" }]] })
        yield* q.deadLetter(claimY!, "bad address")
        const [follow] = yield* q.claim(Email)
        assert.strictEqual(yield* q.cancel(follow!.job.id), "Requested")
        yield* q.discard(follow!)
        const tags = (yield* Fiber.join(watching)).map((e) => [e._tag, e.id])
        assert.deepStrictEqual(tags.slice(0, 5), [["Enqueued", x], ["Enqueued", y], ["Claimed", x], ["Claimed", y], ["Completed", x]])
        assert.deepStrictEqual(tags.slice(5, 7).map(([tag]) => tag), ["Enqueued", "Enqueued"])
        assert.deepStrictEqual(tags.slice(7), [["DeadLettered", y], ["Claimed", follow!.job.id], ["Cancelled", follow!.job.id]])
      }))
  })
