/**
 * The job records in the KV: reading and staging them at their keys (the primary key of their
 * status, the index pointing to it, and for a job kept until an instant the expiry entry), and the
 * per-queue counters moved in the same commits. Every function here stages into a caller's
 * commit (`Writes`: a plain batch or a transaction alike, see `kv/engine.ts`): `stage`, `move`,
 * `bury`, `requeueOrBury`; nothing here commits on its own. Keys are built by `keys.ts` only.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import * as JobRecordSchema from "../../schema/JobRecord.ts"
import type { Attempt, AttemptOutcome, JobRecord, JobStatus } from "../../schema/JobRecord.ts"
import { fromLatin1, toLatin1 } from "../internal/binary.ts"
import type { Reads, Updater, Writes } from "../kv/engine.ts"
import type { ReadError } from "../Kv.ts"
import * as Keys from "./keys.ts"

/** A record as stored (latin1, as the KV keeps values): written by `stage` only. */
const storedRecord = (record: JobRecord): string => toLatin1(JobRecordSchema.encode(record))

/** A stored record decoded (throws on a record that does not decode). */
export const decodeRecord = (value: string): JobRecord => JobRecordSchema.decode(fromLatin1(value))

/**
 * The record at `key` (undefined when missing), read inside a transaction or from the committed
 * state. A record that does not decode is a defect here: paths that must step over one use
 * `decodeOrSkip`.
 */
export const read = (reads: Reads, key: string): Effect.Effect<JobRecord | undefined, ReadError> =>
  Effect.map(reads.get(key), (value) => (value === undefined ? undefined : decodeRecord(value)))

/** The key of a record in its status: where it is stored, and where the index points. */
export const primaryKey = (record: JobRecord): string => {
  switch (record.status) {
    case "Pending":
      return Keys.pending(record.queue, record.priority, record.id)
    case "Scheduled":
      return Keys.scheduled(record.runAt ?? 0, record.queue, record.id)
    case "Claimed":
      return Keys.claimed(record.queue, record.id)
    case "Done":
      return Keys.done(record.completedAt ?? 0, record.queue, record.id)
    case "Dead":
      return Keys.dead(record.queue, record.id)
  }
}

/**
 * Stages `record` at its primary key, with the index pointing to it, and, for a job kept until
 * an instant (done or dead), the expiry entry the retention sweep finds it by. The one way a job
 * record is written, whatever commit it is part of.
 */
export const stage = (writes: Writes, record: JobRecord): void => {
  const key = primaryKey(record)
  writes.put(key, storedRecord(record))
  writes.put(Keys.index(record.id), key)
  if (record.expiresAt !== undefined) writes.put(Keys.expiry(record.expiresAt, record.id), key)
}

// Counters are stored as the ASCII digits of the number, which as latin1 are the digits themselves.

/** The number a stored counter holds (0 when there is none). */
export const counterOf = (value: string | undefined): number => (value === undefined ? 0 : Number(value))

const addTo = (delta: number): Updater => (current) => String(counterOf(current) + delta)

/**
 * Counts `n` jobs leaving status `from` and entering `to` (either may be none): the queue's
 * counters, updated at commit so that they never conflict. `Done` only ever grows.
 */
export const move = (writes: Writes, queue: string, from: JobStatus | undefined, to: JobStatus | undefined, n = 1): void => {
  if (from !== undefined && from !== "Done") writes.update(Keys.stat(queue, from), addTo(-n))
  if (to !== undefined) writes.update(Keys.stat(queue, to), addTo(n))
}

/** `record` without `keys`. */
export const without = <R extends object, K extends keyof R>(record: R, ...keys: ReadonlyArray<K>): Omit<R, K> => {
  const out = { ...record }
  for (const key of keys) delete out[key]
  return out
}

/**
 * `record` with one more ended attempt in its history (the last `maxHistory` kept). A claimed
 * record's attempt began at its `claimedAt`; `Requeued` (no claim) begins and ends at `now`.
 */
export const withAttempt = <R extends JobRecord>(record: R, outcome: AttemptOutcome, now: number, error?: string): R => {
  const attempt: Attempt = {
    claimedAt: record.claimedAt ?? now,
    endedAt: now,
    outcome,
    ...(error === undefined ? {} : { error })
  }
  const before = record.history ?? []
  const history = before.length >= JobRecordSchema.maxHistory
    ? [...before.slice(before.length - JobRecordSchema.maxHistory + 1), attempt]
    : [...before, attempt]
  return { ...record, history }
}

