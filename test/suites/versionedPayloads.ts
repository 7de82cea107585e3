// Versioned payloads (DESIGN.md §6a) under TestClock, written once and run on every backend: jobs
// stored with an older version of their definition's payload schema are brought up to date by its
// migrations at claim; those that cannot be are dead-lettered with their stored payload kept and a
// reason naming the versions, never handed to a caller or a Worker. And job records written in
// record format 1 (before history, results and payload versions) are still read, claimed, acked.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import type { JobRecord } from "../../schema/JobRecord.ts"
import * as Msgpack from "../../src/internal/msgpack.ts"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import * as Keys from "../../src/queue/keys.ts"
import * as Worker from "../../src/Worker.ts"
import type { Backend } from "../utils/stores.ts"

// Three versions of one payload: `to` became a list (v2), then a subject was added (v3).
const EmailV1 = Schema.Struct({ to: Schema.String })
const EmailV2 = Schema.Struct({ to: Schema.Array(Schema.String) })
const EmailV3 = Schema.Struct({ to: Schema.Array(Schema.String), subject: Schema.String })

const toV2 = Job.migration(1, EmailV1, (v1) => ({ to: [v1.to] }))
const toV3 = Job.migration(2, EmailV2, (v2) => ({ ...v2, subject: "(none)" }))

const queue = "emails"
const V1 = Job.define(queue, { payload: EmailV1, backoff: Job.Backoff.none() })
const V2 = Job.define(queue, { payload: EmailV2, version: 2, migrations: [toV2], backoff: Job.Backoff.none() })
const V3 = Job.define(queue, { payload: EmailV3, version: 3, migrations: [toV2, toV3], backoff: Job.Backoff.none() })
const V4 = Job.define(queue, {
  payload: EmailV3,
  version: 4,
  migrations: [toV2, toV3, Job.migration(3, EmailV3, (v3) => v3)],
  backoff: Job.Backoff.none()
})

/** The state and the last error of a stored job. */
const statusOf = (record: Option.Option<JobRecord>) => Option.map(record, (r) => [r.status, r.lastError] as const)

