/**
 * The job queue on the KV: enqueue, claim with leases, ack, nack with backoff, dead-lettering,
 * cancellation and completion, with a lease reaper and a scheduler forked in the layer's scope.
 *
 * **Details**
 *
 * Delivery is at-least-once. Enqueue, ack, nack, dead-letter and cancel complete only once
 * durable; claims are not (a claim lost in a crash leaves the job pending). A claim holds a lease
 * and a token: settling a claim whose lease expired and whose job was requeued or claimed again
 * fails with `ClaimLost` and changes nothing. Jobs left claimed by a previous process are requeued
 * (their attempt counted) or dead-lettered when the layer opens.
 *
 * Jobs can be inspected and managed: listed by queue and state (`list`, `deadJobs`, `queues`),
 * requeued from or purged out of the dead-letter queue (`requeueDead`, `purgeDead`), woken before
 * their due time (`wake`), and a queue's claims paused and resumed (`pause`, `resume`).
 *
 * The queue lives as long as its KV writer: once that stops for good (`Fenced`, when another
 * process opened the same store, or `Closed`), every operation fails with why, claim and
 * completion waits end with it at once, and the reaper and scheduler stop, so that nothing
 * touches the store any more.
 *
 * Cron schedules (`schedule`) are stored in the KV too: the scheduler enqueues their due slots.
 *
 * Operating it: with a tracer installed, every operation runs in a span `bucketq.<operation>` with
 * the queue's name and the job's id as attributes; every operation is timed in
 * `bucketq_operation_seconds{operation}`; job events are counted in `bucketq_jobs_total{queue,event}`,
 * and `bucketq_queue_depth{queue,state}` and `bucketq_oldest_pending_seconds{queue}` are read from
 * the queue's counters when metrics are exported (Effect's `Metric`, exported for instance by
 * `effect/observability`'s Prometheus: see `examples/prometheus.ts`).
 *
 * `makeReadOnly` gives the queue's reads (`Reader`) without the writer's work, for tools that
 * inspect a store over a read-only KV (`Kv.makeReadOnly`), such as the `bucketq` CLI.
 *
 * @since 0.1.0
 */
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Scope, type Stream } from "effect"
import type { Attempt, AttemptOutcome, JobRecord, JobStatus } from "../schema/JobRecord.ts"
import type { MissedPolicy } from "../schema/Schedule.ts"
import type { InvalidOption } from "./InvalidOption.ts"
import type * as Job from "./Job.ts"
import type {
  CancelRequested,
  ClaimLost,
  DuplicateJobId,
  InvalidJobId,
  InvalidPayload,
  InvalidQueueName,
  InvalidState,
  JobNotFound,
  PayloadMissing,
  PayloadTooLarge,
  Unauthorized,
  WriterUnavailable
} from "./JobQueueError.ts"
import * as Kv from "./Kv.ts"
import type { Closed, Corrupt, Fenced, TransactionConflict, ValueTooLarge } from "./KvError.ts"
import { ObjectStore } from "./ObjectStore.ts"
import type { ObjectStoreError } from "./ObjectStoreError.ts"
import * as Claiming from "./queue/claim.ts"
import * as QueueContext from "./queue/context.ts"
import * as Codec from "./queue/codec.ts"
import * as Core from "./queue/core.ts"
import * as Effects from "./queue/effects.ts"
import * as Control from "./queue/control.ts"
import * as Dead from "./queue/dead.ts"
import * as Enqueue from "./queue/enqueue.ts"
import * as Instrument from "./queue/instrument.ts"
import * as Leases from "./queue/leases.ts"
import * as Listing from "./queue/listing.ts"
import * as Maintenance from "./queue/maintenance.ts"
import * as QueueOptions from "./queue/options.ts"
import { checkOneEffect } from "./internal/effectCopy.ts"
import { checked } from "./internal/options.ts"
import * as Payloads from "./queue/payloads.ts"
import * as Reads from "./queue/reads.ts"
import * as Schedules from "./queue/schedules.ts"
import * as Settle from "./queue/settle.ts"
import * as UserKv from "./queue/userKv.ts"
import * as WriterRecord from "./WriterRecord.ts"

/**
 * The stored job record and its statuses (see `schema/JobRecord.ts`).
 *
 * @category models
 * @since 0.1.0
 */
export type { Attempt, AttemptOutcome, JobRecord, JobStatus }

/**
 * Options of `enqueue`. Each is checked before anything is written; one that breaks its rule
 * fails the enqueue with `InvalidOption` naming it (`InvalidJobId` for `id`).
 *
 * @category models
 * @since 0.1.0
 */
export interface EnqueueOptions {
  /** `"high"`, `"normal"`, `"low"`, or an integer from 0 to 2^32 − 1 (default: the definition's). */
  readonly priority?: Job.PriorityInput | undefined
  /** Run no earlier than this long from now: a finite, non-negative duration up to 10^15 ms. Not with `runAt`. */
  readonly delay?: Duration.Input | undefined
  /** Run no earlier than this instant: epoch milliseconds or a valid Date, within ±8.64·10^15 ms. */
  readonly runAt?: number | Date | undefined
  /**
   * While a job with this key is pending or scheduled in the queue, enqueue returns its id. A
   * well-formed string of 1 to 1024 UTF-8 bytes.
   */
  readonly dedupKey?: string | undefined
  /** Claims allowed before the job is dead-lettered: an integer from 1 to 2^31 − 1. */
  readonly maxAttempts?: number | undefined
  /** String values only. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** An id of your own: 1 to 128 characters of `[A-Za-z0-9_-]`. */
  readonly id?: string | undefined
  /**
   * Writes to the user KV namespace (`queue.kv`) committed atomically with the job: keys and
   * values as `kv.put` takes them. Nothing is written on a dedup hit.
   */
  readonly kv?: Readonly<Record<string, Uint8Array>> | undefined
}

