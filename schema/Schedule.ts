/**
 * The stored form of a cron schedule (`JobQueue.schedule`), format version 1: msgpack of
 * `{ v: 1, ...schedule }`, kept in the KV under the schedule's key (see `src/queue/keys.ts`).
 *
 * A schedule holds everything its jobs are enqueued from without the definition in hand (the
 * queue, the payload already encoded with the definition, the priority, the attempts, the dead
 * retention, the payload's version), and where it stands: every slot up to `after` was handled
 * (enqueued, or skipped by the `missed` policy), `next` is the first slot after it, and
 * `lastSlot` the last slot a job was enqueued for.
 *
 * @since 0.2.0
 */
import { Schema } from "effect"
import * as Msgpack from "../src/internal/msgpack.ts"

/**
 * What a schedule does with slots that fell due while no process ran: one job for the newest
 * (`latest`), one per slot up to `maxCatchUp` (`all`), or none (`none`).
 *
 * @category schemas
 * @since 0.2.0
 */
export const MissedPolicy = Schema.Literals(["latest", "all", "none"])

/**
 * @category models
 * @since 0.2.0
 */
export type MissedPolicy = typeof MissedPolicy.Type

/**
 * @category schemas
 * @since 0.2.0
 */
export const Schedule = Schema.Struct({
  key: Schema.String,
  queue: Schema.String,
  /** The cron expression, as `Cron.parse` takes it (5 or 6 fields). */
  cron: Schema.String,
  /** The IANA time zone (or offset) the expression is read in. */
  timezone: Schema.String,
  missed: MissedPolicy,
  /** The most jobs one catch-up enqueues (the newest slots). */
  maxCatchUp: Schema.Int,
  /** The payload in its encoded form: msgpack of the definition schema's encoded value. */
  payload: Schema.Uint8Array,
  headers: Schema.Record(Schema.String, Schema.String),
  priority: Schema.Int,
  maxAttempts: Schema.Int,
  /** How long a job of the schedule is kept once dead (ms). */
  deadRetentionMs: Schema.Number,
  /** The version of the definition's payload schema the payload was encoded with (none: version 1). */
  payloadVersion: Schema.optionalKey(Schema.Int),
  /** When the schedule was first made (ms); kept when it is replaced. */
  createdAt: Schema.Number,
  /** Every slot at or before this instant (ms) was handled: enqueued, or skipped by `missed`. */
  after: Schema.Number,
  /** The first slot after `after` (ms); absent when the expression has none left. */
  next: Schema.optionalKey(Schema.Number),
  /** The last slot (ms) a job was enqueued for; absent before the first. */
  lastSlot: Schema.optionalKey(Schema.Number)
})

/**
 * @category models
 * @since 0.2.0
 */
export type Schedule = typeof Schedule.Type

/**
 * The format written.
 *
 * @since 0.2.0
 */
export const version = 1

const decodeSchedule = Schema.decodeUnknownSync(Schedule)

/**
 * Encodes a schedule. Every field's encoded form is its value, so it is written as it is.
 *
 * @category encoding
 * @since 0.2.0
 */
export const encode = (schedule: Schedule): Uint8Array => Msgpack.encode({ v: version, ...schedule })

/**
 * Decodes a stored schedule; throws on an unknown version or shape.
 *
 * @category encoding
 * @since 0.2.0
 */
export const decode = (bytes: Uint8Array): Schedule => {
  const raw = Msgpack.decode(bytes) as { readonly v?: unknown }
  if (raw === null || typeof raw !== "object" || raw.v !== version) throw new Error(`schedule format ${String(raw?.v)}`)
  const { v: _, ...fields } = raw as Record<string, unknown>
  return decodeSchedule(fields)
}
