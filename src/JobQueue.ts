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
 * The queue lives as long as its KV writer: once that stops for good (`Fenced`, when another
 * process opened the same store, or `Closed`), every operation fails with why, claim and
 * completion waits end with it at once, and the reaper and scheduler stop, so that nothing
 * touches the store any more.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Fiber, Layer, Option, Random, Schedule, type Scope, Semaphore } from "effect"
import { monotonicFactory } from "ulid"
import * as JobRecordSchema from "../schema/JobRecord.ts"
import * as PayloadObject from "../schema/PayloadObject.ts"
import type { JobRecord, JobStatus } from "../schema/JobRecord.ts"
import { fromLatin1 } from "./internal/binary.ts"
import * as Latin1Kv from "./internal/latin1Kv.ts"
import * as Msgpack from "./internal/msgpack.ts"
import * as Job from "./Job.ts"
import {
  CancelRequested,
  ClaimLost,
  DuplicateJobId,
  type InvalidJobId,
  InvalidPayload,
  type InvalidQueueName,
  PayloadMissing,
  PayloadTooLarge
} from "./JobQueueError.ts"
import * as Kv from "./Kv.ts"
import type { Transaction } from "./Kv.ts"
import { type Closed, Corrupt, type Fenced, type TransactionConflict, type ValueTooLarge } from "./KvError.ts"
import { ObjectStore } from "./ObjectStore.ts"
import type { ObjectStoreError } from "./ObjectStoreError.ts"
import type { InvalidOption } from "./InvalidOption.ts"
import * as Keys from "./queue/keys.ts"
import * as QueueOptions from "./queue/options.ts"
import { checked } from "./queue/options.ts"
import { defaultMaxPayload, defaultOffloadThreshold, payloadDecoder, payloadEncoder, payloadPrefix, unframePayload } from "./queue/payloads.ts"
import {
  bytes,
  counterOf,
  deadRecord,
  decodeOrSkip,
  encodeRecord,
  move,
  moveOps,
  moveUpdates,
  pushStageWrites,
  read,
  retries,
  stage,
  without
} from "./queue/records.ts"

/**
 * The stored job record and its statuses (see `schema/JobRecord.ts`).
 *
 * @category models
 * @since 0.1.0
 */
export type { JobRecord, JobStatus }

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
 * Errors of writing operations.
 *
 * @category errors
 * @since 0.1.0
 */
export type QueueError = Fenced | Closed | TransactionConflict | ValueTooLarge

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
   * Claims up to `max` jobs, priority first (lower number), then in enqueue order. A job whose
   * payload does not decode, or whose payload object is gone or fails its checks (`Corrupt`), is
   * dead-lettered with that reason in one durable commit, never returned. If an
   * offloaded payload cannot be read (`ObjectStoreError`), the claims of the call stay taken until
   * their leases expire. Bad options (see `ClaimOptions`) fail with `InvalidOption`, claiming nothing.
   */
  readonly claim: <A, I>(
    definition: Job.Definition<A, I>,
    options?: ClaimOptions
  ) => Effect.Effect<ReadonlyArray<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError>
  readonly ack: (claim: Claim<any>) => Effect.Effect<void, QueueError | ClaimLost>
  /**
   * Retries with the definition's backoff (or `delay`), or dead-letters when the attempts are used
   * up. `error` must be a string and `delay` a finite, non-negative duration; a custom backoff's
   * delay is checked the same way. Otherwise `InvalidOption`, and the claim is left as it was.
   */
  readonly nack: (
    claim: Claim<any>,
    error: string,
    options?: NackOptions
  ) => Effect.Effect<NackOutcome, QueueError | ClaimLost | InvalidOption>
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
  readonly deadLetter: (claim: Claim<any>, reason: string) => Effect.Effect<void, QueueError | ClaimLost | InvalidOption>
  /**
   * The lease now ends `duration` from now (finite, non-negative, else `InvalidOption`); refused
   * once the job was asked to cancel.
   */
  readonly extendLease: (
    claim: Claim<any>,
    duration: Duration.Input
  ) => Effect.Effect<void, ClaimLost | CancelRequested | InvalidOption | Kv.StopError>
  /**
   * The job's record, its payload read back from its object when offloaded: an object that is gone
   * is `PayloadMissing`, one that fails its checks `Corrupt`.
   */
  readonly get: (id: string) => Effect.Effect<Option.Option<JobRecord>, PayloadStoreError | Kv.StopError>
  /** The counters of a queue (all zero for a queue never used); a bad name is `InvalidQueueName`. */
  readonly stats: (queue: string) => Effect.Effect<QueueStats, InvalidQueueName | Kv.StopError>
  readonly cancel: (id: string) => Effect.Effect<CancelOutcome, QueueError>
  /**
   * Waits for the job to end; the record returned is as stored (an offloaded payload is not read).
   * `timeout` is a non-negative duration, `Infinity` (or left out) for none; else `InvalidOption`.
   * If the queue's writer stops meanwhile (`Fenced`: another process took the store over), the
   * wait fails with why at once: this process can no longer see the job end (it may still, under
   * the writer that took over).
   */
  readonly awaitCompletion: (
    id: string,
    options?: { readonly timeout?: Duration.Input | undefined }
  ) => Effect.Effect<CompletionOutcome, InvalidOption | Kv.StopError>
}

