// Hostile input at the public edge (issue 12): every option of every public operation, given
// garbage (NaN, infinities, negatives, fractions, out-of-range numbers, invalid dates, durations
// that do not parse, wrong types), fails with a typed InvalidOption naming it (InvalidQueueName,
// InvalidJobId for names and ids), never a defect; nothing is written (every stored object's
// bytes and the KV's commit sequence are the same after); and the queue is fully usable after.
import { assert, describe, it } from "@effect/vitest"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { afterAll } from "vitest"
import { makePrng } from "../src/internal/prng.ts"
import { InvalidOption } from "../src/InvalidOption.ts"
import * as FaultInjection from "../src/FaultInjection.ts"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import { InvalidJobId, InvalidQueueName } from "../src/JobQueueError.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as Worker from "../src/Worker.ts"
import { draw, type Kind, poolOf } from "./utils/garbage.ts"
import { assertUsable, describeExit, type Env, failureOf, openEnv, snapshot, V } from "./utils/validation.ts"

type Expected = "InvalidOption" | "InvalidQueueName" | "InvalidJobId"

/** One option of one operation: what it takes, and how to call the operation with a value for it. */
interface Case {
  readonly operation: string
  readonly option: string
  readonly kind: Kind
  readonly expect?: Expected
  /** Calls the operation; `held` is a claim of `V` taken before the snapshot. */
  readonly run: (env: Env, value: unknown, held: JobQueue.Claim<string>) => Effect.Effect<unknown, unknown>
}

const any = (value: unknown) => value as any
const count = (min: number, max = 2 ** 31 - 1): Kind => ({ _tag: "count", min, max })
const duration = (rule: { readonly positive?: boolean; readonly infinite?: boolean } = {}): Kind => ({ _tag: "duration", ...rule })
const k = <T extends Kind["_tag"]>(tag: T) => ({ _tag: tag }) as Kind

/** A synchronous constructor's throw as a typed failure (anything else it throws fails the test). */
const sync = (f: () => unknown) => Effect.try({ try: f, catch: (error) => error })

const buildWith = <A, E>(layer: Layer.Layer<A, E, never>) => Effect.scoped(Layer.build(layer))

const queueOver = (env: Env, options: unknown) =>
  buildWith(JobQueue.layer(any(options)).pipe(
    Layer.provide(Layer.mergeAll(Layer.succeed(Kv.Kv, env.kv), Layer.succeed(ObjectStore.ObjectStore, env.store)))
  ))
const kvOver = (env: Env, options: unknown) =>
  buildWith(Kv.layer(any(options)).pipe(Layer.provide(Layer.succeed(ObjectStore.ObjectStore, env.store))))
const workerOver = (env: Env, options: unknown, handler: unknown = () => Effect.void, definition: unknown = V) =>
  buildWith(Worker.layer<string, string, unknown, never, never>(any(definition), any(handler), any(options)).pipe(
    Layer.provide(Layer.succeed(JobQueue.JobQueue, env.q))
  ))

/** A directory that must never be created (the layer fails before touching it). */
const scratch = mkdtempSync(path.join(tmpdir(), "bucketq-validation-"))
const neverCreated = path.join(scratch, "never-created")
const fileSystemOver = (options: object) =>
  Effect.ensuring(
    buildWith(ObjectStore.layerFileSystem(any({ directory: neverCreated, ...options }))),
    Effect.sync(() => assert.isFalse(existsSync(neverCreated), "the directory was created"))
  )
const s3Base = { bucket: "b", endpoint: "http://127.0.0.1:1", region: "us-east-1", retry: false }
const s3With = (options: object) => buildWith(ObjectStore.layerS3(any({ ...s3Base, ...options })))

