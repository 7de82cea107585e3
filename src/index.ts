/**
 * bucketq: a durable job queue for Effect whose only infrastructure is an object store.
 *
 * @since 0.1.0
 */

/**
 * A fault-injecting object store for tests: seeded latency, errors, lost responses, and a
 * freeze switch that stops the store at operation k.
 *
 * @since 0.1.0
 */
export * as FaultInjection from "./FaultInjection.ts"

/**
 * Typed job definitions: queue name, payload schema, per-queue defaults; backoff policies;
 * `PermanentFailure`.
 *
 * @since 0.1.0
 */
export * as Job from "./Job.ts"

/**
 * The job queue: enqueue, claim with leases, ack, nack with backoff, dead-lettering, cancellation
 * and completion, with a lease reaper and a scheduler.
 *
 * @since 0.1.0
 */
export * as JobQueue from "./JobQueue.ts"

/**
 * Errors of the job queue: `InvalidQueueName`, `InvalidJobId`, `InvalidOption`, `DuplicateJobId`,
 * `PayloadTooLarge`, `PayloadMissing`, `InvalidPayload`, `ClaimLost`, `CancelRequested`, `JobNotFound`,
 * `InvalidState`, and those of remote queues, `WriterUnavailable` and `Unauthorized`.
 *
 * @since 0.1.0
 */
export * as JobQueueError from "./JobQueueError.ts"

/**
 * The error every public operation and layer fails with when one of its options breaks its rule
 * (`NaN`, infinities, negatives, fractions where whole numbers are meant, invalid dates,
 * durations that do not parse, values too large to store): the option's name, the value as text
 * and the rule. Checked before anything is written; never a defect.
 *
 * @since 0.1.0
 */
export { InvalidOption } from "./InvalidOption.ts"

/**
 * A transactional, ordered key-value store on an object store, with one writer at a time:
 * group-committed WAL, numbered manifests with writer fencing, sorted runs, recovery, GC.
 *
 * @since 0.1.0
 */
export * as Kv from "./Kv.ts"

/**
 * Errors of the KV engine: `TransactionConflict`, `Fenced`, `Closed`, `Corrupt`, `ValueTooLarge`.
 *
 * @since 0.1.0
 */
export * as KvError from "./KvError.ts"

/**
 * The only module that touches storage: get, head, conditional put, delete and ordered list,
 * on memory, a local directory or S3.
 *
 * @since 0.1.0
 */
export * as ObjectStore from "./ObjectStore.ts"

/**
 * Errors of the object store layer: `ObjectStoreError` with a `reason`, and the input errors
 * `InvalidKey`, `InvalidMetadata`, `InvalidRange`.
 *
 * @since 0.1.0
 */
export * as ObjectStoreError from "./ObjectStoreError.ts"

/**
 * The job queue on the store named by `BUCKETQ_URL`; `QueueLive.standby({ takeoverAfter })` is a
 * standby writer for it.
 *
 * @since 0.1.0
 */
export { QueueLive } from "../layers/QueueLive.ts"

/**
 * The job queue in memory, driven by the `Clock` (so by `TestClock` in tests).
 *
 * @since 0.1.0
 */
export { QueueTest } from "../layers/QueueTest.ts"

/**
 * Serves the writer's `JobQueue` to other processes over Effect RPC (a WebSocket, binary
 * serialization), every request checked against a shared token.
 *
 * @since 0.3.0
 */
export * as QueueServer from "./QueueServer.ts"

/**
 * The queue of a writer in another process (`QueueServer`): the `JobQueue` operations over the
 * connection, with a bounded retry and `WriterUnavailable` when the writer cannot be reached.
 *
 * @since 0.3.0
 */
export * as QueueClient from "./QueueClient.ts"

/**
 * A read-only web page of the queues: depth by state, depth and rate charts over the last
 * minutes, dead jobs with their errors, and one job's history, over a live queue or a store
 * opened read-only.
 *
 * @since 0.3.0
 */
export * as Ui from "./Ui.ts"

/**
 * Workers: a definition's handler run as supervised fibers, with concurrency, shared permits, a
 * rate limit, timeouts, typed retry decisions, lease renewal, cancellation and a graceful drain.
 *
 * @since 0.1.0
 */
export * as Worker from "./Worker.ts"

/**
 * The writer record: which writer holds a store (its epoch), where it serves, and its heartbeat;
 * `WriterRecord.read(store)` for clients finding the writer.
 *
 * @since 0.2.0
 */
export * as WriterRecord from "./WriterRecord.ts"
