/**
 * The stored form of a job, format version 1: msgpack of `{ v: 1, ...encoded record }`. The
 * payload is kept in its encoded form (msgpack of the definition schema's encoded value).
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
  expiresAt: Schema.optionalKey(Schema.Number)
})

/**
 * @category models
 * @since 0.1.0
 */
export type JobRecord = typeof JobRecord.Type

/** @since 0.1.0 */
export const version = 1

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
  if (raw === null || typeof raw !== "object" || raw.v !== version) throw new Error(`job record format ${String(raw?.v)}`)
  const { v: _, ...fields } = raw as Record<string, unknown>
  return decodeRecord(fields)
}