const jobQueueCases: ReadonlyArray<Case> = [
  // enqueue
  { operation: "enqueue", option: "options", kind: k("record"), run: (e, v) => e.q.enqueue(V, "x", any(v)) },
  { operation: "enqueue", option: "priority", kind: k("priority"), run: (e, v) => e.q.enqueue(V, "x", { priority: any(v) }) },
  { operation: "enqueue", option: "delay", kind: duration(), run: (e, v) => e.q.enqueue(V, "x", { delay: any(v) }) },
  { operation: "enqueue", option: "runAt", kind: k("instant"), run: (e, v) => e.q.enqueue(V, "x", { runAt: any(v) }) },
  { operation: "enqueue", option: "dedupKey", kind: k("dedupKey"), run: (e, v) => e.q.enqueue(V, "x", { dedupKey: any(v) }) },
  { operation: "enqueue", option: "maxAttempts", kind: count(1), run: (e, v) => e.q.enqueue(V, "x", { maxAttempts: any(v) }) },
  { operation: "enqueue", option: "headers", kind: k("headers"), run: (e, v) => e.q.enqueue(V, "x", { headers: any(v) }) },
  { operation: "enqueue", option: "id", kind: k("jobId"), expect: "InvalidJobId", run: (e, v) => e.q.enqueue(V, "x", { id: any(v) }) },
  // a definition built by hand (define would have thrown)
  { operation: "enqueue", option: "definition", kind: k("record"), run: (e, v) => e.q.enqueue(any(v), "x") },
  { operation: "enqueue", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.enqueue({ ...V, queue: any(v) }, "x") },
  { operation: "enqueue", option: "definition.maxAttempts", kind: count(1), run: (e, v) => e.q.enqueue({ ...V, maxAttempts: any(v) }, "x") },
  { operation: "enqueue", option: "definition.priority", kind: k("priority"), run: (e, v) => e.q.enqueue({ ...V, priority: any(v) }, "x") },
  { operation: "enqueue", option: "definition.leaseDuration", kind: duration(), run: (e, v) => e.q.enqueue({ ...V, leaseDuration: any(v) }, "x") },
  { operation: "enqueue", option: "definition.deadRetention", kind: duration(), run: (e, v) => e.q.enqueue({ ...V, deadRetention: any(v) }, "x") },
  { operation: "enqueue", option: "definition.keepDone", kind: duration(), run: (e, v) => e.q.enqueue({ ...V, keepDone: any(v) }, "x") },
  { operation: "enqueue", option: "definition.backoff", kind: k("backoff"), run: (e, v) => e.q.enqueue({ ...V, backoff: any(v) }, "x") },
  { operation: "enqueue", option: "definition.payload", kind: k("schema"), run: (e, v) => e.q.enqueue({ ...V, payload: any(v) }, "x") },
  { operation: "enqueue", option: "definition.version", kind: count(1), run: (e, v) => e.q.enqueue({ ...V, version: any(v) }, "x") },
  { operation: "enqueue", option: "definition.migrations", kind: k("array"), run: (e, v) => e.q.enqueue({ ...V, version: 2, migrations: any(v) }, "x") },
  // enqueueBatch
  { operation: "enqueueBatch", option: "payloads", kind: k("array"), run: (e, v) => e.q.enqueueBatch(V, any(v)) },
  { operation: "enqueueBatch", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.enqueueBatch({ ...V, queue: any(v) }, ["x"]) },
  // claim
  { operation: "claim", option: "options", kind: k("record"), run: (e, v) => e.q.claim(V, any(v)) },
  { operation: "claim", option: "max", kind: count(0), run: (e, v) => e.q.claim(V, { max: any(v) }) },
  { operation: "claim", option: "lease", kind: duration(), run: (e, v) => e.q.claim(V, { lease: any(v) }) },
  { operation: "claim", option: "wait", kind: duration({ infinite: true }), run: (e, v) => e.q.claim(V, { wait: any(v) }) },
  { operation: "claim", option: "until", kind: k("effect"), run: (e, v) => e.q.claim(V, { until: any(v) }) },
  { operation: "claim", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.claim({ ...V, queue: any(v) }) },
  // settlements of a held claim
  { operation: "nack", option: "error", kind: k("text"), run: (e, v, held) => e.q.nack(held, any(v)) },
  { operation: "nack", option: "options", kind: k("record"), run: (e, v, held) => e.q.nack(held, "e", any(v)) },
  { operation: "nack", option: "delay", kind: duration(), run: (e, v, held) => e.q.nack(held, "e", { delay: any(v) }) },
  {
    operation: "nack",
    option: "backoff",
    kind: duration(),
    run: (e, v, held) => e.q.nack({ ...held, definition: Job.define("v", { payload: Schema.String, backoff: () => any(v) }) }, "e")
  },
  { operation: "deadLetter", option: "reason", kind: k("text"), run: (e, v, held) => e.q.deadLetter(held, any(v)) },
  { operation: "deadLetter", option: "options", kind: k("record"), run: (e, v, held) => e.q.deadLetter(held, "r", any(v)) },
  { operation: "deadLetter", option: "effects", kind: k("record"), run: (e, v, held) => e.q.deadLetter(held, "r", { effects: any(v) }) },
  { operation: "ack", option: "options", kind: k("record"), run: (e, v, held) => e.q.ack(held, any(v)) },
  { operation: "ack", option: "enqueue", kind: k("array"), run: (e, v, held) => e.q.ack(held, { enqueue: any(v) }) },
  { operation: "ack", option: "enqueue[0]", kind: k("array"), run: (e, v, held) => e.q.ack(held, { enqueue: [any(v)] }) },
  { operation: "ack", option: "kv", kind: k("record"), run: (e, v, held) => e.q.ack(held, { kv: any(v) }) },
  { operation: "ack", option: "kvDelete", kind: k("array"), run: (e, v, held) => e.q.ack(held, { kvDelete: any(v) }) },
  { operation: "ack", option: "kvDelete[0]", kind: k("dedupKey"), run: (e, v, held) => e.q.ack(held, { kvDelete: [any(v)] }) },
  { operation: "ack", option: "kv[\"k\"]", kind: k("record"), run: (e, v, held) => e.q.ack(held, { kv: { k: any(v) } }) },
  { operation: "nack", option: "effects", kind: k("record"), run: (e, v, held) => e.q.nack(held, "e", { effects: any(v) }) },
  { operation: "extendLease", option: "duration", kind: duration(), run: (e, v, held) => e.q.extendLease(held, any(v)) },
  // reads
  { operation: "awaitCompletion", option: "options", kind: k("record"), run: (e, v, held) => e.q.awaitCompletion(held.job.id, any(v)) },
  {
    operation: "awaitCompletion",
    option: "timeout",
    kind: duration({ infinite: true }),
    run: (e, v, held) => e.q.awaitCompletion(held.job.id, { timeout: any(v) })
  },
  { operation: "stats", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.stats(any(v)) },
  { operation: "history", option: "id", kind: k("text"), run: (e, v) => e.q.history(any(v)) },
  // the user KV namespace
  { operation: "enqueue", option: "kv", kind: k("record"), run: (e, v) => e.q.enqueue(V, "x", { kv: any(v) }) },
  { operation: "enqueue", option: "kv[\"k\"]", kind: k("record"), run: (e, v) => e.q.enqueue(V, "x", { kv: { k: any(v) } }) },
  { operation: "kv.get", option: "key", kind: k("dedupKey"), run: (e, v) => e.q.kv.get(any(v)) },
  { operation: "kv.put", option: "key", kind: k("dedupKey"), run: (e, v) => e.q.kv.put(any(v), new Uint8Array(1)) },
  { operation: "kv.put", option: "value", kind: k("record"), run: (e, v) => e.q.kv.put("k", any(v)) },
  { operation: "kv.delete", option: "key", kind: k("dedupKey"), run: (e, v) => e.q.kv.delete(any(v)) },
  { operation: "kv.compareAndSet", option: "key", kind: k("dedupKey"), run: (e, v) => e.q.kv.compareAndSet(any(v), Option.none(), new Uint8Array(1)) },
  { operation: "kv.compareAndSet", option: "next", kind: k("record"), run: (e, v) => e.q.kv.compareAndSet("k", Option.none(), any(v)) },
  { operation: "kv.scan", option: "options", kind: k("record"), run: (e, v) => e.q.kv.scan("", any(v)) },
  { operation: "kv.scan", option: "limit", kind: count(1, 10_000), run: (e, v) => e.q.kv.scan("", { limit: any(v) }) },
  { operation: "kv.scan", option: "after", kind: k("dedupKey"), run: (e, v) => e.q.kv.scan("", { after: any(v) }) },
  // listings and management
  { operation: "list", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.list(any(v), "Pending") },
  { operation: "list", option: "definition", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.list({ ...V, queue: any(v) }, "Pending") },
  { operation: "list", option: "state", kind: k("text"), run: (e, v) => e.q.list("v", any(v)) },
  { operation: "list", option: "options", kind: k("record"), run: (e, v) => e.q.list(V, "Pending", any(v)) },
  { operation: "list", option: "limit", kind: count(1, 1000), run: (e, v) => e.q.list("v", "Dead", { limit: any(v) }) },
  { operation: "deadJobs", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.deadJobs(any(v)) },
  { operation: "deadJobs", option: "options", kind: k("record"), run: (e, v) => e.q.deadJobs("v", any(v)) },
  { operation: "deadJobs", option: "limit", kind: count(1, 1000), run: (e, v) => e.q.deadJobs("v", { limit: any(v) }) },
  { operation: "deadJobs", option: "after", kind: k("jobId"), run: (e, v) => e.q.deadJobs("v", { after: any(v) }) },
  { operation: "requeueDead", option: "id", kind: k("jobId"), expect: "InvalidJobId", run: (e, v) => e.q.requeueDead(any(v)) },
  { operation: "requeueDead", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.requeueDead(any(v), { all: true }) },
  { operation: "requeueDead", option: "options", kind: k("record"), run: (e, v) => e.q.requeueDead("v", any(v)) },
  { operation: "requeueDead", option: "all", kind: k("boolean"), run: (e, v) => e.q.requeueDead("v", { all: any(v) }) },
  { operation: "purgeDead", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.purgeDead(any(v)) },
  { operation: "wake", option: "id", kind: k("jobId"), expect: "InvalidJobId", run: (e, v) => e.q.wake(any(v)) },
  { operation: "pause", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.pause(any(v)) },
  { operation: "resume", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => e.q.resume(any(v)) },
  // the layer's options (over the same KV: a layer that opened would requeue the held claim)
  { operation: "JobQueue.layer", option: "options", kind: k("record"), run: (e, v) => queueOver(e, v) },
  ...(["reaperInterval", "schedulerInterval"] as const).map((option): Case => ({
    operation: "JobQueue.layer",
    option,
    kind: duration({ positive: true }),
    run: (e, v) => queueOver(e, { [option]: v })
  })),
  { operation: "JobQueue.layer", option: "offloadThreshold", kind: count(0), run: (e, v) => queueOver(e, { offloadThreshold: v }) },
  { operation: "JobQueue.layer", option: "maxPayloadBytes", kind: count(1), run: (e, v) => queueOver(e, { maxPayloadBytes: v }) }
]