/**
 * A follow-up enqueue of a settlement: a definition, its payload and `enqueue`'s options (`kv`
 * excepted: a settlement has its own).
 *
 * @category models
 * @since 0.2.0
 */
export type FollowUp = readonly [definition: Job.Definition<any, any>, payload: unknown, options?: Omit<EnqueueOptions, "kv">]

/**
 * What a settlement commits with it, atomically: a stale claim applies none of it (`ClaimLost`),
 * and effects that do not check (a payload its schema refuses, a bad key or option, a value over
 * 256 KiB) fail the settlement before anything is written, the claim left as it was.
 *
 * @category models
 * @since 0.2.0
 */
export interface SettlementEffects {
  /** Jobs to enqueue (a dedup hit enqueues nothing, as `enqueue` would). */
  readonly enqueue?: ReadonlyArray<FollowUp> | undefined
  /** Writes to the user KV namespace. */
  readonly kv?: Readonly<Record<string, Uint8Array>> | undefined
  /** Deletes from the user KV namespace (before the writes: a key in both ends written). */
  readonly kvDelete?: ReadonlyArray<string> | undefined
}

/**
 * Options of `ack`: the settlement's effects, and the handler's result.
 *
 * @category models
 * @since 0.2.0
 */
export interface AckOptions extends SettlementEffects {
  /**
   * The job's result, encoded with the definition's `result` schema and kept with the done job
   * (see `Job.define`'s `result`); a definition without one refuses it (`InvalidOption`).
   */
  readonly result?: unknown
}

/**
 * Options of `deadLetter`.
 *
 * @category models
 * @since 0.2.0
 */
export interface DeadLetterOptions {
  /** Committed with the dead-lettering. */
  readonly effects?: SettlementEffects | undefined
}

/**
 * An entry of the user KV namespace.
 *
 * @category models
 * @since 0.2.0
 */
export interface KvEntry {
  readonly key: string
  readonly value: Uint8Array
}

/**
 * The user KV namespace of a queue (`queue.kv`): string keys (well-formed, 1 to 1024 UTF-8
 * bytes), byte values up to 256 KiB (`ValueTooLarge` above, nothing written), in a key space of
 * its own that no queue key reaches. Writes return once durable. The same writes can be committed
 * with an enqueue (`EnqueueOptions.kv`) or a settlement (`SettlementEffects`).
 *
 * @category models
 * @since 0.2.0
 */
