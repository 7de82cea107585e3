/**
 * The queue's core: what the writer does with jobs, in terms it can serve to any process. It
 * takes a definition's settings (`wire.ts`) and payloads, results and follow-ups already encoded,
 * and hands out claims with their payloads as stored; Schemas, backoff functions and migrations
 * stay with the caller (`codec.ts`), in this process or in another one (`QueueClient`). Its
 * arguments are trusted: whoever calls it has checked them (the codec, or the server at the edge).
 *
 * @internal
 */
import type { Effect } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type { InvalidOption } from "../InvalidOption.ts"
import type {
  EnqueueOptions,
  EnqueueResult,
  NackOutcome,
  PayloadStoreError,
  QueueError,
  ReadError,
  ScheduleInfo,
  ScheduleOptions,
  SettleError
} from "../JobQueue.ts"
import type { CancelRequested, ClaimLost, DuplicateJobId, InvalidQueueName, PayloadTooLarge } from "../JobQueueError.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import type * as Effects from "./effects.ts"
import type { PrepareError } from "./enqueue.ts"
import type { ClaimRef } from "./leases.ts"
import type { JobSettings } from "./wire.ts"

/** A claim as the core hands it out: the record as stored, its lease's token and cancel signal. */
export interface HeldJob {
  readonly record: JobRecord
  readonly token: string
  /** Completes once `cancel` was asked for the job. */
  readonly cancelled: Effect.Effect<void>
  /** The encoded payload: inline, or read back from its object (gone: `PayloadMissing`; damaged: `Corrupt`). */
  readonly payload: Effect.Effect<Uint8Array, PayloadStoreError>
}

/** The core of one queue (see the module's header). */
export interface Core {
  /** Enqueues a job, its payload encoded, its options checked. */
  readonly enqueue: (
    settings: JobSettings,
    payload: Uint8Array,
    options: EnqueueOptions | undefined
  ) => Effect.Effect<EnqueueResult, PrepareError | QueueError | DuplicateJobId>
  /** Enqueues jobs in one commit, their payloads encoded. */
  readonly enqueueBatch: (
    settings: JobSettings,
    payloads: ReadonlyArray<Uint8Array>
  ) => Effect.Effect<ReadonlyArray<string>, InvalidOption | InvalidQueueName | PayloadTooLarge | ObjectStoreError | QueueError>
  /**
   * Claims up to `max` jobs of `queue` with leases of `leaseMillis`, waiting up to `waitMillis`
   * (`Infinity`: until one arrives) while none is pending, or until `until` completes. `remote`:
   * for a holder in another process (the server's claims), whose lease is kept in the claimed
   * record so that a writer opening after a restart keeps the claim instead of requeuing it.
   */
  readonly claim: (
    queue: string,
    max: number,
    leaseMillis: number,
    waitMillis: number,
    until: Effect.Effect<void> | undefined,
    remote?: boolean
  ) => Effect.Effect<ReadonlyArray<HeldJob>, InvalidOption | InvalidQueueName | QueueError>
  /** Acknowledges: `result` encoded, `effects` encoded (see `effects.ts`). */
  readonly ack: (
    claim: ClaimRef,
    settings: JobSettings,
    result: Uint8Array | undefined,
    effects: Effects.Encoded | undefined
  ) => Effect.Effect<void, SettleError>
  /** Retries after `delayMillis`, or dead-letters when the attempts are used up (then the effects apply). */
  readonly nack: (
    claim: ClaimRef,
    error: string,
    delayMillis: number,
    effects: Effects.Encoded | undefined
  ) => Effect.Effect<NackOutcome, SettleError>
  /** Dead-letters at once, with the effects. */
  readonly deadLetter: (claim: ClaimRef, reason: string, effects: Effects.Encoded | undefined) => Effect.Effect<void, SettleError>
  /** Gives the claim back unsettled. */
  readonly release: (claim: ClaimRef) => Effect.Effect<void, QueueError | ClaimLost>
  /** Removes the claimed job without an outcome. */
  readonly discard: (claim: ClaimRef) => Effect.Effect<void, QueueError | ClaimLost>
  /** The lease now ends `millis` from now. */
  readonly extendLease: (claim: ClaimRef, millis: number) => Effect.Effect<void, ClaimLost | CancelRequested | InvalidOption | ReadError>
  /** Stores a cron schedule of a definition with `settings`, its payload encoded (options checked, cron parsed here). */
  readonly schedule: (
    settings: JobSettings,
    payload: Uint8Array,
    options: Omit<ScheduleOptions<unknown>, "payload">
  ) => Effect.Effect<ScheduleInfo, QueueError | InvalidOption | InvalidQueueName | PayloadTooLarge>
}

/** What a server in this process needs of a queue to serve it (see `QueueServer`). */
export interface Served {
  readonly core: Core
  /** The claim of job `id` with lease `token`, as held here (undefined: not held, or another lease). */
  readonly held: (id: string, token: string) => ClaimRef | undefined
  /** Records where the queue is served in the writer record, for clients to find it (none without a record). */
  readonly publish: (address: string) => Effect.Effect<void>
}

const servedKey = Symbol.for("bucketq/queue/served")

/** `service` carrying what a server needs to serve it; invisible through the public type. */
export const attach = <S extends object>(service: S, served: Served): S => Object.assign(service, { [servedKey]: served })

/** What a server needs of a queue of this process (undefined for one that is not, such as a client's). */
export const servedOf = (service: object): Served | undefined => (service as { readonly [servedKey]?: Served })[servedKey]