const defineCases: ReadonlyArray<Case> = [
  { operation: "Job.define", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (_, v) => sync(() => Job.define(any(v), { payload: Schema.String })) },
  { operation: "Job.define", option: "options", kind: k("record"), run: (_, v) => sync(() => Job.define("v", any(v))) },
  { operation: "Job.define", option: "payload", kind: k("schema"), run: (_, v) => sync(() => Job.define("v", { payload: any(v) })) },
  ...([
    ["maxAttempts", count(1)],
    ["priority", k("priority")],
    ["leaseDuration", duration()],
    ["keepDone", duration()],
    ["deadRetention", duration()],
    ["backoff", k("backoff")],
    ["version", count(1)]
  ] as const).map(([option, kind]): Case => ({
    operation: "Job.define",
    option,
    kind,
    run: (_, v) => sync(() => Job.define("v", { payload: Schema.String, [option]: v }))
  })),
  { operation: "Job.define", option: "migrations", kind: k("array"), run: (_, v) => sync(() => Job.define("v", { payload: Schema.String, version: 2, migrations: any(v) })) },
  { operation: "Job.migration", option: "from", kind: count(1, 2 ** 31 - 2), run: (_, v) => sync(() => Job.migration(any(v), Schema.String, (s) => s)) },
  { operation: "Job.migration", option: "schema", kind: k("schema"), run: (_, v) => sync(() => Job.migration(1, any(v), (s) => s)) },
  { operation: "Job.migration", option: "f", kind: k("function"), run: (_, v) => sync(() => Job.migration(1, Schema.String, any(v))) },
  { operation: "Job.Backoff.exponential", option: "backoff", kind: k("record"), run: (_, v) => sync(() => Job.Backoff.exponential(any(v))) },
  ...(["base", "max"] as const).map((option): Case => ({
    operation: "Job.Backoff.exponential",
    option: `backoff.${option}`,
    kind: duration(),
    run: (_, v) => sync(() => Job.Backoff.exponential({ [option]: v }))
  })),
  { operation: "Job.Backoff.exponential", option: "backoff.jitter", kind: k("fraction"), run: (_, v) => sync(() => Job.Backoff.exponential({ jitter: any(v) })) },
  { operation: "Job.Backoff.fixed", option: "backoff.delay", kind: duration(), run: (_, v) => sync(() => Job.Backoff.fixed(any(v))) },
  { operation: "Job.Backoff.linear", option: "backoff", kind: k("record"), run: (_, v) => sync(() => Job.Backoff.linear(any(v))) },
  { operation: "Job.Backoff.linear", option: "backoff.step", kind: duration(), run: (_, v) => sync(() => Job.Backoff.linear({ step: any(v) })) },
  { operation: "Job.Backoff.linear", option: "backoff.max", kind: duration(), run: (_, v) => sync(() => Job.Backoff.linear({ step: 1, max: any(v) })) },
  { operation: "Job.Backoff.custom", option: "backoff", kind: k("function"), run: (_, v) => sync(() => Job.Backoff.custom(any(v))) }
]