/**
 * The job queue service.
 *
 * @category services
 * @since 0.1.0
 */
export class JobQueue extends Context.Service<JobQueue, Service>()("bucketq/JobQueue") {}

interface Lease {
  readonly token: string
  expiresAt: number
  readonly queue: string
  /** Taken by the reaper: no more renewals. */
  reaping: boolean
  /** Fired by `cancel`. */
  readonly cancel: Deferred.Deferred<void>
}

/** Builds the queue over the KV in context; forks the reaper and the scheduler in the scope. */
export const make = (options?: Options): Effect.Effect<Service, QueueError | InvalidOption, Kv.Kv | ObjectStore | Scope.Scope> =>
  Effect.gen(function*() {
    yield* checked(QueueOptions.queueOptionsError(options))
    const kvService = yield* Kv.Kv
    const kv = Latin1Kv.withOwnOptions(kvService)
    const store = yield* ObjectStore
    const offloadThreshold = options?.offloadThreshold ?? defaultOffloadThreshold
    const maxPayload = Math.max(offloadThreshold, options?.maxPayloadBytes ?? defaultMaxPayload)
    const fast = Latin1Kv.latin1Of(kvService)
    const random = yield* Random.Random
    const newUlid = monotonicFactory(() => random.nextDoubleUnsafe())
    // Job ids and claim tokens come from one monotonic generator: never reused, even within a millisecond.
    const nextId = (now: number) => newUlid(Math.floor(now))
    const leases = new Map<string, Lease>()
    const claimLocks = new Map<string, Semaphore.Semaphore>()
    const arrivals = new Map<string, Deferred.Deferred<void>>()
    const completions = new Map<string, Array<Deferred.Deferred<Option.Option<JobRecord>>>>()

    const lockOf = (queue: string) => {
      let lock = claimLocks.get(queue)
      if (lock === undefined) {
        lock = Semaphore.makeUnsafe(1)
        claimLocks.set(queue, lock)
      }
      return lock
    }

    /** Wakes every claim waiting on `queue`. */
    const announce = (queue: string) => {
      const waiting = arrivals.get(queue)
      if (waiting === undefined) return
      arrivals.delete(queue)
      Deferred.doneUnsafe(waiting, Effect.void)
    }
    const arrival = (queue: string) => {
      let waiting = arrivals.get(queue)
      if (waiting === undefined) {
        waiting = Deferred.makeUnsafe<void>()
        arrivals.set(queue, waiting)
      }
      return waiting
    }

    /** Wakes everyone awaiting the completion of `id`. */
    const complete = (id: string, record: Option.Option<JobRecord>) => {
      const waiting = completions.get(id)
      if (waiting === undefined) return
      completions.delete(id)
      for (const d of waiting) Deferred.doneUnsafe(d, Effect.succeed(record))
    }

    /**
     * Fails with why the KV's writer stopped (`Fenced` or `Closed`), if it did. Commits fail so on
     * their own; this guards what would otherwise read stale state or touch the store first.
     */
    const live: Effect.Effect<void, Kv.StopError> = Effect.flatMap(kv.failure, (failure) =>
      Option.isSome(failure) ? Effect.fail(failure.value) : Effect.void)

    const encodePayload = <A, I>(definition: Job.Definition<A, I>, payload: A) =>
      payloadEncoder(definition.payload)(payload).pipe(
        Effect.mapError((error) => new InvalidPayload({ detail: error.message })),
        Effect.flatMap((encoded) => {
          const b = Msgpack.encode(encoded)
          return b.length <= maxPayload
            ? Effect.succeed(b)
            : Effect.fail(new PayloadTooLarge({ size: b.length, limit: maxPayload }))
        })
      )

    // ---- payloads over the threshold: objects of their own ------------------------------------

    /**
     * The record to commit: as it is, or, with a payload over the threshold, pointing to a new
     * object that holds the payload (written first: a missing payload is never possible, an
     * orphan object is).
     */
    const offload = (record: JobRecord, now: number): Effect.Effect<JobRecord, ObjectStoreError | Kv.StopError> => {
      if (record.payload.length <= offloadThreshold) return Effect.succeed(record)
      const key = `${payloadPrefix}${nextId(now)}`
      return Effect.andThen(live, store.put(key, PayloadObject.encode(record.payload), { ifNoneMatch: "*" })).pipe(
        Effect.catchTags({ InvalidKey: Effect.die, InvalidMetadata: Effect.die }),
        Effect.as({ ...record, payload: new Uint8Array(0), payloadRef: key })
      )
    }

    const mayHaveCommitted = (error: unknown) =>
      typeof error === "object" && error !== null && "_tag" in error && (error._tag === "Fenced" || error._tag === "Closed")

    /** Deletes the payload objects of records no longer stored; a failure leaves an orphan, logged. */
    const dropPayloads = (records: ReadonlyArray<JobRecord>) =>
      Effect.forEach(records, (record) =>
        record.payloadRef === undefined ? Effect.void : store.delete(record.payloadRef).pipe(
          Effect.catchCause((cause) => Effect.logWarning(`payload object ${record.payloadRef} of job ${record.id} was not deleted`, cause))
        ), { discard: true, concurrency: 8 })

    /**
     * Runs `commit` for records offloaded first; their objects are deleted if it failed without
     * committing (a conflict, a duplicate id, a value too large). Interrupted, or failing with
     * `Fenced` or `Closed`, the commit may stand (applied, its WAL write on its way or landed):
     * the objects stay, since deleting them could leave a stored job without its payload.
     */
    const committing = <A, E>(records: ReadonlyArray<JobRecord>, commit: Effect.Effect<A, E>) =>
      Effect.tapError(commit, (error) => mayHaveCommitted(error) ? Effect.void : dropPayloads(records))

    /** The encoded payload of `record`, read from its object (and checked) when offloaded. */
    const payloadOf = (record: JobRecord): Effect.Effect<Uint8Array, PayloadStoreError> =>
      record.payloadRef === undefined ? Effect.succeed(record.payload) : store.get(record.payloadRef).pipe(
        Effect.flatMap((object) => unframePayload(object.key, object.bytes)),
        Effect.catchReason("ObjectStoreError", "NotFound", () => Effect.fail(new PayloadMissing({ id: record.id, key: record.payloadRef! }))),
        Effect.catchTags({ InvalidKey: Effect.die, InvalidRange: Effect.die })
      )

    const newRecord = (
      definition: Job.Definition<any, any>,
      id: string,
      payload: Uint8Array,
      now: number,
      options: EnqueueOptions | undefined
    ): JobRecord => {
      const runAt = options?.runAt !== undefined
        ? (typeof options.runAt === "number" ? options.runAt : options.runAt.getTime())
        : options?.delay !== undefined
        ? now + Duration.toMillis(Duration.fromInputUnsafe(options.delay))
        : undefined
      const scheduledLater = runAt !== undefined && runAt > now
      return {
        id,
        queue: definition.queue,
        payload,
        headers: { ...options?.headers },
        status: scheduledLater ? "Scheduled" : "Pending",
        attempts: 0,
        maxAttempts: options?.maxAttempts ?? definition.maxAttempts,
        priority: options?.priority === undefined ? definition.priority : Job.priorityValue(options.priority),
        enqueuedAt: now,
        deadRetentionMs: Duration.toMillis(definition.deadRetention),
        ...(scheduledLater ? { runAt } : {}),
        ...(options?.dedupKey === undefined ? {} : { dedupKey: options.dedupKey })
      }
    }

    // The hot paths (enqueue, claim, ack) are plain functions over a few combinators rather than
    // generators: each step through the runtime costs, and most of their work is synchronous.
    const enqueue: Service["enqueue"] = (definition, payload, options) =>
      Effect.suspend((): ReturnType<Service["enqueue"]> => {
        const invalid = QueueOptions.enqueueError(definition, options)
        if (invalid !== undefined) return Effect.fail(invalid)
        return Effect.flatMap(encodePayload(definition, payload), (encoded) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.flatMap(offload(newRecord(definition, options?.id ?? nextId(now), encoded, now, options), now), (record) => {
              if (record.dedupKey !== undefined || options?.id !== undefined) return enqueueChecked(record, options)
              // nothing to read first (a fresh ULID cannot exist yet): one plain commit
              const commit = fast.write(pushStageWrites([], record), moveUpdates(record.queue, undefined, record.status))
              return Effect.map(committing([record], commit), () => {
                if (record.status === "Pending") announce(record.queue)
                return { id: record.id, created: true }
              })
            })))
      })

    /** Enqueues `record` in a transaction: its dedup key or its caller-chosen id checked first. */
    const enqueueChecked = (record: JobRecord, options: EnqueueOptions | undefined) =>
      Effect.gen(function*() {
        const id = record.id
        const result = yield* committing([record], kv.transaction((tx) =>
          Effect.gen(function*() {
            if (record.dedupKey !== undefined) {
              const existing = yield* tx.get(bytes(Keys.dedup(record.queue, record.dedupKey)))
              if (Option.isSome(existing)) return { id: Keys.fromBytes(existing.value), created: false }
            }
            if (options?.id !== undefined && Option.isSome(yield* tx.get(bytes(Keys.index(id))))) {
              return yield* new DuplicateJobId({ id })
            }
            yield* stage(tx, record)
            yield* move(tx, record.queue, undefined, record.status)
            if (record.dedupKey !== undefined) yield* tx.put(bytes(Keys.dedup(record.queue, record.dedupKey)), bytes(id))
            return { id, created: true }
          }), retries))
        if (!result.created) yield* dropPayloads([record]) // the existing job keeps its own
        if (result.created && record.status === "Pending") announce(record.queue)
        return result
      })

    const enqueueBatch: Service["enqueueBatch"] = (definition, payloads) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.enqueueBatchError(definition, payloads))
        if (payloads.length === 0) return []
        const encoded = yield* Effect.forEach(payloads, (p) => encodePayload(definition, p))
        const now = yield* Clock.currentTimeMillis
        const records: Array<JobRecord> = []
        const offloaded: Array<JobRecord> = []
        yield* Effect.forEach(encoded, (payload) =>
          Effect.map(offload(newRecord(definition, nextId(now), payload, now, undefined), now), (record) => {
            records.push(record)
            if (record.payloadRef !== undefined) offloaded.push(record)
          })).pipe(Effect.onError(() => dropPayloads(offloaded)))
        // fresh ids: nothing to read, so one plain commit
        const writes: Array<Latin1Kv.Op> = []
        for (const record of records) pushStageWrites(writes, record)
        yield* committing(offloaded, fast.write(writes, moveUpdates(definition.queue, undefined, "Pending", records.length)))
        announce(definition.queue)
        return records.map((r) => r.id)
      })

    /** Moves a claimed job back to pending (or to dead) after its lease or its process ended. */
    const requeueOrBury = (tx: Transaction, record: JobRecord, now: number, reason: string) =>
      Effect.gen(function*() {
        yield* tx.delete(bytes(Keys.claimed(record.queue, record.id)))
        const next: JobRecord = record.attempts >= record.maxAttempts
          ? deadRecord(record, now, reason)
          : { ...without(record, "claimedAt"), status: "Pending" }
        yield* stage(tx, next)
        yield* move(tx, record.queue, "Claimed", next.status)
        return next
      })

    /**
     * Moves up to `max` pending jobs of `queue` to claimed, at `now`. Claims of one queue are
     * serialized by its lock, so the only writers that can race this one are cancels of the same
     * pending jobs: the commit checks that each is still there, and a lost race scans again.
     */
    const claimRecords = (queue: string, max: number, now: number, retried = 0): Effect.Effect<Array<JobRecord>, QueueError> => {
      const prefix = Keys.pendingPrefix(queue)
      return Effect.flatMap(fast.scan(prefix, Latin1Kv.afterPrefix(prefix), max), (entries) => {
        if (entries.length === 0) return Effect.succeed([])
        const writes: Array<Latin1Kv.Op> = []
        const expect: Array<readonly [string, boolean]> = []
        const out: Array<JobRecord> = []
        for (const [key, value] of entries) {
          const record = JobRecordSchema.decode(fromLatin1(value))
          const next: JobRecord = { ...without(record, "dedupKey"), status: "Claimed", attempts: record.attempts + 1, claimedAt: now }
          writes.push([key, null])
          pushStageWrites(writes, next)
          if (record.dedupKey !== undefined) writes.push([Keys.dedup(record.queue, record.dedupKey), null])
          expect.push([key, true])
          out.push(next)
        }
        return fast.writeIf(writes, moveUpdates(queue, "Pending", "Claimed", out.length), expect, { durable: false }).pipe(
          Effect.as(out),
          Effect.catchTag("WriteConditionFailed", () =>
            retried < 1000 ? claimRecords(queue, max, now, retried + 1) : Effect.succeed([]))
        )
      })
    }

    /** Takes the lease of a claimed record and decodes its payload (undefined: dead-lettered instead). */
    /**
     * Holds the lease of a record just claimed, before anything that can fail (reading its
     * payload): a claim call that fails then leaves it to the reaper, never claimed for good.
     */
    const holdLease = (record: JobRecord, now: number, expiresAt: number) => {
      const token = nextId(now)
      const cancel = Deferred.makeUnsafe<void>()
      if (record.cancelRequested === true) Deferred.doneUnsafe(cancel, Effect.void)
      leases.set(record.id, { token, expiresAt, queue: record.queue, reaping: false, cancel })
      return { record, token, cancelled: Deferred.await(cancel) }
    }

    const startClaim = <A, I>(
      definition: Job.Definition<A, I>,
      { cancelled, record, token }: ReturnType<typeof holdLease>
    ): Effect.Effect<Claim<A> | undefined, ObjectStoreError> => {
      const decode = Effect.flatMap(payloadOf(record), (bytes) =>
        Effect.flatMap(Effect.try(() => Msgpack.decode(bytes)), payloadDecoder(definition.payload)))
      return Effect.flatMap(Effect.exit(decode), (decoded): Effect.Effect<Claim<A> | undefined, ObjectStoreError> => {
        if (decoded._tag === "Success") {
          return Effect.succeed({ job: { ...record, payload: decoded.value }, record, token, definition, cancelled })
        }
        const failure = decoded.cause.reasons.find(Cause.isFailReason)?.error
        if (failure?._tag === "ObjectStoreError") return Effect.fail(failure)
        // A payload that no longer decodes (or whose object is gone, or damaged) goes to the
        // dead-letter queue, never to the caller.
        const claim: Claim<A> = { job: { ...record, payload: undefined as A }, record, token, definition, cancelled }
        const reason = failure?._tag === "PayloadMissing"
          ? `payload object ${failure.key} is missing`
          : failure?._tag === "Corrupt"
          ? `payload object ${failure.key} is corrupt: ${failure.detail}`
          : `payload does not decode: ${String(decoded.cause)}`
        return Effect.as(Effect.ignore(deadLetter(claim, reason)), undefined)
      })
    }

    /**
     * Claims up to `max` jobs. Jobs whose payload does not decode are dead-lettered on the way;
     * if that leaves nothing while jobs were there, it looks again, so a bad job never makes a
     * caller wait for an arrival while good ones are pending.
     */
    const claimOnce = <A, I>(
      definition: Job.Definition<A, I>,
      max: number,
      lease: Duration.Duration
    ): Effect.Effect<Array<Claim<A>>, QueueError | ObjectStoreError> =>
      Effect.flatMap(
        lockOf(definition.queue).withPermits(1)(Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.flatMap(claimRecords(definition.queue, max, now), (claimed) => {
            const expiresAt = now + Duration.toMillis(lease)
            const held = claimed.map((record) => holdLease(record, now, expiresAt))
            const started = held.length === 1
              ? Effect.map(startClaim(definition, held[0]!), (c) => (c === undefined ? [] : [c]))
              : Effect.map(
                Effect.forEach(held, (h) => startClaim(definition, h)),
                (claims) => claims.filter((c) => c !== undefined)
              )
            return Effect.map(started, (claims) => ({ claims, tookAny: claimed.length > 0 }))
          }))),
        ({ claims, tookAny }) => (claims.length === 0 && tookAny ? claimOnce(definition, max, lease) : Effect.succeed(claims))
      )

    const claim = <A, I>(
      definition: Job.Definition<A, I>,
      claimOptions?: ClaimOptions
    ): Effect.Effect<ReadonlyArray<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError> =>
      Effect.suspend((): Effect.Effect<ReadonlyArray<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError> => {
        const invalid = QueueOptions.claimError(definition, claimOptions)
        if (invalid !== undefined) return Effect.fail(invalid)
        const max = Math.max(0, Math.floor(claimOptions?.max ?? 1))
        if (max === 0) return Effect.succeed([])
        const lease = claimOptions?.lease === undefined ? definition.leaseDuration : Duration.fromInputUnsafe(claimOptions.lease)
        const wait = claimOptions?.wait === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(claimOptions.wait))
        return Effect.andThen(
          live,
          wait <= 0 ? claimOnce(definition, max, lease) : claimWaiting(definition, max, lease, wait, claimOptions?.until)
        )
      })

    /**
     * `claimOnce`, then waiting up to `wait` ms for an enqueue while nothing is pending; the wait
     * fails at once if the writer stops meanwhile.
     */
    const claimWaiting = <A, I>(
      definition: Job.Definition<A, I>,
      max: number,
      lease: Duration.Duration,
      wait: number,
      until: Effect.Effect<void> | undefined
    ) =>
      Effect.gen(function*() {
        const deadline = (yield* Clock.currentTimeMillis) + wait
        while (true) {
          const arrived = arrival(definition.queue) // before the scan, so no enqueue is missed
          const claims = yield* claimOnce(definition, max, lease)
          if (claims.length > 0) return claims
          const left = deadline - (yield* Clock.currentTimeMillis)
          if (left <= 0) return claims
          const stop = until === undefined ? Effect.never : Effect.as(until, "stop" as const)
          const woken = yield* Effect.raceFirst(Effect.as(Deferred.await(arrived), "arrived" as const), stop).pipe(
            Effect.raceFirst(kv.stopped),
            Effect.timeoutOption(Duration.millis(left))
          )
          if (Option.isNone(woken) || woken.value === "stop") return claims
        }
      })

    /** Checks that `claim` still holds its lease: the token matches. */
    const holds = (claim: Claim<any>) =>
      Effect.suspend(() => {
        const lease = leases.get(claim.record.id)
        return lease !== undefined && lease.token === claim.token
          ? Effect.void
          : Effect.fail(new ClaimLost({ id: claim.record.id }))
      })

    /** Runs a settlement of `claim`: the claimed record must still be there, or `ClaimLost`. */
    const settle = <A>(
      claim: Claim<any>,
      f: (tx: Transaction, record: JobRecord, now: number) => Effect.Effect<A, ClaimLost | ValueTooLarge>
    ) =>
      Effect.gen(function*() {
        yield* holds(claim)
        const now = yield* Clock.currentTimeMillis
        const result = yield* kv.transaction((tx) =>
          Effect.gen(function*() {
            const record = yield* read(tx, Keys.claimed(claim.record.queue, claim.record.id))
            if (record === undefined) return yield* new ClaimLost({ id: claim.record.id })
            yield* tx.delete(bytes(Keys.claimed(record.queue, record.id)))
            return yield* f(tx, record, now)
          }), retries)
        const lease = leases.get(claim.record.id)
        if (lease !== undefined && lease.token === claim.token) leases.delete(claim.record.id)
        return result
      })

    /** Whether `claim` still holds its lease (synchronous, for commit-time guards). */
    const holdsNow = (claim: Claim<any>) => leases.get(claim.record.id)?.token === claim.token

    /**
     * The ack of a job not kept: a plain write guarded at commit by the claimed record and the
     * lease token, no transaction needed. A reaper or a cancel racing it conflicts with it, or it
     * finds the record gone.
     */
    const ackAndForget = (claim: Claim<any>) =>
      Effect.suspend(() => {
        const { id, queue } = claim.record
        const claimedKey = Keys.claimed(queue, id)
        return fast.writeIf([[claimedKey, null], [Keys.index(id), null]], moveUpdates(queue, "Claimed", "Done"), [[claimedKey, true]], {
          guard: () => holdsNow(claim)
        }).pipe(
          Effect.catchTag("WriteConditionFailed", () => Effect.fail(new ClaimLost({ id }))),
          Effect.map(() => {
            if (holdsNow(claim)) leases.delete(id)
            complete(id, Option.none())
          }),
          Effect.tap(() => (claim.record.payloadRef === undefined ? Effect.void : dropPayloads([claim.record])))
        )
      })

    const ack: Service["ack"] = (claim) => {
      const keepDone = claim.definition.keepDone
      return keepDone === undefined ? ackAndForget(claim) : ackKept(claim, keepDone)
    }

    /** The ack of a job kept as done for `keepDone`: a transaction moving its record. */
    const ackKept = (claim: Claim<any>, keepDone: Duration.Duration) =>
      Effect.gen(function*() {
        const done = yield* settle(claim, (tx, record, now) =>
          Effect.gen(function*() {
            yield* move(tx, record.queue, "Claimed", "Done")
            if (keepDone === undefined) {
              yield* tx.delete(bytes(Keys.index(record.id)))
              return Option.none<JobRecord>()
            }
            const next: JobRecord = {
              ...without(record, "claimedAt"),
              status: "Done",
              completedAt: now,
              expiresAt: now + Duration.toMillis(keepDone)
            }
            yield* stage(tx, next)
            return Option.some(next)
          }))
        complete(claim.record.id, done)
      })

    /** Stages the dead record of a claimed job and returns it (what completion waiters get). */
    const bury = (tx: Transaction, record: JobRecord, now: number, reason: string) => {
      const dead = deadRecord(record, now, reason)
      return stage(tx, dead).pipe(Effect.andThen(move(tx, record.queue, "Claimed", "Dead")), Effect.as(dead))
    }

    const nack: Service["nack"] = (claim, error, nackOptions) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.nackError(error, nackOptions))
        const jitter = random.nextDoubleUnsafe()
        const chosen = nackOptions?.delay === undefined ? undefined : Duration.fromInputUnsafe(nackOptions.delay)
        // the backoff's delay, checked before anything is written (the claim holds its attempts)
        const backoff = chosen !== undefined || claim.record.attempts >= claim.record.maxAttempts
          ? 0
          : QueueOptions.retryDelay(claim.definition.backoff, claim.record.attempts, (b, attempt) => Job.delayOf(b, attempt, jitter))
        if (typeof backoff !== "number") return yield* backoff
        const outcome = yield* settle(claim, (tx, record, now) =>
          Effect.gen(function*() {
            if (record.attempts >= record.maxAttempts) {
              return { outcome: "DeadLettered" as const, record: yield* bury(tx, record, now, error) }
            }
            const delay = chosen === undefined ? backoff : Duration.toMillis(chosen)
            const next: JobRecord = delay <= 0
              ? { ...without(record, "claimedAt", "runAt"), status: "Pending", lastError: error }
              : { ...without(record, "claimedAt"), status: "Scheduled", runAt: now + delay, lastError: error }
            yield* stage(tx, next)
            yield* move(tx, record.queue, "Claimed", next.status)
            return { outcome: "Retried" as const, record: next }
          }))
        if (outcome.outcome === "DeadLettered") {
          // the stored dead record (this attempt's error, failedAt, no claimedAt), not the claimed one
          complete(claim.record.id, Option.some(outcome.record))
        } else if (outcome.record.status === "Pending") announce(claim.record.queue)
        return outcome.outcome
      })

    const release: Service["release"] = (claim) =>
      Effect.gen(function*() {
        yield* settle(claim, (tx, record) =>
          Effect.gen(function*() {
            const next: JobRecord = { ...without(record, "claimedAt"), status: "Pending", attempts: Math.max(0, record.attempts - 1) }
            yield* stage(tx, next)
            yield* move(tx, record.queue, "Claimed", "Pending")
          }))
        announce(claim.record.queue)
      })

    const discard: Service["discard"] = (claim) =>
      Effect.gen(function*() {
        yield* settle(claim, (tx, record) =>
          Effect.andThen(tx.delete(bytes(Keys.index(record.id))), move(tx, record.queue, "Claimed", undefined)))
        complete(claim.record.id, Option.none())
        yield* dropPayloads([claim.record])
      })

    const deadLetter: Service["deadLetter"] = (claim, reason) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.reasonError("reason", reason))
        // waiters get the stored dead record (no claimedAt, its expiry, a cancel flag set meanwhile)
        const dead = yield* settle(claim, (tx, record, at) => bury(tx, record, at, reason))
        complete(claim.record.id, Option.some(dead))
      })

    const extendLease: Service["extendLease"] = (claim, duration) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.extendLeaseError(duration))
        yield* live
        const lease = leases.get(claim.record.id)
        if (lease === undefined || lease.token !== claim.token || lease.reaping) {
          return yield* new ClaimLost({ id: claim.record.id })
        }
        if (Deferred.isDoneUnsafe(lease.cancel)) return yield* new CancelRequested({ id: claim.record.id })
        lease.expiresAt = (yield* Clock.currentTimeMillis) + Duration.toMillis(Duration.fromInputUnsafe(duration))
      })

    /** The record as stored (an offloaded payload not read). */
    const getStored = (id: string) =>
      Effect.gen(function*() {
        const index = yield* kv.get(bytes(Keys.index(id)))
        if (Option.isNone(index)) return Option.none<JobRecord>()
        const value = yield* kv.get(index.value)
        return Option.map(value, JobRecordSchema.decode)
      })

    const get: Service["get"] = (id) =>
      Effect.flatMap(Effect.andThen(live, getStored(id)), (record) =>
        Option.isNone(record) || record.value.payloadRef === undefined
          ? Effect.succeed(record)
          : Effect.map(payloadOf(record.value), (payload) => Option.some({ ...record.value, payload })))

    const counter = (queue: string, status: JobStatus) => Effect.map(kv.get(bytes(Keys.stat(queue, status))), counterOf)

    const stats: Service["stats"] = (queue) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.queueNameError(queue))
        yield* live
        return {
          queue,
          pending: yield* counter(queue, "Pending"),
          scheduled: yield* counter(queue, "Scheduled"),
          claimed: yield* counter(queue, "Claimed"),
          done: yield* counter(queue, "Done"),
          dead: yield* counter(queue, "Dead")
        }
      })

    const cancel: Service["cancel"] = (id) =>
      Effect.gen(function*() {
        let removed: JobRecord | undefined
        const outcome = yield* kv.transaction((tx) =>
          Effect.gen(function*() {
            const index = yield* tx.get(bytes(Keys.index(id)))
            if (Option.isNone(index)) return "NotFound" as const
            const key = Keys.fromBytes(index.value)
            const record = yield* read(tx, key)
            if (record === undefined) return "NotFound" as const
            if (record.status === "Pending" || record.status === "Scheduled") {
              yield* tx.delete(bytes(key))
              yield* tx.delete(bytes(Keys.index(id)))
              yield* move(tx, record.queue, record.status, undefined)
              if (record.dedupKey !== undefined) yield* tx.delete(bytes(Keys.dedup(record.queue, record.dedupKey)))
              removed = record
              return "Removed" as const
            }
            if (record.status === "Claimed") {
              yield* tx.put(bytes(key), encodeRecord({ ...record, cancelRequested: true }))
              return "Requested" as const
            }
            return "NotFound" as const
          }), retries)
        if (outcome === "Removed") {
          complete(id, Option.none())
          if (removed !== undefined) yield* dropPayloads([removed])
        }
        if (outcome === "Requested") {
          const lease = leases.get(id)
          if (lease !== undefined) Deferred.doneUnsafe(lease.cancel, Effect.void)
        }
        return outcome
      })

    const awaitCompletion: Service["awaitCompletion"] = (id, waitOptions) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.awaitCompletionError(waitOptions))
        yield* live
        const waiter = Deferred.makeUnsafe<Option.Option<JobRecord>>()
        const list = completions.get(id) ?? []
        list.push(waiter)
        completions.set(id, list)
        const current = yield* getStored(id)
        const forget = Effect.sync(() => {
          const rest = (completions.get(id) ?? []).filter((d) => d !== waiter)
          if (rest.length === 0) completions.delete(id)
          else completions.set(id, rest)
        })
        // What was found is committed, not necessarily durable yet (an ack or a removal under way):
        // it is answered once durable, as a waiter is woken only once the end is durable.
        if (Option.isNone(current)) return yield* Effect.as(Effect.ensuring(kv.flush, forget), { _tag: "NotFound" as const })
        if (current.value.status === "Done" || current.value.status === "Dead") {
          return yield* Effect.as(Effect.ensuring(kv.flush, forget), { _tag: "Completed" as const, job: current })
        }
        const timeout = waitOptions?.timeout === undefined ? undefined : Duration.fromInputUnsafe(waitOptions.timeout)
        const completion = Effect.raceFirst(Deferred.await(waiter), kv.stopped)
        const result = yield* (timeout === undefined ? Effect.map(completion, Option.some) : Effect.timeoutOption(completion, timeout)).pipe(
          Effect.ensuring(forget)
        )
        return Option.isNone(result) ? { _tag: "TimedOut" as const } : { _tag: "Completed" as const, job: result.value }
      })

    // ---- background: reaper, scheduler, and the requeue at open --------------------------------

    const reapExpired = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const [id, lease] of [...leases.entries()]) {
        if (lease.expiresAt > now || lease.reaping) continue
        lease.reaping = true
        const exit = yield* Effect.exit(kv.transaction((tx) =>
          Effect.gen(function*() {
            const record = yield* read(tx, Keys.claimed(lease.queue, id))
            if (record === undefined) return undefined
            return yield* requeueOrBury(tx, record, now, "lease expired")
          }), { durable: false, ...retries }))
        if (exit._tag === "Failure") {
          // e.g. a record that does not decode: tried again next tick, without holding up the others
          lease.reaping = false
          yield* Effect.logWarning(`lease of ${id} could not be reaped`, exit.cause)
          continue
        }
        const next = exit.value
        if (leases.get(id) === lease) leases.delete(id)
        if (next?.status === "Pending") announce(next.queue)
        if (next?.status === "Dead") complete(id, Option.some(next))
      }
    })

    const promoteDue = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const due = yield* kv.scan({ start: bytes(Keys.scheduledPrefix), end: bytes(Keys.timeBound(Keys.scheduledPrefix, now)) })
      if (due.length === 0) return
      const promoted = yield* kv.transaction((tx) =>
        Effect.gen(function*() {
          const queues = new Set<string>()
          for (const entry of due) {
            const record = yield* decodeOrSkip(entry.key, entry.value)
            if (record === undefined) continue
            yield* tx.delete(entry.key)
            yield* stage(tx, { ...without(record, "runAt"), status: "Pending" })
            yield* move(tx, record.queue, "Scheduled", "Pending")
            queues.add(record.queue)
          }
          return queues
        }), { durable: false, ...retries })
      for (const queue of promoted) announce(queue)
    })

    /**
     * Deletes done and dead jobs past their retention, found by their expiry entries (so a sweep
     * reads only what is due, however many jobs are kept).
     */
    const sweepRetention = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const due = yield* kv.scan({ start: bytes(Keys.expiryPrefix), end: bytes(Keys.timeBound(Keys.expiryPrefix, now)) }, { limit: 10_000 })
      if (due.length === 0) return
      const ops: Array<Kv.WriteOp> = []
      const expired: Array<JobRecord> = []
      for (const entry of due) {
        ops.push({ _tag: "Delete", key: entry.key })
        const value = yield* kv.get(entry.value)
        const record = Option.isNone(value) ? undefined : yield* decodeOrSkip(entry.value, value.value)
        if (record === undefined || record.expiresAt === undefined || record.expiresAt > now) continue
        expired.push(record)
        ops.push(
          { _tag: "Delete", key: entry.value },
          { _tag: "Delete", key: bytes(Keys.index(record.id)) },
          ...moveOps(record.queue, record.status, undefined)
        )
      }
      // durable first when payload objects go next: a kept record never points to a deleted one
      yield* kv.write(ops, { durable: expired.some((record) => record.payloadRef !== undefined) })
      yield* dropPayloads(expired)
    })

    // Jobs left claimed by a previous process: requeued (the attempt counts) or dead-lettered.
    const claimedAtOpen = yield* kv.scan({ prefix: bytes(Keys.claimedAll) })
    if (claimedAtOpen.length > 0) {
      const now = yield* Clock.currentTimeMillis
      yield* kv.transaction((tx) =>
        Effect.forEach(claimedAtOpen, (entry) =>
          Effect.flatMap(decodeOrSkip(entry.key, entry.value), (record) =>
            record === undefined ? Effect.void : Effect.asVoid(requeueOrBury(tx, record, now, "claim interrupted by process exit"))), {
          discard: true
        }), { durable: false, ...retries })
    }

    const every = (interval: Duration.Input | undefined, fallback: Duration.Input, step: Effect.Effect<void, unknown>) =>
      step.pipe(
        Effect.catchCause((cause) => Effect.logWarning("job queue background step failed", cause)),
        Effect.repeat(Schedule.spaced(Duration.fromInputUnsafe(interval ?? fallback))),
        Effect.forkScoped
      )
    const background = [
      yield* every(options?.reaperInterval, "5 seconds", Effect.andThen(reapExpired, sweepRetention)),
      yield* every(options?.schedulerInterval, "1 second", promoteDue)
    ]

    /** When the writer stops for good, the reaper and the scheduler stop too: nothing polls on. */
    const stopWithWriter = Effect.flatMap(Effect.flip(kv.stopped), (failure) =>
      Effect.andThen(Effect.logError(`job queue stopped: ${failure.message}`), Fiber.interruptAll(background)))
    yield* Effect.forkScoped(stopWithWriter)

    return {
      enqueue,
      enqueueBatch,
      claim,
      ack,
      nack,
      release,
      discard,
      deadLetter,
      extendLease,
      get,
      stats,
      cancel,
      awaitCompletion
    } satisfies Service
  })

/**
 * The job queue over the `Kv` in context.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<JobQueue, QueueError | InvalidOption, Kv.Kv | ObjectStore> =>
  Layer.effect(JobQueue, make(options))
