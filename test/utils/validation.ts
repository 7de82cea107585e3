// Helpers of the validation tests: a queue over a memory store with its KV at hand, a snapshot
// of everything stored (every object's bytes, and the KV's commit sequence and key count), and
// the check that a queue is still fully usable (enqueue, claim, ack, cancel, exact counters).
import { assert } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Schema, Stream } from "effect"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import * as ObjectStore from "../../src/ObjectStore.ts"

/** The queue every validation test uses. */
export const V = Job.define("v", { payload: Schema.String })

export interface Env {
  readonly store: ObjectStore.Service
  readonly kv: Kv.Service
  readonly q: JobQueue.Service
  /** Jobs acked on `V` so far (what `stats("v").done` must say). */
  done: number
}

/**
 * A queue and its KV over a new memory store, in the test's scope. The KV never folds its WAL
 * into runs here (a fold runs in the background, and would change the store between snapshots).
 */
export const openEnv = Effect.gen(function*() {
  const store = Context.get(yield* Layer.build(ObjectStore.layerMemory()), ObjectStore.ObjectStore)
  const context = yield* Layer.build(
    JobQueue.layer({ reaperInterval: "1 second", schedulerInterval: "100 millis" }).pipe(
      Layer.provideMerge(Kv.layer({ runFlushSegments: 2 ** 31 - 1, memtableBytes: 2 ** 31 - 1 })),
      Layer.provide(Layer.succeed(ObjectStore.ObjectStore, store))
    )
  )
  const env: Env = { store, kv: Context.get(context, Kv.Kv), q: Context.get(context, JobQueue.JobQueue), done: 0 }
  return env
})

/** Everything stored: each object's key and bytes, and the KV's last commit and key count. */
export const snapshot = (env: Env) =>
  Effect.gen(function*() {
    yield* env.kv.flush
    const listed = yield* Stream.runCollect(env.store.list(""))
    const objects = yield* Effect.forEach(listed, (entry) =>
      Effect.map(env.store.get(entry.key), (object) => `${entry.key} ${Buffer.from(object.bytes).toString("base64")}`))
    const { keys, lastSeq } = yield* env.kv.stats
    return { objects, lastSeq, keys }
  }).pipe(Effect.orDie)

/** The typed failure of an exit (undefined for a success, a defect or an interruption). */
export const failureOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined

/** A short description of an exit, for assertion messages. */
export const describeExit = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit) ? "a success" : String(exit.cause).slice(0, 300)

/**
 * The queue still works: a job enqueued is the only one claimed (every pending job decodes), acks;
 * a scheduled one cancels; the counters are exact.
 */
export const assertUsable = (env: Env) =>
  Effect.gen(function*() {
    const { id } = yield* env.q.enqueue(V, "probe")
    const claims = yield* env.q.claim(V, { max: 1000 })
    assert.deepStrictEqual(claims.map((c) => [c.job.id, c.job.payload]), [[id, "probe"]])
    for (const claim of claims) yield* env.q.ack(claim)
    env.done += claims.length
    const later = yield* env.q.enqueue(V, "later", { delay: "1 hour" })
    assert.strictEqual(yield* env.q.cancel(later.id), "Removed")
    assert.deepStrictEqual(yield* env.q.stats("v"), { queue: "v", pending: 0, scheduled: 0, claimed: 0, done: env.done, dead: 0 })
  })