const workerCases: ReadonlyArray<Case> = [
  { operation: "Worker.layer", option: "handler", kind: k("function"), run: (e, v) => workerOver(e, {}, v) },
  { operation: "Worker.layer", option: "options", kind: k("record"), run: (e, v) => workerOver(e, v) },
  { operation: "Worker.layer", option: "queue", kind: k("queueName"), expect: "InvalidQueueName", run: (e, v) => workerOver(e, {}, undefined, { ...V, queue: v }) },
  ...([
    ["concurrency", count(1)],
    ["batch", count(1)],
    ["timeout", duration({ positive: true, infinite: true })],
    ["drainTimeout", duration({ infinite: true })],
    ["lease", duration()],
    ["renewEvery", duration({ positive: true })],
    ["idleWait", duration({ positive: true })],
    ["rateLimit", k("record")],
    ["permits", k("permits")],
    ["retry", k("function")],
    ["errorSchema", k("schema")]
  ] as const).map(([option, kind]): Case => ({ operation: "Worker.layer", option, kind, run: (e, v) => workerOver(e, { [option]: v }) })),
  { operation: "Worker.layer", option: "rateLimit.limit", kind: count(1), run: (e, v) => workerOver(e, { rateLimit: { limit: v, window: "1 second" } }) },
  {
    operation: "Worker.layer",
    option: "rateLimit.window",
    kind: duration({ positive: true }),
    run: (e, v) => workerOver(e, { rateLimit: { limit: 1, window: v } })
  },
  { operation: "Worker.makePermits", option: "size", kind: count(1), run: (_, v) => sync(() => Worker.makePermits(any(v))) },
  { operation: "Worker.Retry", option: "delay", kind: duration(), run: (_, v) => sync(() => Worker.Retry(any(v))) }
]

