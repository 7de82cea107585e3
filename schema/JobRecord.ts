/**
 * The stored form of a job, format version 2: msgpack of `{ v: 2, ...encoded record }`. The
 * payload is kept in its encoded form (msgpack of the definition schema's encoded value).
 *
 * Version 2 added the attempt history, the encoded result and the payload's version, all
 * optional: a version 1 record (written before them) decodes as a version 2 record without them,
 * and is rewritten as version 2 at its next change.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Msgpack from "../src/internal/msgpack.ts"

/**
 * @category schemas
 * @since 0.1.0
 */
export const JobStatus = Schema.Literals(["Pending", "Scheduled", "Claimed", "Done", "Dead"])

/**
 * @category models
 * @since 0.1.0
 */
export type JobStatus = typeof JobStatus.Type

/**
 * How a claim ended: `Completed` (acknowledged), `Retried` (nacked, attempts left),
 * `DeadLettered` (nacked with none left, dead-lettered, or its lease ran out with none left),
 * `LeaseExpired` (requeued by the reaper), `Interrupted` (left claimed by a process that ended,
 * requeued at the next open), `Released` (given back unsettled), `Cancelled` (discarded after a
 * cancel), and `Requeued`: not a claim but a dead job sent back by `requeueDead`.
 *
 * @category schemas
 * @since 0.2.0
 */
export const AttemptOutcome = Schema.Literals([
  "Completed",
  "Retried",
  "DeadLettered",
  "LeaseExpired",
  "Interrupted",
  "Released",
  "Cancelled",
  "Requeued"
])

/**
 * @category models
 * @since 0.2.0
 */
export type AttemptOutcome = typeof AttemptOutcome.Type

/**
 * One ended attempt of a job (see `AttemptOutcome`); for `Requeued`, `claimedAt` and `endedAt`
 * are both the instant of the requeue.
 *
 * @category schemas
 * @since 0.2.0
 */
export const Attempt = Schema.Struct({
  claimedAt: Schema.Number,
  endedAt: Schema.Number,
  outcome: AttemptOutcome,
  error: Schema.optionalKey(Schema.String)
})

/**
 * @category models
 * @since 0.2.0
 */
export type Attempt = typeof Attempt.Type

/** The attempts a record keeps: the last ones, older ones dropped. */
export const maxHistory = 32

/**
 * @category schemas
 * @since 0.1.0
 */
export const JobRecord = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  /** The payload in its encoded form: msgpack of the schema-encoded value (empty when offloaded). */
  payload: Schema.Uint8Array,
  /** The object key holding the payload when it was too large to keep inline. */
  payloadRef: Schema.optionalKey(Schema.String),
  headers: Schema.Record(Schema.String, Schema.String),
  status: JobStatus,
  /** Claims so far (incremented at claim). */
  attempts: Schema.Int,
  maxAttempts: Schema.Int,
  priority: Schema.Int,
  enqueuedAt: Schema.Number,
  claimedAt: Schema.optionalKey(Schema.Number),
  runAt: Schema.optionalKey(Schema.Number),
  lastError: Schema.optionalKey(Schema.String),
  dedupKey: Schema.optionalKey(Schema.String),
  completedAt: Schema.optionalKey(Schema.Number),
  failedAt: Schema.optionalKey(Schema.Number),
  cancelRequested: Schema.optionalKey(Schema.Boolean),
  /** How long the job is kept once dead, from its definition at enqueue (ms). */
  deadRetentionMs: Schema.optionalKey(Schema.Number),
  /** Done or dead jobs are deleted by the retention sweep after this instant (ms). */
  expiresAt: Schema.optionalKey(Schema.Number),
  /** The ended attempts, oldest first, the last `maxHistory` of them (format 2). */
  history: Schema.optionalKey(Schema.Array(Attempt)),
  /** The handler's result in its encoded form, msgpack of the result schema's encoded value (format 2). */
  result: Schema.optionalKey(Schema.Uint8Array),
  /** The version of the definition's payload schema the payload was written with (format 2; none: version 1). */
  payloadVersion: Schema.optionalKey(Schema.Int),
  /**
   * A claim held by another process (over `QueueServer`): its lease's token and length, so that a
   * writer opening the store after a restart keeps the claim for its holder rather than requeue it
   * (format 2; only on claimed records).
   */
  lease: Schema.optionalKey(Schema.Struct({ token: Schema.String, millis: Schema.Number }))
})

/**
 * @category models
 * @since 0.1.0
 */
export type JobRecord = typeof JobRecord.Type

/**
 * The format written.
 *
 * @since 0.1.0
 */
export const version = 2

/** The formats read: 1 (no history, result or payload version) and 2. */
const readable = new Set<unknown>([1, 2])

const decodeRecord = Schema.decodeUnknownSync(JobRecord)

/**
 * Encodes a record. Every field's encoded form is its value (strings, numbers, booleans, bytes, a
 * string map), so the record is written as it is, without a schema pass; reading checks it.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encode = (record: JobRecord): Uint8Array => Msgpack.encode({ v: version, ...record })

/**
 * Decodes a stored record; throws on an unknown version or shape.
 *
 * @category encoding
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): JobRecord => {
  const raw = Msgpack.decode(bytes) as { readonly v?: unknown }
  if (raw === null || typeof raw !== "object" || !readable.has(raw.v)) throw new Error(`job record format ${String(raw?.v)}`)
  const { v: _, ...fields } = raw as Record<string, unknown>
  return decodeRecord(fields)
}