export const versionedPayloadsSuite = (backend: Backend) =>
  describe(`Versioned payloads on ${backend.name}`, () => {
    /** A queue and its KV on a fresh store (the KV to plant records as older code wrote them). */
    const fresh = Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        JobQueue.layer({ reaperInterval: "1 second", schedulerInterval: "100 millis" }).pipe(
          Layer.provideMerge(Kv.layer()),
          Layer.provide(backend.layer())
        ),
        scope
      )
      return { q: Context.get(context, JobQueue.JobQueue), kv: Context.get(context, Kv.Kv), scope }
    })

    /**
     * Claims with `definition` while `id` is the only job: nothing comes back, and the job is
     * dead with its stored payload (bytes and version) kept and a reason matching `reason`.
     */
    const assertDeadLettered = <A, I>(q: JobQueue.Service, definition: Job.Definition<A, I>, id: string, reason: RegExp) =>
      Effect.gen(function*() {
        const stored = Option.getOrThrow(yield* q.get(id))
        assert.deepStrictEqual(yield* q.claim(definition, { max: 10 }), [])
        const dead = Option.getOrThrow(yield* q.get(id))
        assert.strictEqual(dead.status, "Dead")
        assert.match(dead.lastError ?? "", reason)
        assert.deepStrictEqual(dead.payload, stored.payload, "the stored payload is kept as it was")
        assert.strictEqual(dead.payloadVersion, stored.payloadVersion)
        return dead
      })

    it.effect("a version 1 payload, enqueued by a version 1 definition, is claimed by the version 3 one as version 3", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const { id } = yield* q.enqueue(V1, { to: "a@b.c" })
        const stored = Option.getOrThrow(yield* q.get(id))
        assert.isFalse("payloadVersion" in stored, "version 1 is not written")
        const [claim] = yield* q.claim(V3)
        assert.deepStrictEqual(claim!.job.payload, { to: ["a@b.c"], subject: "(none)" })
        yield* q.ack(claim!)
        assert.deepStrictEqual(yield* q.stats(queue), { queue, pending: 0, scheduled: 0, claimed: 0, done: 1, dead: 0 })
      }))

    it.effect("a version 2 payload is claimed by the version 3 definition through the last migration only", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const { id } = yield* q.enqueue(V2, { to: ["a", "b"] })
        assert.strictEqual(Option.getOrThrow(yield* q.get(id)).payloadVersion, 2)
        const [claim] = yield* q.claim(V3)
        assert.deepStrictEqual(claim!.job.payload, { to: ["a", "b"], subject: "(none)" })
        assert.strictEqual(claim!.record.payloadVersion, 2, "the claim's record keeps what is stored")
        yield* q.ack(claim!)
      }))

    it.effect("a payload of the current version is decoded as it is, no migration called; enqueueBatch writes the version too", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        let calls = 0
        const Spied = Job.define(queue, {
          payload: EmailV3,
          version: 3,
          migrations: [
            Job.migration(1, EmailV1, (v1) => (calls++, { to: [v1.to] })),
            Job.migration(2, EmailV2, (v2) => (calls++, { ...v2, subject: "(none)" }))
          ]
        })
        const one = yield* q.enqueue(Spied, { to: ["x"], subject: "hello" })
        const batch = yield* q.enqueueBatch(Spied, [{ to: ["y"], subject: "s1" }, { to: [], subject: "s2" }])
        for (const id of [one.id, ...batch]) assert.strictEqual(Option.getOrThrow(yield* q.get(id)).payloadVersion, 3)
        const claims = yield* q.claim(Spied, { max: 10 })
        assert.deepStrictEqual(claims.map((c) => c.job.payload), [
          { to: ["x"], subject: "hello" },
          { to: ["y"], subject: "s1" },
          { to: [], subject: "s2" }
        ])
        assert.strictEqual(calls, 0)
      }))

    it.effect("a stored version with no migration (older than the oldest kept) is dead-lettered, its payload kept", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const OnlyFrom2 = Job.define(queue, { payload: EmailV3, version: 3, migrations: [toV3] })
        const { id } = yield* q.enqueue(V1, { to: "old" })
        yield* assertDeadLettered(q, OnlyFrom2, id, /payload version 1 does not migrate to version 3: .*no migration from version 1/)
        assert.deepStrictEqual(Msgpack.decode(Option.getOrThrow(yield* q.get(id)).payload), { to: "old" })
        assert.deepStrictEqual(yield* q.stats(queue), { queue, pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 1 })
      }))

    it.effect("a definition with a version above 1 and no migrations dead-letters every older job", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const NoMigrations = Job.define(queue, { payload: EmailV3, version: 3 })
        const { id } = yield* q.enqueue(V2, { to: ["a"] })
        yield* assertDeadLettered(q, NoMigrations, id, /payload version 2 does not migrate to version 3: .*migrations: none/)
      }))

    it.effect("a migration that throws dead-letters the job with the versions and the error", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const Throwing = Job.define(queue, {
          payload: EmailV3,
          version: 3,
          migrations: [toV2, Job.migration(2, EmailV2, (): typeof EmailV3.Type => { throw new Error("no subject known") })]
        })
        const { id } = yield* q.enqueue(V1, { to: "a" })
        yield* assertDeadLettered(q, Throwing, id, /payload version 1 does not migrate to version 3: the migration from version 2 threw: .*no subject known/)
      }))

    it.effect("a migration whose output the next version rejects dead-letters the job, at a middle step and at the last", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const BadMiddle = Job.define(queue, {
          payload: EmailV3,
          version: 3,
          migrations: [Job.migration(1, EmailV1, (v1): any => ({ to: v1.to })), toV3] // a string, not a list
        })
        const BadLast = Job.define(queue, {
          payload: EmailV3,
          version: 3,
          migrations: [toV2, Job.migration(2, EmailV2, (v2): any => ({ to: v2.to, subject: 42 }))]
        })
        const a = yield* q.enqueue(V1, { to: "a" })
        yield* assertDeadLettered(q, BadMiddle, a.id, /payload version 1 does not migrate to version 3: the migration from version 1 returned a value version 2 rejects/)
        const b = yield* q.enqueue(V2, { to: ["b"] })
        yield* assertDeadLettered(q, BadLast, b.id, /payload version 2 does not migrate to version 3: the migration from version 2 returned a value version 3 rejects/)
      }))

    it.effect("a stored payload that does not decode as its own version is dead-lettered naming that version", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const Loose = Job.define(queue, { payload: Schema.Struct({ to: Schema.Unknown }) }) // version 1, like V1
        const { id } = yield* q.enqueue(Loose, { to: 42 })
        yield* assertDeadLettered(q, V3, id, /payload version 1 does not migrate to version 3: it does not decode as version 1/)
      }))

    it.effect("a version newer than the definition's is dead-lettered, even when it would decode with the current schema", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const { id } = yield* q.enqueue(V3, { to: ["a"], subject: "s" }) // EmailV2 would take it (extra keys are ignored)
        yield* assertDeadLettered(q, V2, id, /payload version 3 does not migrate to version 2: it is newer than the definition's version 2/)
      }))

    it.effect("jobs that do not migrate are dead-lettered on the way; the claim returns the good ones behind them", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        const newer = yield* q.enqueue(V4, { to: ["n"], subject: "4" })
        const v1 = yield* q.enqueue(V1, { to: "one" })
        const broken = yield* q.enqueue(Job.define(queue, { payload: Schema.Struct({ to: Schema.Unknown }) }), { to: 1 })
        const v3 = yield* q.enqueue(V3, { to: ["three"], subject: "3" })
        const claims = yield* q.claim(V3, { max: 10 })
        assert.deepStrictEqual(claims.map((c) => [c.job.id, c.job.payload]), [
          [v1.id, { to: ["one"], subject: "(none)" }],
          [v3.id, { to: ["three"], subject: "3" }]
        ])
        assert.deepStrictEqual(statusOf(yield* q.get(newer.id)).pipe(Option.map(([s]) => s)), Option.some("Dead"))
        assert.deepStrictEqual(statusOf(yield* q.get(broken.id)).pipe(Option.map(([s]) => s)), Option.some("Dead"))
        assert.deepStrictEqual(yield* q.stats(queue), { queue, pending: 0, scheduled: 0, claimed: 2, done: 0, dead: 2 })
      }))

    it.effect("a Worker gets migrated payloads and never sees the jobs that do not migrate", () =>
      Effect.gen(function*() {
        const { q } = yield* fresh
        yield* q.enqueue(V1, { to: "one" })
        yield* q.enqueue(V2, { to: ["two"] })
        const newer = yield* q.enqueue(V4, { to: ["four"], subject: "4" })
        yield* q.enqueue(V3, { to: ["three"], subject: "3" })
        const seen: Array<typeof EmailV3.Type> = []
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(
          Worker.layer(V3, (payload) => Effect.sync(() => void seen.push(payload))).pipe(Layer.provide(Layer.succeed(JobQueue.JobQueue, q))),
          scope
        )
        for (let i = 0; i < 3000; i++) {
          const stats = yield* q.stats(queue)
          if (stats.done === 3 && stats.dead === 1) break
          yield* TestClock.adjust(1)
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
        }
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(seen, [
          { to: ["one"], subject: "(none)" },
          { to: ["two"], subject: "(none)" },
          { to: ["three"], subject: "3" }
        ])
        const dead = Option.getOrThrow(yield* q.get(newer.id))
        assert.deepStrictEqual([dead.status, dead.payloadVersion], ["Dead", 4])
        assert.match(dead.lastError ?? "", /payload version 4 does not migrate to version 3/)
        assert.deepStrictEqual(yield* q.stats(queue), { queue, pending: 0, scheduled: 0, claimed: 0, done: 3, dead: 1 })
      }))

    it.effect("an offloaded payload of an older version is read from its object and migrated", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          JobQueue.layer({ offloadThreshold: 64 }).pipe(Layer.provide(Kv.layer()), Layer.provide(backend.layer())),
          scope
        )
        const q = Context.get(context, JobQueue.JobQueue)
        const long = "x".repeat(200)
        const { id } = yield* q.enqueue(V1, { to: long })
        assert.isDefined(Option.getOrThrow(yield* q.get(id)).payloadRef)
        const [claim] = yield* q.claim(V3)
        assert.deepStrictEqual(claim!.job.payload, { to: [long], subject: "(none)" })
        yield* q.ack(claim!)
      }))

    // ---- job records of format 1 ---------------------------------------------------------------

    /** The fields a format-1 record had: no history, result or payload version. */
    const formatOneRecord = (id: string, to: string) => ({
      id,
      queue,
      payload: Msgpack.encode({ to }),
      headers: { trace: "t1" },
      status: "Pending" as const,
      attempts: 0,
      maxAttempts: 3,
      priority: 1000,
      enqueuedAt: 0,
      deadRetentionMs: 7 * 24 * 3600 * 1000
    })

    /** Plants `bytes` as a pending job at its keys (primary key and index), counted, as `records.stage` would. */
    const plantPending = (kv: Kv.Service, id: string, bytes: Uint8Array) => {
      const key = Keys.toBytes(Keys.pending(queue, 1000, id))
      return kv.write([
        { _tag: "Put", key, value: bytes },
        { _tag: "Put", key: Keys.toBytes(Keys.index(id)), value: key },
        { _tag: "Put", key: Keys.toBytes(Keys.stat(queue, "Pending")), value: new TextEncoder().encode("1") }
      ])
    }

    it.effect("a job record of format 1 (as the old code wrote it) is read by get, claimed, migrated and acked", () =>
      Effect.gen(function*() {
        const { kv, q } = yield* fresh
        const id = "format-one-job"
        yield* plantPending(kv, id, Msgpack.encode({ v: 1, ...formatOneRecord(id, "old@b.c") }))
        const stored = Option.getOrThrow(yield* q.get(id))
        assert.deepStrictEqual([stored.id, stored.status, stored.headers, stored.history, stored.result, stored.payloadVersion], [
          id,
          "Pending",
          { trace: "t1" },
          undefined,
          undefined,
          undefined
        ])
        assert.deepStrictEqual(Msgpack.decode(stored.payload), { to: "old@b.c" })
        const [claim] = yield* q.claim(V3) // no payload version: version 1, migrated
        assert.deepStrictEqual([claim!.job.id, claim!.job.attempts, claim!.job.payload], [id, 1, { to: ["old@b.c"], subject: "(none)" }])
        yield* q.ack(claim!)
        assert.isTrue(Option.isNone(yield* q.get(id)))
        assert.deepStrictEqual(yield* q.stats(queue), { queue, pending: 0, scheduled: 0, claimed: 0, done: 1, dead: 0 })
      }))

    it.effect("a format-1 record claimed by a version 1 definition is rewritten in format 2 and nacked back", () =>
      Effect.gen(function*() {
        const { kv, q } = yield* fresh
        const id = "format-one-nack"
        yield* plantPending(kv, id, Msgpack.encode({ v: 1, ...formatOneRecord(id, "a") }))
        const [claim] = yield* q.claim(V1)
        assert.deepStrictEqual(claim!.job.payload, { to: "a" })
        assert.strictEqual(yield* q.nack(claim!, "again"), "Retried")
        const index = Option.getOrThrow(yield* kv.get(Keys.toBytes(Keys.index(id))))
        const raw = Msgpack.decode(Option.getOrThrow(yield* kv.get(index))) as { readonly v: number }
        assert.strictEqual(raw.v, 2)
        const [again] = yield* q.claim(V1)
        assert.deepStrictEqual([again!.job.id, again!.job.attempts], [id, 2])
        yield* q.ack(again!)
      }))

    it.effect("a record of an unknown format (v: 99) is skipped by the scheduler with a warning, and the others go on", () =>
      Effect.gen(function*() {
        const { kv, q } = yield* fresh
        const good = yield* q.enqueue(V1, { to: "good" }, { delay: "1 second" })
        const id = "format-99"
        const key = Keys.toBytes(Keys.scheduled(500, queue, id))
        yield* kv.write([
          { _tag: "Put", key, value: Msgpack.encode({ v: 99, ...formatOneRecord(id, "future"), status: "Scheduled", runAt: 500 }) },
          { _tag: "Put", key: Keys.toBytes(Keys.index(id)), value: key }
        ])
        yield* TestClock.adjust("1500 millis")
        const [claim] = yield* q.claim(V1)
        assert.strictEqual(claim?.job.id, good.id)
        assert.isTrue(Option.isSome(yield* kv.get(key)), "the unknown record is left where it is")
        // get reports it (a failure naming the format), never a record read wrongly
        const exit = yield* Effect.exit(q.get(id))
        assert.isTrue(Exit.isFailure(exit))
        assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "job record format 99")
      }))

    it.effect("pending records that do not decode (a newer format, damaged bytes) are stepped over by claims, left in place: the jobs behind them are claimed", () =>
      Effect.gen(function*() {
        const { kv, q } = yield* fresh
        // planted at priority 1000 ahead of the good jobs' (default priority, later ids)
        yield* plantPending(kv, "0-future", Msgpack.encode({ v: 99, ...formatOneRecord("0-future", "future") }))
        yield* plantPending(kv, "0-damaged", new Uint8Array([0xc1, 0xff, 0x00]))
        const good = yield* q.enqueueBatch(V1, [{ to: "a" }, { to: "b" }, { to: "c" }])
        const first = yield* q.claim(V1, { max: 1 })
        assert.deepStrictEqual(first.map((c) => c.job.id), [good[0]])
        const rest = yield* q.claim(V1, { max: 5 })
        assert.deepStrictEqual(rest.map((c) => c.job.id), [good[1], good[2]])
        for (const claim of [...first, ...rest]) yield* q.ack(claim)
        assert.deepStrictEqual(yield* q.claim(V1, { max: 5 }), [])
        for (const id of ["0-future", "0-damaged"]) {
          assert.isTrue(Option.isSome(yield* kv.get(Keys.toBytes(Keys.pending(queue, 1000, id)))), `${id} is left where it is`)
        }
      }))
  })