const kvCounts = [
  "maxKeyBytes",
  "maxValueBytes",
  "maxCommitBytes",
  "maxUnflushedBytes",
  "maxWalPutsInFlight",
  "runFlushSegments",
  "memtableBytes",
  "maxRuns",
  "keepManifests",
  "openAttempts"
] as const

const storeCases: ReadonlyArray<Case> = [
  // Kv.layer over the same store: a KV that opened would fence the queue's writer
  { operation: "Kv.layer", option: "options", kind: k("record"), run: (e, v) => kvOver(e, v) },
  ...kvCounts.map((option): Case => ({ operation: "Kv.layer", option, kind: count(1), run: (e, v) => kvOver(e, { [option]: v }) })),
  ...(["minFlushInterval", "gcMinAge"] as const).map((option): Case => ({
    operation: "Kv.layer",
    option,
    kind: duration(),
    run: (e, v) => kvOver(e, { [option]: v })
  })),
  { operation: "Kv.layer", option: "useLocalLog", kind: k("boolean"), run: (e, v) => kvOver(e, { useLocalLog: v }) },
  { operation: "Kv.layer", option: "fenceCheckInterval", kind: duration({ positive: true }), run: (e, v) => kvOver(e, { fenceCheckInterval: v }) },
  {
    operation: "Kv.layer",
    option: "fenceCheckInterval",
    kind: duration({ positive: true }),
    run: (e, v) => kvOver(e, { fenceCheckInterval: v })
  },
  // the store layers
  // the fault-injecting store: make throws (it is built where a test is written), layer fails
  { operation: "FaultInjection.make", option: "options", kind: k("record"), run: (e, v) => sync(() => FaultInjection.make(e.store, any(v))) },
  { operation: "FaultInjection.make", option: "faults", kind: k("record"), run: (e, v) => sync(() => FaultInjection.make(e.store, { seed: 1, faults: any(v) })) },
  ...(["errorRate", "lostResponseRate"] as const).map((rate): Case => ({
    operation: "FaultInjection.make",
    option: `faults.put.${rate}`,
    kind: k("fraction"),
    run: (e, v) => sync(() => FaultInjection.make(e.store, { seed: 1, faults: { put: { [rate]: any(v) } } }))
  })),
  { operation: "FaultInjection.make", option: "freezeAt", kind: count(0, Number.MAX_SAFE_INTEGER), run: (e, v) => sync(() => FaultInjection.make(e.store, { seed: 1, freezeAt: any(v) })) },
  {
    operation: "FaultInjection.layer",
    option: "faults.get.latency",
    kind: k("record"),
    run: (e, v) => buildWith(FaultInjection.layer({ seed: 1, faults: { get: { latency: any(v) } } }).pipe(Layer.provide(Layer.succeed(ObjectStore.ObjectStore, e.store))))
  },
  { operation: "ObjectStore.layerMemory", option: "options", kind: k("record"), run: (_, v) => buildWith(ObjectStore.layerMemory(any(v))) },
  { operation: "ObjectStore.layerMemory", option: "retry", kind: k("record"), run: (_, v) => buildWith(ObjectStore.layerMemory({ retry: any(v) })) },
  {
    operation: "ObjectStore.layerMemory",
    option: "retry.maxAttempts",
    kind: count(1),
    run: (_, v) => buildWith(ObjectStore.layerMemory({ retry: { maxAttempts: any(v) } }))
  },
  ...(["base", "max"] as const).map((option): Case => ({
    operation: "ObjectStore.layerMemory",
    option: `retry.${option}`,
    kind: duration(),
    run: (_, v) => buildWith(ObjectStore.layerMemory({ retry: { [option]: any(v) } }))
  })),
  {
    operation: "ObjectStore.layerRetry",
    option: "options.maxAttempts",
    kind: count(1),
    run: (e, v) => buildWith(ObjectStore.layerRetry({ maxAttempts: any(v) }).pipe(Layer.provide(Layer.succeed(ObjectStore.ObjectStore, e.store))))
  },
  { operation: "ObjectStore.layerFileSystem", option: "directory", kind: k("path"), run: (_, v) => fileSystemOver({ directory: v }) },
  { operation: "ObjectStore.layerFileSystem", option: "logPartBytes", kind: count(1024), run: (_, v) => fileSystemOver({ logPartBytes: v }) },
  { operation: "ObjectStore.layerFileSystem", option: "retry.maxAttempts", kind: count(1), run: (_, v) => fileSystemOver({ retry: { maxAttempts: v } }) },
  { operation: "ObjectStore.layerS3", option: "bucket", kind: k("bucket"), run: (_, v) => s3With({ bucket: v }) },
  { operation: "ObjectStore.layerS3", option: "prefix", kind: k("prefix"), run: (_, v) => s3With({ prefix: v }) },
  { operation: "ObjectStore.layerS3", option: "endpoint", kind: k("url"), run: (_, v) => s3With({ endpoint: v }) },
  { operation: "ObjectStore.layerS3", option: "region", kind: k("region"), run: (_, v) => s3With({ region: v }) },
  { operation: "ObjectStore.layerS3", option: "credentials", kind: k("credentials"), run: (_, v) => s3With({ credentials: v }) },
  { operation: "ObjectStore.layerS3", option: "forcePathStyle", kind: k("boolean"), run: (_, v) => s3With({ forcePathStyle: v }) },
  { operation: "ObjectStore.layerS3", option: "quoteIfMatch", kind: k("boolean"), run: (_, v) => s3With({ quoteIfMatch: v }) },
  { operation: "ObjectStore.layerS3", option: "requestTimeout", kind: duration({ positive: true }), run: (_, v) => s3With({ requestTimeout: v }) },
  { operation: "ObjectStore.layerS3", option: "retry.max", kind: duration(), run: (_, v) => s3With({ retry: { max: v } }) }
]

