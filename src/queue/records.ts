/**
 * The job records in the KV: reading and staging them at their keys (the primary key of their
 * status, the index pointing to it, and for a job kept until an instant the expiry entry), and the
 * per-queue counters moved in the same commits. Every function here is a step of a caller's
 * commit: a transaction's (`stage`, `move`, `bury`, `requeueOrBury`) or a plain batch's
 * (`pushStageWrites`, `moveUpdates`, `moveOps`); nothing here commits on its own. Keys are built
 * by `keys.ts` only.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import * as JobRecordSchema from "../../schema/JobRecord.ts"
import type { Attempt, AttemptOutcome, JobRecord, JobStatus } from "../../schema/JobRecord.ts"
import { toLatin1 } from "../internal/binary.ts"
import type * as Latin1Kv from "../internal/latin1Kv.ts"
import type * as Kv from "../Kv.ts"
import type { Transaction } from "../Kv.ts"
import type { ValueTooLarge } from "../KvError.ts"
import * as Keys from "./keys.ts"

/** A key as the KV takes it. */
export const bytes = (key: string) => Keys.toBytes(key)
/** A record as stored. */
export const encodeRecord = (record: JobRecord) => JobRecordSchema.encode(record)

/** A record read inside a transaction (undefined when missing). */
export const read = (tx: Pick<Transaction, "get">, key: string) =>
  Effect.map(tx.get(bytes(key)), (o) => (Option.isSome(o) ? JobRecordSchema.decode(o.value) : undefined))

/** The key of a record in its status: where it is stored, and where the index points. */
const primaryKey = (record: JobRecord): string => {
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
 * an instant (done or dead), the expiry entry the retention sweep finds it by.
 */
export const stage = (tx: Transaction, record: JobRecord) => {
  const key = primaryKey(record)
  const staged = Effect.andThen(tx.put(bytes(key), encodeRecord(record)), tx.put(bytes(Keys.index(record.id)), bytes(key)))
  return record.expiresAt === undefined ? staged : Effect.andThen(staged, tx.put(bytes(Keys.expiry(record.expiresAt, record.id)), bytes(key)))
}

// Counters are stored as the ASCII digits of the number. They are read and written at every
// commit that moves a job, so by char codes rather than through TextDecoder/TextEncoder.

/** The number a stored counter holds (0 when there is none). */
export const counterOf = (value: Option.Option<Uint8Array>): number => {
  if (Option.isNone(value)) return 0
  let digits = ""
  for (const byte of value.value) digits += String.fromCharCode(byte)
  return Number(digits)
}

const counterBytes = (n: number): Uint8Array => {
  const digits = String(n)
  const out = new Uint8Array(digits.length)
  for (let i = 0; i < digits.length; i++) out[i] = digits.charCodeAt(i)
  return out
}

const addTo = (delta: number) => (current: Option.Option<Uint8Array>) => counterBytes(counterOf(current) + delta)

/** The counter updates of `n` jobs leaving status `from` and entering `to`, as batch operations. */
export const moveOps = (queue: string, from: JobStatus | undefined, to: JobStatus | undefined, n = 1): Array<Kv.WriteOp> =>
  moveUpdates(queue, from, to, n).map(([key, update]) => ({ _tag: "Update", key: bytes(key), update }))

/**
 * Counts a job leaving status `from` and entering `to` (either may be none), inside a transaction:
 * the queue's counters, updated at commit so that they never conflict. `Done` only ever grows.
 */
export const move = (tx: Transaction, queue: string, from: JobStatus | undefined, to: JobStatus | undefined) =>
  moveOps(queue, from, to).reduce<Effect.Effect<void, ValueTooLarge>>(
    (before, op) => (op._tag === "Update" ? Effect.andThen(before, tx.update(op.key, op.update)) : before),
    Effect.void
  )

// The hot paths (enqueue, claim, ack) write through the KV's latin1 entry point: the keys are
// built as latin1 strings, which is how the KV keeps them, so they are not converted to bytes and back.

/** Appends `stage` as latin1 writes to `writes` (the record, and the index pointing to it); returns `writes`. */
export const pushStageWrites = (writes: Array<Latin1Kv.Op>, record: JobRecord): Array<Latin1Kv.Op> => {
  const key = primaryKey(record)
  writes.push([key, toLatin1(encodeRecord(record))], [Keys.index(record.id), key])
  if (record.expiresAt !== undefined) writes.push([Keys.expiry(record.expiresAt, record.id), key])
  return writes
}

/** `moveOps` as latin1 updates. */
export const moveUpdates = (queue: string, from: JobStatus | undefined, to: JobStatus | undefined, n = 1): Array<Latin1Kv.Update> => {
  const updates: Array<Latin1Kv.Update> = []
  if (from !== undefined && from !== "Done") updates.push([Keys.stat(queue, from), addTo(-n)])
  if (to !== undefined) updates.push([Keys.stat(queue, to), addTo(n)])
  return updates
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
export const decodeOrSkip = (key: Uint8Array, value: Uint8Array) =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(JobRecordSchema.decode(value))
    } catch (error) {
      return Effect.as(reportUndecodable(Keys.fromBytes(key), error), undefined)
    }
  })

/**
 * Moves a claimed job back to pending (or to dead, its attempts used up) after its lease or its
 * process ended; the attempt is recorded with `outcome` (or `DeadLettered`) and the reason.
 */
export const requeueOrBury = (
  tx: Transaction,
  record: JobRecord,
  now: number,
  outcome: "LeaseExpired" | "Interrupted",
  reason: string
) =>
  Effect.gen(function*() {
    yield* tx.delete(bytes(Keys.claimed(record.queue, record.id)))
    const next: JobRecord = record.attempts >= record.maxAttempts
      ? deadRecord(record, now, reason)
      : { ...without(withAttempt(record, outcome, now, reason), "claimedAt", "lease"), status: "Pending" }
    yield* stage(tx, next)
    yield* move(tx, record.queue, "Claimed", next.status)
    return next
  })

/** Stages the dead record of a claimed job and returns it (what completion waiters get). */
export const bury = (tx: Transaction, record: JobRecord, now: number, reason: string) => {
  const dead = deadRecord(record, now, reason)
  return stage(tx, dead).pipe(Effect.andThen(move(tx, record.queue, "Claimed", "Dead")), Effect.as(dead))
}

/** The record as stored (an offloaded payload not read). */
export const getStored = (kv: Pick<Kv.Service, "get">, id: string) =>
  Effect.gen(function*() {
    const index = yield* kv.get(bytes(Keys.index(id)))
    if (Option.isNone(index)) return Option.none<JobRecord>()
    const value = yield* kv.get(index.value)
    return Option.map(value, JobRecordSchema.decode)
  })

/** The counter of jobs of `status` in `queue` (0 for one never used). */
export const counter = (kv: Pick<Kv.Service, "get">, queue: string, status: JobStatus) =>
  Effect.map(kv.get(bytes(Keys.stat(queue, status))), counterOf)