export interface QueueKv {
  readonly get: (key: string) => Effect.Effect<Option.Option<Uint8Array>, InvalidOption | ReadError>
  readonly put: (key: string, value: Uint8Array) => Effect.Effect<void, InvalidOption | QueueError>
  readonly delete: (key: string) => Effect.Effect<void, InvalidOption | QueueError>
  /**
   * Sets `key` to `next` (none: deletes it) only if its value is `expected` (none: absent), in one
   * atomic step; `true` when it did.
   */
  readonly compareAndSet: (
    key: string,
    expected: Option.Option<Uint8Array> | Uint8Array,
    next: Option.Option<Uint8Array> | Uint8Array
  ) => Effect.Effect<boolean, InvalidOption | QueueError>
  /**
   * The entries whose key starts with `prefix` (`""`: all), in key order (UTF-8 byte order), at
   * most `limit` (default 1000, up to 10 000), after the key `after` when given: page by passing
   * the last key returned.
   */
  readonly scan: (
    prefix: string,
    options?: { readonly after?: string | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<KvEntry>, InvalidOption | ReadError>
}

/**
 * @category models
 * @since 0.1.0
 */
export interface EnqueueResult {
  readonly id: string
  /** `false` when a job with the same dedup key was there already (its id is returned). */
  readonly created: boolean
}

/**
 * A claimed job: the record with its payload decoded, and the token that settles it.
 *
 * @category models
 * @since 0.1.0
 */
export interface Claim<A> {
  readonly job: Omit<JobRecord, "payload"> & { readonly payload: A }
  readonly record: JobRecord
  readonly token: string
  readonly definition: Job.Definition<A, any>
  /** Completes once `cancel` was asked for this job (at once if it was before the claim). */
  readonly cancelled: Effect.Effect<void>
}

/**
 * Options of `claim`; one that breaks its rule fails the claim with `InvalidOption`.
 *
 * @category models
 * @since 0.1.0
 */
export interface ClaimOptions {
  /** Most jobs (default 1): an integer from 0 to 2^31 − 1. */
  readonly max?: number | undefined
  /** Lease of the claims (default: the definition's `leaseDuration`): finite, non-negative. */
  readonly lease?: Duration.Input | undefined
  /**
   * When none is pending, wait this long for one to arrive (woken by enqueues in this process):
   * non-negative; `Infinity` waits until one arrives.
   */
  readonly wait?: Duration.Input | undefined
  /**
   * Stop waiting when this completes (and return what was claimed: nothing). For a caller that
   * must not interrupt a claim, which could lose jobs claimed a moment before.
   */
  readonly until?: Effect.Effect<void> | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export type NackOutcome = "Retried" | "DeadLettered"

/**
 * Options of `nack`.
 *
 * @category models
 * @since 0.1.0
 */
export interface NackOptions {
  /** Retry after this long instead of the definition's backoff (zero: at once): finite, non-negative. */
  readonly delay?: Duration.Input | undefined
  /** Committed only if the nack dead-letters the job (its attempts used up). */
  readonly effects?: SettlementEffects | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export type CancelOutcome = "Removed" | "Requested" | "NotFound"

/**
 * @category models
 * @since 0.1.0
 */
export type CompletionOutcome =
  | { readonly _tag: "Completed"; readonly job: Option.Option<JobRecord> }
  | { readonly _tag: "TimedOut" }
  | { readonly _tag: "NotFound" }

/**
 * @category models
 * @since 0.1.0
 */
export interface QueueStats {
  readonly queue: string
  readonly pending: number
  readonly scheduled: number
  readonly claimed: number
  /** Jobs acknowledged so far (cumulative; not lowered when done jobs are deleted). */
  readonly done: number
  readonly dead: number
}

/**
 * A queue's counters (see `QueueStats`) and whether its claims are paused: what `queues()` lists.
 *
 * @category models
 * @since 0.2.0
 */
export interface QueueInfo extends QueueStats {
  /** `pause` was called and `resume` not since: its claims return nothing. */
  readonly paused: boolean
}

/**
 * Options of `list`; one that breaks its rule fails the listing with `InvalidOption`.
 *
 * @category models
 * @since 0.2.0
 */
export interface ListOptions {
  /**
   * Where to go on: the `cursor` of the previous page of the same listing (opaque; one that is
   * not a cursor of this listing is `InvalidOption`). Left out: the first page.
   */
  readonly cursor?: string | undefined
  /** Most jobs on the page (default 100): an integer from 1 to 1000. */
  readonly limit?: number | undefined
}

/**
 * A page of a listing: its jobs, and the cursor of the next page (`None`: the listing is at its
 * end). A page can hold fewer jobs than the limit, even none, while the cursor is `Some` (a
 * listing of scheduled or done jobs reads a bounded number of keys per call): go on until `None`.
 *
 * @category models
 * @since 0.2.0
 */
export interface JobPage<J> {
  readonly jobs: ReadonlyArray<J>
  readonly cursor: Option.Option<string>
}

/**
 * A job of a listing by queue name (and of `deadJobs`): its record as `get` returns it, the payload
 * encoded and read back from its object when offloaded. When that object is gone or damaged, the
 * record is as stored (`payload` empty, `payloadRef` naming the object) and `payloadError` says why.
 *
 * @category models
 * @since 0.2.0
 */
export type ListedRecord = JobRecord & { readonly payloadError?: string | undefined }

/**
 * A job of a listing by definition: its payload decoded (`payloadError` undefined), or, when the
 * payload cannot be decoded (it does not match the schema, its object is gone or damaged), the
 * record as `get` returns it with `payloadError` saying why. Such a job is listed, never hidden.
 *
 * @category models
 * @since 0.2.0
 */
export type ListedJob<A> =
  | (Omit<JobRecord, "payload"> & { readonly payload: A; readonly payloadError?: undefined })
  | (JobRecord & { readonly payloadError: string })

/**
 * Options of `deadJobs`; one that breaks its rule fails with `InvalidOption`.
 *
 * @category models
 * @since 0.2.0
 */
export interface DeadJobsOptions {
  /** List the dead jobs whose id comes after this one (the last id of the previous page). */
  readonly after?: string | undefined
  /** Most jobs (default 100): an integer from 1 to 1000. */
  readonly limit?: number | undefined
}

/**
 * @category models
 * @since 0.2.0
 */
export type WakeOutcome = "Woken" | "NotScheduled" | "NotFound"

/**
 * What a schedule does with the slots that fell due while no process ran the queue (see
 * `ScheduleOptions.missed`).
 *
 * @category models
 * @since 0.2.0
 */
export type { MissedPolicy }

/**
 * Options of `schedule`. Each is checked before anything is written; one that breaks its rule
 * fails with `InvalidOption` naming it.
 *
 * @category models
 * @since 0.2.0
 */
export interface ScheduleOptions<A> {
  /**
   * The schedule's name, unique in the queue's store (scheduling it again replaces it): a
   * well-formed string of 1 to 64 UTF-8 bytes. Its jobs' ids are derived from it and the slot.
   */
  readonly key: string
  /** When to enqueue: a cron expression `Cron.parse` takes (5 fields, or 6 with seconds first). */
  readonly cron: string
  /** The time zone the expression is read in (default `"UTC"`): an IANA name or an offset. */
  readonly timezone?: string | undefined
  /** The payload of every job, encoded with the definition now (`InvalidPayload`, `PayloadTooLarge` over 64 KiB). */
  readonly payload: A
  /**
   * Slots that fell due while no process ran the queue (before it opened): one job for the most
   * recent (`"latest"`, the default), one per slot oldest first, the newest `maxCatchUp` of them
   * (`"all"`), or none (`"none"`, on to the next slot).
   */
  readonly missed?: MissedPolicy | undefined
  /** The most jobs one catch-up enqueues (default 100): an integer from 1 to 10 000. */
  readonly maxCatchUp?: number | undefined
  /** As in `enqueue` (default: the definition's). */
  readonly priority?: Job.PriorityInput | undefined
  /** As in `enqueue` (default: the definition's). */
  readonly maxAttempts?: number | undefined
  /** As in `enqueue`: string values, given to every job. */
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A stored schedule, as `schedules` and `schedule` tell it. Instants are epoch milliseconds.
 *
 * @category models
 * @since 0.2.0
 */
export interface ScheduleInfo {
  readonly key: string
  readonly queue: string
  readonly cron: string
  readonly timezone: string
  readonly missed: MissedPolicy
  readonly maxCatchUp: number
  /** The next slot not yet handled (none when the expression has no slot left). */
  readonly nextSlot: Option.Option<number>
  /** The last slot a job was enqueued for (none yet). */
  readonly lastSlot: Option.Option<number>
}

/**
 * @category models
 * @since 0.2.0
 */
export type UnscheduleOutcome = "Removed" | "NotFound"

/**
 * What happened to a job, as `queue.events` tells it: `Enqueued` (by `enqueue`, `enqueueBatch`, a
 * settlement's follow-up or a cron slot), `Claimed` (with its attempt), `Completed` (acknowledged),
 * `Retried` (nacked with attempts left, or requeued by the reaper after its lease expired:
 * `runAt` when it waits out a backoff), `DeadLettered` (with the reason), `Cancelled` (removed
 * by `cancel`, or discarded by its holder after one). `at` is the instant (epoch ms).
 *
 * @category models
 * @since 0.2.0
 */
export type JobEvent =
  | { readonly _tag: "Enqueued"; readonly id: string; readonly queue: string; readonly at: number }
  | { readonly _tag: "Claimed"; readonly id: string; readonly queue: string; readonly attempt: number; readonly at: number }
  | { readonly _tag: "Completed"; readonly id: string; readonly queue: string; readonly at: number }
  | {
    readonly _tag: "Retried"
    readonly id: string
    readonly queue: string
    readonly error: string
    readonly runAt: Option.Option<number>
    readonly at: number
  }
  | { readonly _tag: "DeadLettered"; readonly id: string; readonly queue: string; readonly reason: string; readonly at: number }
  | { readonly _tag: "Cancelled"; readonly id: string; readonly queue: string; readonly at: number }

/**
 * The writer cannot be reached: only a queue of another process's writer (`QueueClient`) fails
 * with these, a queue of this process never does. `WriterUnavailable` when the connection is down
 * past the client's retries (or dropped under a write that may or may not have been applied),
 * `Unauthorized` when the client's token is not the server's.
 *
 * @category errors
 * @since 0.3.0
 */
export type Unreachable = WriterUnavailable | Unauthorized

/**
 * Errors of reading: the writer stopped for good (`Fenced`, `Closed`), or cannot be reached, or
 * a block of the store's sorted runs could not be read (`Corrupt`, `ObjectStoreError`: see
 * `Kv.ReadError`).
 *
 * @category errors
 * @since 0.3.0
 */
export type ReadError = Kv.StopError | Kv.ReadError | Unreachable

/**
 * Errors of writing operations: the commit's, the reads it rests on (`Kv.ReadError`), or the
 * writer cannot be reached.
 *
 * @category errors
 * @since 0.1.0
 */
export type QueueError = Fenced | Closed | TransactionConflict | ValueTooLarge | Kv.ReadError | Unreachable


/**
 * Errors of settling a claim: the claim no longer held (`ClaimLost`), the commit's errors, and
 * effects or a result refused (those of `enqueue` for a follow-up job, `InvalidOption`,
 * `ValueTooLarge`), or the store failing to take a large follow-up payload.
 *
 * @category errors
 * @since 0.2.0
 */
export type SettleError =
  | QueueError
  | ClaimLost
  | InvalidOption
  | InvalidQueueName
  | InvalidJobId
  | InvalidPayload
  | PayloadTooLarge
  | DuplicateJobId
  | ObjectStoreError

/**
 * Errors of reading or writing a payload stored as an object of its own (over
 * `offloadThreshold`): the store failed past its retries, the object is gone, or it fails its
 * checks (`Corrupt`, naming the object and the check: see `schema/PayloadObject.ts`).
 *
 * @category errors
 * @since 0.1.0
 */
export type PayloadStoreError = ObjectStoreError | PayloadMissing | Corrupt

/**
 * Options of `layer`; one that breaks its rule fails the layer with `InvalidOption` before the
 * queue reads or writes anything.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** How often expired leases are looked for (default 5 seconds): finite, above zero. */
  readonly reaperInterval?: Duration.Input | undefined
  /** How often due scheduled jobs are made pending (default 1 second): finite, above zero. */
  readonly schedulerInterval?: Duration.Input | undefined
  /**
   * Encoded payloads larger than this (default 256 KiB) are stored as objects of their own under
   * `payloads/`, written before the job's commit and deleted after the commit that removes the job.
   * An integer from 0, at most `maxPayloadBytes` when both are given.
   */
  readonly offloadThreshold?: number | undefined
  /** The largest encoded payload taken (default 64 MiB), an integer from 1; larger ones are `PayloadTooLarge`. */
  readonly maxPayloadBytes?: number | undefined
  /**
   * Write the writer record (`WriterRecord`: epoch, address, heartbeat) at open and rewrite it
   * every `takeoverAfter / 3`, so that clients can find this writer and a standby can watch it
   * (default true). `false`: no record, no heartbeat.
   */
  readonly writerRecord?: boolean | undefined
  /**
   * The takeover time (default 15 seconds): the heartbeat runs every third of it, and a standby
   * (`layerStandby`) takes over once the record has not changed for this long. A finite duration
   * of at least 1 second.
   */
  readonly takeoverAfter?: Duration.Input | undefined
  /** Where this writer serves the queue to other processes, written in the writer record (1 to 1024 UTF-8 bytes). */
  readonly address?: string | undefined
}

/**
 * Options of `layerStandby`: the queue's (`Options`, with `takeoverAfter` the time without a
 * heartbeat after which the writer is taken for dead) and the KV's it opens once it takes over
 * (`kv`; its `fenceCheckInterval` defaults to `takeoverAfter / 3` there, so that a standby that
 * lost a race to open learns it soon).
 *
 * @category models
 * @since 0.2.0
 */
export interface StandbyOptions extends Options {
  /** Options of the KV opened at the takeover (see `Kv.Options`). */
  readonly kv?: Kv.Options | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Service {
  /**
   * Enqueues one job. Every option is checked first (see `EnqueueOptions`); a bad one, or a
   * definition that breaks `Job.define`'s rules, fails with `InvalidOption` (`InvalidQueueName`,
   * `InvalidJobId`) and writes nothing.
   */
  readonly enqueue: <A, I>(
    definition: Job.Definition<A, I>,
    payload: A,
    options?: EnqueueOptions
  ) => Effect.Effect<
    EnqueueResult,
    QueueError | InvalidQueueName | InvalidJobId | InvalidOption | DuplicateJobId | PayloadTooLarge | InvalidPayload | ObjectStoreError
  >
  /** Enqueues every payload in one atomic commit, with the definition's defaults. */
  readonly enqueueBatch: <A, I>(
    definition: Job.Definition<A, I>,
    payloads: ReadonlyArray<A>
  ) => Effect.Effect<ReadonlyArray<string>, QueueError | InvalidQueueName | InvalidOption | PayloadTooLarge | InvalidPayload | ObjectStoreError>
  /**
   * Claims up to `max` jobs, priority first (lower number), then in enqueue order. A job stored
   * with an older payload version than the definition's is brought up to date through the
   * definition's migrations (see `Job.migration`). A job whose payload does not decode (or does
   * not migrate: no step from its version, a step that throws or returns what the next version
   * rejects, a version newer than the definition's), or whose payload object is gone or fails
   * its checks (`Corrupt`), is dead-lettered with that reason in one durable commit, its stored
   * payload kept, never returned. If an
   * offloaded payload cannot be read (`ObjectStoreError`), the claims of the call stay taken until
   * their leases expire. Bad options (see `ClaimOptions`) fail with `InvalidOption`, claiming nothing.
   */
  readonly claim: <A, I>(
    definition: Job.Definition<A, I>,
    options?: ClaimOptions
  ) => Effect.Effect<ReadonlyArray<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError>
  /**
   * Acknowledges the job: it is deleted, or kept as done (for the definition's `keepDone`, or with
   * a `result` for its `resultRetention`). With options, its effects (see `SettlementEffects`) and
   * its result are committed with it; effects or a result that do not check fail the ack with
   * nothing written and the claim still held.
   */
  readonly ack: (claim: Claim<any>, options?: AckOptions) => Effect.Effect<void, SettleError>
  /**
   * Retries with the definition's backoff (or `delay`), or dead-letters when the attempts are used
   * up. `error` must be a string and `delay` a finite, non-negative duration; a custom backoff's
   * delay is checked the same way. Otherwise `InvalidOption`, and the claim is left as it was.
   */
  readonly nack: (
    claim: Claim<any>,
    error: string,
    options?: NackOptions
  ) => Effect.Effect<NackOutcome, SettleError>
  /**
   * Gives the claim back unsettled: the job is pending again in its place and the attempt does
   * not count (for a worker that stops before the job ran to an end).
   */
  readonly release: (claim: Claim<any>) => Effect.Effect<void, QueueError | ClaimLost>
  /**
   * Removes a claimed job without an outcome (a cancel its holder honoured): it is gone, and
   * waiters of its completion see it removed.
   */
  readonly discard: (claim: Claim<any>) => Effect.Effect<void, QueueError | ClaimLost>
  /** Dead-letters at once; the attempts are not consumed. `reason` must be a string (else `InvalidOption`). */
  readonly deadLetter: (claim: Claim<any>, reason: string, options?: DeadLetterOptions) => Effect.Effect<void, SettleError>
  /**
   * The lease now ends `duration` from now (finite, non-negative, else `InvalidOption`); refused
   * once the job was asked to cancel.
   */
  readonly extendLease: (
    claim: Claim<any>,
    duration: Duration.Input
  ) => Effect.Effect<void, ClaimLost | CancelRequested | InvalidOption | ReadError>
  /**
   * The job's record, its payload read back from its object when offloaded: an object that is gone
   * is `PayloadMissing`, one that fails its checks `Corrupt`. Given the job's definition first,
   * the payload and the result are decoded with it (`DecodedJob`; `InvalidPayload` when either
   * does not decode, `InvalidOption` for a job of another queue).
   */
  readonly get: {
    (id: string): Effect.Effect<Option.Option<JobRecord>, PayloadStoreError | ReadError>
    <A, I, R>(
      definition: Job.Definition<A, I, R>,
      id: string
    ): Effect.Effect<Option.Option<DecodedJob<A, R>>, PayloadStoreError | DecodeError | ReadError>
  }
  /**
   * The ended attempts of a job, oldest first (the last 32): when each claim began and ended,
   * how (`Attempt["outcome"]`) and with what error. A job being worked on shows the attempts
   * before its current claim. Kept while the job's record is: a job acknowledged without
   * `keepDone` (or a result) or cancelled is gone, and so is its history (`JobNotFound`).
   */
  readonly history: (id: string) => Effect.Effect<ReadonlyArray<Attempt>, JobNotFound | InvalidOption | ReadError>
  /** The user KV namespace (see `QueueKv`). */
  readonly kv: QueueKv
  /**
   * The events of this process's queue (see `JobEvent`) from the moment the stream is run, each
   * once the change it tells is committed. For watching (a dashboard, logs, metrics), not for
   * driving work: a subscriber 4096 events behind misses new ones until it catches up, events of
   * other processes are not seen, and the stream ends when the queue closes.
   */
  readonly events: Stream.Stream<JobEvent, Unreachable>
  /** The counters of a queue (all zero for a queue never used); a bad name is `InvalidQueueName`. */
  readonly stats: (queue: string) => Effect.Effect<QueueStats, InvalidQueueName | ReadError>
  readonly cancel: (id: string) => Effect.Effect<CancelOutcome, QueueError>
  /**
   * Waits for the job to end; the record returned is as stored (an offloaded payload is not read).
   * `timeout` is a non-negative duration, `Infinity` (or left out) for none; else `InvalidOption`.
   * If the queue's writer stops meanwhile (`Fenced`: another process took the store over), the
   * wait fails with why at once: this process can no longer see the job end (it may still, under
   * the writer that took over).
   */
  readonly awaitCompletion: {
    (id: string, options?: AwaitOptions): Effect.Effect<CompletionOutcome, InvalidOption | ReadError>
    /** With the job's definition first: `Completed` carries the result, decoded with it. */
    <A, I, R>(
      definition: Job.Definition<A, I, R>,
      id: string,
      options?: AwaitOptions
    ): Effect.Effect<ResultOutcome<R>, DecodeError | ReadError>
  }
  /**
   * A page of the jobs of a queue in one state: `Pending` in claim order (priority, then enqueue
   * order), `Scheduled` by due time, `Claimed` and `Dead` by id, `Done` (the jobs kept by
   * `keepDone`) by completion time. Given a definition, the payloads are decoded (`ListedJob`);
   * given a queue name, they are encoded, as `get` returns them (`ListedRecord`).
   *
   * The cursor of a page goes on strictly after it, and stays valid while jobs come and go: no
   * job is listed twice in one pass (unless it left and came back behind the cursor, such as a
   * retry scheduled later), and every job there for the whole pass is listed. A bad queue name is
   * `InvalidQueueName`; a bad state, limit or cursor `InvalidOption`; a store failing while an
   * offloaded payload is read fails the listing with its `ObjectStoreError`.
   */
  readonly list: {
    <A, I>(
      definition: Job.Definition<A, I>,
      state: JobStatus,
      options?: ListOptions
    ): Effect.Effect<JobPage<ListedJob<A>>, InvalidQueueName | InvalidOption | ObjectStoreError | ReadError>
    (
      queue: string,
      state: JobStatus,
      options?: ListOptions
    ): Effect.Effect<JobPage<ListedRecord>, InvalidQueueName | InvalidOption | ObjectStoreError | ReadError>
  }
  /**
   * Every queue that has jobs or counters (or is paused), by name, with its counters and whether
   * it is paused.
   */
  readonly queues: () => Effect.Effect<ReadonlyArray<QueueInfo>, ReadError>
  /**
   * The dead jobs of a queue by id, after the id `after` (the last of the previous page), at most
   * `limit`; as `list(queue, "Dead")` returns them.
   */
  readonly deadJobs: (
    queue: string,
    options?: DeadJobsOptions
  ) => Effect.Effect<ReadonlyArray<ListedRecord>, InvalidQueueName | InvalidOption | ObjectStoreError | ReadError>
  /**
   * Makes a dead job pending again, once durable: its attempts reset to 0, its history kept with a
   * `Requeued` entry, its `lastError` kept, its retention ended. An unknown id is `JobNotFound`, a
   * job that is not dead `InvalidState`; nothing changes then. The job is alive again: an
   * `awaitCompletion` called after the requeue waits for its new end (one that already answered
   * with the dead record stays answered).
   *
   * With a queue name and `{ all: true }`, requeues every dead job of the queue, in pages of up to
   * 500 jobs, each one durable commit (a failure midway leaves the pages before it requeued), and
   * returns how many.
   */
  readonly requeueDead: {
    (id: string): Effect.Effect<void, QueueError | InvalidJobId | JobNotFound | InvalidState | ReadError>
    (queue: string, options: { readonly all: true }): Effect.Effect<number, QueueError | InvalidQueueName | InvalidOption>
  }
  /**
   * Deletes every dead job of a queue, in durable commits of up to 500 jobs, their payload objects
   * deleted after each commit; returns how many.
   */
  readonly purgeDead: (queue: string) => Effect.Effect<number, QueueError | InvalidQueueName>
  /**
   * Makes a scheduled job (delayed, or waiting out its backoff) pending now, once durable, and
   * wakes the claims waiting on its queue: `Woken`; `NotScheduled` for a job in another state,
   * `NotFound` for none. An id that is not one (1 to 128 of `[A-Za-z0-9_-]`) is `InvalidJobId`.
   */
  readonly wake: (id: string) => Effect.Effect<WakeOutcome, QueueError | InvalidJobId>
  /**
   * Pauses a queue's claims, durably (it stays paused after a reopen): claims return nothing (one
   * with `wait` waits, until `resume` or its wait ends), so Workers idle without spinning.
   * Enqueues still succeed. Idempotent.
   */
  readonly pause: (queue: string) => Effect.Effect<void, QueueError | InvalidQueueName>
  /** Resumes a paused queue's claims, durably, and wakes the claims waiting on it. Idempotent. */
  readonly resume: (queue: string) => Effect.Effect<void, QueueError | InvalidQueueName>
  /**
   * Stores a cron schedule: from now on, the queue's scheduler enqueues one job of `definition`
   * with `options.payload` at every slot of `options.cron` in `options.timezone`, the first slot
   * being the first one after this call. The schedule is kept in the store, so whichever process
   * runs the queue next carries it on. Each slot is enqueued exactly once, across restarts and
   * writer takeovers: its job and the schedule's progress are one durable commit, and its job id
   * is derived from the key and the slot (base64url of the key, `-`, the slot's epoch ms); a slot
   * whose job id exists already is not enqueued again. Slots that fell due while no process ran
   * are handled by `options.missed`.
   *
   * Scheduling an existing key replaces that schedule (its definition, payload, expression and
   * policy) and keeps its progress: slots up to now are treated as handled and its last
   * enqueued slot is kept, so no slot fires twice; the new expression's first slot is the first
   * one after now.
   *
   * A bad definition or option fails with `InvalidOption` (`InvalidQueueName`), a payload that
   * does not encode with `InvalidPayload`, one over 64 KiB encoded with `PayloadTooLarge` (a
   * schedule's payload is stored with it, never as an object of its own); nothing is stored then.
   * Returns the schedule as stored.
   */
  readonly schedule: <A, I>(
    definition: Job.Definition<A, I>,
    options: ScheduleOptions<A>
  ) => Effect.Effect<ScheduleInfo, QueueError | InvalidQueueName | InvalidOption | InvalidPayload | PayloadTooLarge>
  /**
   * Removes the schedule with this key: `"Removed"`, or `"NotFound"` when there is none. Jobs it
   * enqueued already stay. A key that is not a string of 1 to 64 UTF-8 bytes is `InvalidOption`.
   */
  readonly unschedule: (key: string) => Effect.Effect<UnscheduleOutcome, QueueError | InvalidOption>
  /** Every stored schedule, by key (a stored schedule that does not decode is logged and left out). */
  readonly schedules: () => Effect.Effect<ReadonlyArray<ScheduleInfo>, ReadError>
}

/**
 * Options of `awaitCompletion`.
 *
 * @category models
 * @since 0.2.0
 */
export interface AwaitOptions {
  /** How long to wait (`Infinity`, or left out: until the job ends). */
  readonly timeout?: Duration.Input | undefined
}

/**
 * Errors of reading a job with its definition: the definition or the id refused, or the payload
 * or result not decoding with it.
 *
 * @category errors
 * @since 0.2.0
 */
export type DecodeError = InvalidOption | InvalidQueueName | InvalidPayload

/**
 * A job read with its definition: the payload and the result decoded.
 *
 * @category models
 * @since 0.2.0
 */
export interface DecodedJob<A, R> extends Omit<JobRecord, "payload" | "result"> {
  readonly payload: A
  /** The result, when the job is done with one. */
  readonly result: Option.Option<R>
}

/**
 * `awaitCompletion` with a definition: `Completed` also carries the job's result, decoded (none
 * when it ended without one: dead, cancelled, or acknowledged without a result).
 *
 * @category models
 * @since 0.2.0
 */
export type ResultOutcome<R> =
  | { readonly _tag: "Completed"; readonly job: Option.Option<JobRecord>; readonly result: Option.Option<R> }
  | { readonly _tag: "TimedOut" }
  | { readonly _tag: "NotFound" }

/**
 * The job queue service.
 *
 * @category services
 * @since 0.1.0
 */
export class JobQueue extends Context.Service<JobQueue, Service>()("bucketq/JobQueue") {}

/**
 * Builds the queue over the KV in context; forks the reaper and the scheduler in the scope. The
 * parts under `src/queue/` share one context (the KV, the store, the id generator) and one
 * bookkeeping of leases and waiters, both built here.
 */
export const make = (options?: Options): Effect.Effect<Service, QueueError | InvalidOption, Kv.Kv | ObjectStore | Scope.Scope> =>
  Effect.gen(function*() {
    yield* checkOneEffect
    yield* checked(QueueOptions.queueOptionsError(options))
    const ctx = yield* QueueContext.make(options)
    const book = Leases.make(ctx.nextId)
    const payloads = Payloads.make(ctx)
    const enqueuing = Enqueue.make(ctx, book, payloads)
    const effects = Effects.make(enqueuing, payloads, book, ctx.events)
    const settlements = Settle.make(ctx, book, payloads, effects)
    const { isPaused, pause, queues, resume, wake } = yield* Control.make(ctx, book)
    const schedules = Schedules.make(ctx, book)
    const core: Core.Core = {
      enqueue: enqueuing.enqueueEncoded,
      enqueueBatch: enqueuing.enqueueBatchEncoded,
      claim: Claiming.make(ctx, book, payloads, isPaused).claim,
      ack: settlements.ack,
      nack: settlements.nack,
      deadLetter: settlements.deadLetter,
      release: settlements.release,
      discard: settlements.discard,
      extendLease: settlements.extendLease,
      schedule: schedules.scheduleEncoded
    }
    const { deadJobs, listEncoded } = Listing.make(ctx, payloads)
    const reads = Reads.make(ctx, book, payloads)
    const codec = Codec.make(core, payloads, { ...reads, listEncoded }, ctx.random)
    const { purgeDead, requeueDead } = Dead.make(ctx, book, payloads)
    yield* Maintenance.start(ctx, book, payloads, schedules, options)
    const heartbeat = options?.writerRecord === false ? undefined : yield* WriterRecord.start(yield* Kv.Kv, ctx.store, {
      takeoverAfter: takeoverAfterOf(options),
      address: Option.fromUndefinedOr(options?.address)
    })
    const service: Service = yield* Instrument.instrumented({
      ...codec,
      history: reads.history,
      kv: UserKv.make(ctx),
      events: ctx.events.stream,
      stats: reads.stats,
      cancel: settlements.cancel,
      queues,
      deadJobs,
      requeueDead,
      purgeDead,
      wake,
      pause,
      resume,
      unschedule: schedules.unschedule,
      schedules: schedules.schedules
    })
    return Core.attach(service, {
      core,
      held: (id, token) => {
        const lease = book.leases.get(id)
        return lease !== undefined && lease.token === token ? { record: lease.record, token } : undefined
      },
      publish: (address) => (heartbeat === undefined ? Effect.void : heartbeat.publish(address))
    })
  })

/**
 * The reads of a queue by name and id, payloads as stored (encoded): what an operator's tool
 * (the `bucketq` CLI) needs. A `Service` is one (the queue of this process, or a `QueueClient`'s),
 * and `makeReadOnly` builds one over a read-only KV.
 *
 * @category models
 * @since 0.3.0
 */
export interface Reader {
  readonly queues: Service["queues"]
  readonly stats: Service["stats"]
  /** As `Service.get` by id. */
  readonly get: (id: string) => Effect.Effect<Option.Option<JobRecord>, PayloadStoreError | ReadError>
  /** As `Service.list` with a queue name. */
  readonly list: (
    queue: string,
    state: JobStatus,
    options?: ListOptions
  ) => Effect.Effect<JobPage<ListedRecord>, InvalidQueueName | InvalidOption | ObjectStoreError | ReadError>
  readonly history: Service["history"]
  readonly deadJobs: Service["deadJobs"]
  readonly schedules: Service["schedules"]
}

/**
 * The reads of the queue over the KV in context, with none of the writer's work: no requeue of
 * claimed jobs, no reaper, scheduler or sweeps, no writer record. Over `Kv.makeReadOnly` it reads
 * a snapshot of the store and writes nothing; the reads are the queue's own (`src/queue/reads.ts`,
 * `listing.ts`, `control.ts`), so they answer exactly as the writer's would over the same state.
 *
 * @category constructors
 * @since 0.3.0
 */
export const makeReadOnly: Effect.Effect<Reader, Kv.ReadError, Kv.Kv | ObjectStore | Scope.Scope> = Effect.gen(function*() {
  const ctx = yield* QueueContext.make(undefined)
  const book = Leases.make(ctx.nextId)
  const payloads = Payloads.make(ctx)
  const { queues } = yield* Control.make(ctx, book)
  const { deadJobs, listEncoded } = Listing.make(ctx, payloads)
  const { getRecord, history, stats } = Reads.make(ctx, book, payloads)
  return { queues, stats, get: getRecord, list: listEncoded, history, deadJobs, schedules: Schedules.make(ctx, book).schedules }
})

/**
 * The reads of the queue of the `ObjectStore` in context, opened read-only: a snapshot of the
 * store (`Kv.makeReadOnly`: nothing written, no writer fenced) read by `makeReadOnly`.
 *
 * @category constructors
 * @since 0.3.0
 */
export const openReadOnly: Effect.Effect<Reader, Kv.ReadOnlyOpenError, ObjectStore | Scope.Scope> = Effect.flatMap(
  Kv.makeReadOnly,
  (kv) => Effect.provideService(makeReadOnly, Kv.Kv, kv)
)

/**
 * The job queue over the `Kv` in context. It must be the service `Kv.layer` (or `Kv.make`,
 * `Kv.layerReadOnly`) built: the queue commits through that KV's engine, which a copy or a
 * wrapper of the service does not carry (building the queue over one dies, saying so).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<JobQueue, QueueError | InvalidOption, Kv.Kv | ObjectStore> =>
  Layer.effect(JobQueue, make(options))

const takeoverAfterOf = (options: Options | undefined): Duration.Duration =>
  options?.takeoverAfter === undefined ? WriterRecord.defaultTakeoverAfter : Duration.fromInputUnsafe(options.takeoverAfter)

/**
 * A standby writer: the job queue (and its KV) over the `ObjectStore` in context, opened only once
 * the current writer is gone. Building the layer waits, reading the writer record every
 * `takeoverAfter / 3`, until the record has not changed for `takeoverAfter` on this process's own
 * clock (or there is none); then it opens the KV, which fences the old writer, opens the queue,
 * writes its own writer record, and provides both like `layer` over `Kv.layer`.
 *
 * **Details**
 *
 * Two standbys racing for one store: both may open, and the later epoch fences the earlier. A
 * standby that finds out while it is opening (its open loses the race, or the writer record names
 * a newer epoch) closes what it opened, logs it, and goes back to waiting: it is the standby of
 * the winner. One that finds out later is a fenced writer like any other: within
 * `kv.fenceCheckInterval` (default `takeoverAfter / 3`) every operation of its queue fails with
 * `Fenced`, its background work stops, and the queue logs an error. Options are checked before
 * the store is read (`InvalidOption`).
 *
 * @category layers
 * @since 0.2.0
 */
export const layerStandby = (
  options?: StandbyOptions
): Layer.Layer<JobQueue | Kv.Kv, QueueError | InvalidOption | Kv.OpenError, ObjectStore> =>
  Layer.effectContext(Effect.gen(function*() {
    yield* checked(QueueOptions.standbyOptionsError(options))
    const store = yield* ObjectStore
    const takeoverAfter = takeoverAfterOf(options)
    const parent = yield* Effect.scope
    const { kv: kvOptions, ...queueOptions } = options ?? {}
    while (true) {
      yield* WriterRecord.awaitTakeover(store, takeoverAfter)
      const scope = yield* Scope.fork(parent)
      const opened = yield* Effect.exit(Effect.gen(function*() {
        const kv = yield* Kv.make({ fenceCheckInterval: WriterRecord.intervalOf(takeoverAfter), ...kvOptions })
        const queue = yield* make({ ...queueOptions, writerRecord: true }).pipe(Effect.provideService(Kv.Kv, kv))
        return Context.make(JobQueue, queue).pipe(Context.add(Kv.Kv, kv))
      }).pipe(Scope.provide(scope)))
      if (Exit.isSuccess(opened)) return opened.value
      yield* Scope.close(scope, opened)
      const fenced = Cause.findErrorOption(opened.cause).pipe(Option.filter((e) => e._tag === "Fenced"))
      if (Option.isNone(fenced)) return yield* Effect.failCause(opened.cause)
      yield* Effect.logWarning(`standby lost the takeover to another writer, waiting again: ${fenced.value.message}`)
    }
  }))