const put = (key: string): Kv.WriteOp => ({ _tag: "Put", key: new TextEncoder().encode(key), value: new Uint8Array([1]) })
const anyRange = { prefix: new Uint8Array(0) }

// the KV's own calls, on the queue's KV: a write that got through would change its commit sequence
const kvCallCases: ReadonlyArray<Case> = [
  { operation: "Kv.scan", option: "options", kind: k("record"), run: (e, v) => e.kv.scan(anyRange, any(v)) },
  { operation: "Kv.scan", option: "limit", kind: count(0), run: (e, v) => e.kv.scan(anyRange, { limit: any(v) }) },
  { operation: "Kv.scan", option: "reverse", kind: k("boolean"), run: (e, v) => e.kv.scan(anyRange, { reverse: any(v) }) },
  { operation: "Kv.write", option: "durable", kind: k("boolean"), run: (e, v) => e.kv.write([put("w")], { durable: any(v) }) },
  { operation: "Kv.writeIf", option: "durable", kind: k("boolean"), run: (e, v) => e.kv.writeIf([put("w")], [], { durable: any(v) }) },
  { operation: "Kv.writeIf", option: "guard", kind: k("function"), run: (e, v) => e.kv.writeIf([put("w")], [], { guard: any(v) }) },
  { operation: "Kv.transaction", option: "options", kind: k("record"), run: (e, v) => e.kv.transaction((tx) => tx.put(put("t").key, new Uint8Array([1])), any(v)) },
  ...([["maxRetries", count(0)], ["isolation", k("isolation")], ["durable", k("boolean")]] as const).map(([option, kind]): Case => ({
    operation: "Kv.transaction",
    option,
    kind,
    run: (e, v) => e.kv.transaction((tx) => tx.put(put("t").key, new Uint8Array([1])), { [option]: any(v) })
  })),
  { operation: "Kv.transactionWithSeq", option: "maxRetries", kind: count(0), run: (e, v) => e.kv.transactionWithSeq((tx) => tx.put(put("t").key, new Uint8Array([1])), { maxRetries: any(v) }) },
  { operation: "Transaction.scan", option: "limit", kind: count(0), run: (e, v) => e.kv.transaction((tx) => Effect.andThen(tx.put(put("t").key, new Uint8Array([1])), tx.scan(anyRange, { limit: any(v) }))) }
]