/**
 * The `payloadVersion` field of a job of `definition`: version 1 is left out (absent reads as 1),
 * so records stay as small as before versions.
 */
export const payloadVersionField = (definition: { readonly version?: number | undefined }): { readonly payloadVersion?: number } =>
  definition.version === undefined || definition.version === 1 ? {} : { payloadVersion: definition.version }

/** The conflicts a queue transaction retries before it fails. */
export const retries = { maxRetries: 1000 } as const
const defaultDeadRetention = 7 * 24 * 3600 * 1000

/**
 * The record of a claimed job that died now, kept for its dead retention, its attempt recorded
 * as `DeadLettered` with the reason.
 */
export const deadRecord = (record: JobRecord, now: number, reason: string): JobRecord => ({
  ...without(withAttempt(record, "DeadLettered", now, reason), "claimedAt", "lease"),
  status: "Dead",
  failedAt: now,
  lastError: reason,
  expiresAt: now + (record.deadRetentionMs ?? defaultDeadRetention)
})

// The keys of the records that did not decode, each logged once per process: the scans that meet
// one (claims, the scheduler, the sweeps, listings) meet it again and again. Bounded, so that a
// store full of them cannot grow it without end.
const reported = new Set<string>()

/**
 * Logs, once per key and process, that the record at `key` does not decode (damaged, or written
 * by a newer version of bucketq) and is skipped, left where it is for an operator (`bucketq verify`).
 */
export const reportUndecodable = (key: string, error: unknown): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (reported.has(key) || reported.size >= 10_000) return Effect.void
    reported.add(key)
    return Effect.logWarning(`job record ${Keys.describe(key)} does not decode; skipped`, error)
  })

/** Decodes a record, or undefined when it does not decode (see `reportUndecodable`). */
export const decodeOrSkip = (key: string, value: string) =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(decodeRecord(value))
    } catch (error) {
      return Effect.as(reportUndecodable(key, error), undefined)
    }
  })

/**
 * Moves a claimed job back to pending (or to dead, its attempts used up) after its lease or its
 * process ended; the attempt is recorded with `outcome` (or `DeadLettered`) and the reason.
 */
export const requeueOrBury = (
  tx: Writes,
  record: JobRecord,
  now: number,
  outcome: "LeaseExpired" | "Interrupted",
  reason: string
): JobRecord => {
  tx.delete(Keys.claimed(record.queue, record.id))
  const next: JobRecord = record.attempts >= record.maxAttempts
    ? deadRecord(record, now, reason)
    : { ...without(withAttempt(record, outcome, now, reason), "claimedAt", "lease"), status: "Pending" }
  stage(tx, next)
  move(tx, record.queue, "Claimed", next.status)
  return next
}

/** Stages the dead record of a claimed job and returns it (what completion waiters get). */
export const bury = (tx: Writes, record: JobRecord, now: number, reason: string): JobRecord => {
  const dead = deadRecord(record, now, reason)
  stage(tx, dead)
  move(tx, record.queue, "Claimed", "Dead")
  return dead
}

/** The record of job `id` with the key it is stored at (undefined: none), in a transaction or the committed state. */
export const locate = (reads: Reads, id: string): Effect.Effect<readonly [key: string, record: JobRecord] | undefined, ReadError> =>
  Effect.flatMap(reads.get(Keys.index(id)), (key) =>
    key === undefined
      ? Effect.succeed(undefined)
      : Effect.map(read(reads, key), (record) => (record === undefined ? undefined : [key, record] as const)))

/** The record of job `id` as stored (an offloaded payload not read), none when there is none. */
export const getStored = (kv: Reads, id: string): Effect.Effect<Option.Option<JobRecord>, ReadError> =>
  Effect.map(locate(kv, id), (found) => Option.fromUndefinedOr(found?.[1]))

/** The counter of jobs of `status` in `queue` (0 for one never used). */
export const counter = (kv: Reads, queue: string, status: JobStatus): Effect.Effect<number, ReadError> =>
  Effect.map(kv.get(Keys.stat(queue, status)), counterOf)