const allCases = [...jobQueueCases, ...defineCases, ...workerCases, ...storeCases, ...kvCallCases]

const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : undefined

/**
 * Runs `c` with `value` on `env`: a typed failure of the expected class naming the option,
 * nothing stored changed, and the queue usable after.
 */
const attempt = (env: Env, c: Case, value: unknown) =>
  Effect.gen(function*() {
    yield* env.q.enqueue(V, "held")
    const [held] = yield* env.q.claim(V, { max: 1 })
    const before = yield* snapshot(env)
    const exit = yield* Effect.exit(c.run(env, value, held!))
    const after = yield* snapshot(env)
    const error = failureOf(exit)
    const where = `${c.operation} ${c.option} = ${String(typeof value === "symbol" ? value.toString() : value).slice(0, 80)}: ${describeExit(exit)}`
    const expected = c.expect ?? "InvalidOption"
    assert.strictEqual(tagOf(error), expected, where)
    const classes: Record<Expected, new(...args: any) => unknown> = { InvalidOption, InvalidQueueName, InvalidJobId }
    assert.instanceOf(error, classes[expected], where)
    if (error instanceof InvalidOption) {
      const named = error.option === c.option || error.option.startsWith(`${c.option}.`) || error.option.startsWith(`${c.option}[`) ||
        error.option.startsWith(`${c.option}(`) || (c.option.startsWith("definition.") && error.option === "definition")
      assert.isTrue(named, `${where}: names ${error.option}`)
      assert.include(String(error), error.option, where)
    }
    assert.deepStrictEqual(after, before, `${where}: the store changed`)
    yield* env.q.ack(held!)
    env.done++
    yield* assertUsable(env)
  })

describe("every option refuses every hostile value of its pool", () => {
  for (const c of allCases) {
    it.effect(`${c.operation}: ${c.option}`, () =>
      Effect.gen(function*() {
        const env = yield* openEnv
        for (const value of poolOf(c.kind)) yield* attempt(env, c, value)
      }))
  }
})

describe("property: random garbage for a random option of a random operation (seeded)", () => {
  it.effect("1500 draws: each a typed InvalidOption naming the option, nothing written, the queue usable after", () =>
    Effect.gen(function*() {
      const prng = makePrng("issue-12 garbage")
      for (let round = 0; round < 15; round++) {
        const env = yield* openEnv // a new queue every 100 draws keeps the snapshots small
        for (let i = 0; i < 100; i++) {
          const c = allCases[prng.int(0, allCases.length)]!
          yield* attempt(env, c, draw(c.kind, prng))
        }
      }
    }), { timeout: 120_000 })
})

describe("rules that take two options together", () => {
  it.effect("delay with runAt, an offload threshold over the largest payload, a custom backoff that throws", () =>
    Effect.gen(function*() {
      const env = yield* openEnv
      yield* attempt(env, {
        operation: "enqueue",
        option: "delay",
        kind: k("record"),
        run: (e) => e.q.enqueue(V, "x", { delay: "1 second", runAt: 5 })
      }, undefined)
      yield* attempt(env, {
        operation: "JobQueue.layer",
        option: "offloadThreshold",
        kind: k("record"),
        run: (e) => queueOver(e, { offloadThreshold: 2048, maxPayloadBytes: 1024 })
      }, undefined)
      const Throwing = Job.define("v", { payload: Schema.String, backoff: () => { throw new Error("no delay") } })
      yield* attempt(env, {
        operation: "nack",
        option: "backoff",
        kind: k("record"),
        run: (e, _, held) => e.q.nack({ ...held, definition: Throwing }, "e")
      }, undefined)
    }))

  it("the values at the edges of each rule are taken", () => {
    const ok = (f: () => unknown) => assert.doesNotThrow(f)
    ok(() => Job.define("a.b:c-d_e/f/g", { payload: Schema.String, maxAttempts: 2 ** 31 - 1, priority: 2 ** 32 - 1 }))
    ok(() => Job.define("x".repeat(128), { payload: Schema.String, priority: 0, leaseDuration: 0, keepDone: "0 millis" }))
    ok(() => Job.define("q", { payload: Schema.String, deadRetention: 1e15, backoff: Job.Backoff.exponential({ jitter: 1, base: 0 }) }))
    ok(() => Job.Backoff.linear({ step: [1, 500], max: { hours: 1, minutes: 30 } }))
    ok(() => Job.Backoff.fixed(5_000_000n))
    ok(() => Worker.Retry("1 week"))
    ok(() => Worker.makePermits(1))
    assert.throws(() => Job.define("q", { payload: Schema.String, deadRetention: 1e15 + 1 }), InvalidOption)
    assert.throws(() => Job.define("../../etc", { payload: Schema.String }), InvalidQueueName)
    assert.throws(() => Job.define("q".repeat(255), { payload: Schema.String }), InvalidQueueName)
  })

  it.effect("the layers and Worker options at their edges build", () =>
    Effect.gen(function*() {
      const env = yield* openEnv
      yield* buildWith(ObjectStore.layerS3({ bucket: "b", prefix: "a/b/", endpoint: "https://s3.example", region: "eu-west-1", credentials: { accessKeyId: "k", secretAccessKey: Redacted.make("s") } }))
      yield* buildWith(ObjectStore.layerMemory({ retry: { maxAttempts: 1, base: 0, max: "1 second" } }))
      yield* workerOver(env, { concurrency: 1, timeout: "Infinity", drainTimeout: Infinity, idleWait: "1 second", rateLimit: { limit: 1, window: 1 } })
      assert.isFalse(existsSync(neverCreated))
    }))
})

// The scratch directory holds nothing: the file system layers were refused before creating it.
afterAll(() => rmSync(scratch, { recursive: true, force: true }))
