/**
 * Enqueueing: a new job's record (its status, priority, due time and dedup key from the options
 * and the definition, the definition's payload version when it is not 1), its payload encoded and offloaded when large, committed with its counter.
 * A job with a fresh id and no dedup key is one plain write with nothing to read first; a dedup
 * key or an id of the caller's is checked in a transaction. Claims waiting on the queue are woken
 * once the job is durable and pending.
 *
 * @internal
 */
import { Clock, Duration, Effect } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import * as Job from "../Job.ts"
import type { EnqueueOptions, EnqueueResult } from "../JobQueue.ts"
import type { InvalidOption } from "../InvalidOption.ts"
import { DuplicateJobId, type InvalidJobId, type InvalidPayload, type InvalidQueueName, PayloadTooLarge } from "../JobQueueError.ts"
import type * as Kv from "../Kv.ts"
import { Changes, type Tx } from "../kv/engine.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping } from "./leases.ts"
import type { Payloads } from "./payloads.ts"
import type { JobSettings } from "./wire.ts"
import { stageWrites, type UserWrites, userWrites } from "./userKv.ts"
import { move, payloadVersionField, retries, stage } from "./records.ts"

/** Why a job could not be made ready to commit. */
export type PrepareError =
  | InvalidQueueName
  | InvalidJobId
  | InvalidOption
  | InvalidPayload
  | PayloadTooLarge
  | ObjectStoreError
  | Kv.StopError

/** `enqueue` and `enqueueBatch` of the queue of `ctx`, and the steps follow-up enqueues share. */
export const make = (ctx: QueueContext, book: Bookkeeping, payloads: Payloads) => {
  const { events, kv, maxPayload, nextId } = ctx
  const { announce } = book
  const { committing, dropPayloads, offload } = payloads

  /** A new job's record, from the settings of its definition and the enqueue's options (checked). */
  const newRecord = (
    settings: JobSettings,
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
      queue: settings.queue,
      payload,
      headers: { ...options?.headers },
      status: scheduledLater ? "Scheduled" : "Pending",
      attempts: 0,
      maxAttempts: options?.maxAttempts ?? settings.maxAttempts,
      priority: options?.priority === undefined ? settings.priority : Job.priorityValue(options.priority),
      enqueuedAt: now,
      deadRetentionMs: settings.deadRetentionMillis,
      ...(scheduledLater ? { runAt } : {}),
      ...(options?.dedupKey === undefined ? {} : { dedupKey: options.dedupKey }),
      ...payloadVersionField(settings)
    }
  }

  /**
   * The record of a job of a definition with `settings`, its payload encoded (size checked) and
   * the options checked: offloaded when large (the object is written first: see
   * `payloads.committing` for who deletes it when the commit fails).
   */
  const ready = (settings: JobSettings, encoded: Uint8Array, options: EnqueueOptions | undefined): Effect.Effect<JobRecord, PrepareError> =>
    Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<JobRecord, PrepareError> =>
      // checked again here: a payload encoded in another process reaches the writer as bytes
      encoded.length > maxPayload
        ? Effect.fail(new PayloadTooLarge({ size: encoded.length, limit: maxPayload }))
        : offload(newRecord(settings, options?.id ?? nextId(now), encoded, now, options), now))

  /**
   * Stages a prepared job in a transaction: a live job with its dedup key answers instead (nothing
   * staged), an id of the caller's that exists is `DuplicateJobId` (`checkId`; a fresh ULID
   * cannot exist yet). What follow-up enqueues of a settlement share with `enqueue`.
   */
  const stageNew = (tx: Tx, record: JobRecord, checkId: boolean): Effect.Effect<EnqueueResult, DuplicateJobId | Kv.ReadError> =>
    Effect.gen(function*() {
      const id = record.id
      const dedup = record.dedupKey === undefined ? undefined : Keys.dedup(record.queue, record.dedupKey)
      const existing = dedup === undefined ? undefined : yield* tx.get(dedup)
      if (existing !== undefined) return { id: existing, created: false }
      if (checkId && (yield* tx.get(Keys.index(id))) !== undefined) return yield* new DuplicateJobId({ id })
      stage(tx, record)
      move(tx, record.queue, undefined, record.status)
      if (dedup !== undefined) tx.put(dedup, id)
      return { id, created: true }
    })

  // The hot paths (enqueue, claim, ack) are plain functions over a few combinators rather than
  // generators: each step through the runtime costs, and most of their work is synchronous.

  /**
   * Enqueues a job of a definition with `settings`, its payload encoded (size checked) and the
   * options checked: one plain commit for a fresh id without a dedup key or KV writes, else a
   * transaction checking them.
   */
  const enqueueEncoded = (settings: JobSettings, encoded: Uint8Array, options: EnqueueOptions | undefined) =>
    Effect.flatMap(ready(settings, encoded, options), (record) => {
      if (record.dedupKey !== undefined || options?.id !== undefined || options?.kv !== undefined) {
        return Effect.flatMap(userWrites("", options?.kv, undefined), (writes) => enqueueChecked(record, options?.id !== undefined, writes))
      }
      // nothing to read first (a fresh ULID cannot exist yet): one plain commit
      const changes = new Changes()
      stage(changes, record)
      move(changes, record.queue, undefined, record.status)
      return Effect.map(committing([record], kv.write(changes)), () => {
        if (record.status === "Pending") announce(record.queue)
        events.enqueued(record)
        return { id: record.id, created: true }
      })
    })

  /**
   * Enqueues `record` in a transaction, with the user KV writes of its `kv` option: its dedup key
   * or its caller-chosen id checked first; on a dedup hit nothing is written.
   */
  const enqueueChecked = (record: JobRecord, checkId: boolean, writes: UserWrites) =>
    Effect.gen(function*() {
      const { value: result } = yield* committing([record], kv.transaction((tx) =>
        Effect.map(stageNew(tx, record, checkId), (staged) => {
          if (staged.created) stageWrites(tx, writes)
          return staged
        }), retries))
      if (!result.created) yield* dropPayloads([record]) // the existing job keeps its own
      if (result.created && record.status === "Pending") announce(record.queue)
      if (result.created) events.enqueued(record)
      return result
    })

  /** Enqueues jobs of a definition with `settings`, their payloads encoded (sizes checked), in one commit. */
  const enqueueBatchEncoded = (settings: JobSettings, encoded: ReadonlyArray<Uint8Array>) =>
    Effect.gen(function*() {
      if (encoded.length === 0) return []
      const large = encoded.find((payload) => payload.length > maxPayload)
      if (large !== undefined) return yield* new PayloadTooLarge({ size: large.length, limit: maxPayload })
      const now = yield* Clock.currentTimeMillis
      const records: Array<JobRecord> = []
      const offloaded: Array<JobRecord> = []
      yield* Effect.forEach(encoded, (payload) =>
        Effect.map(offload(newRecord(settings, nextId(now), payload, now, undefined), now), (record) => {
          records.push(record)
          if (record.payloadRef !== undefined) offloaded.push(record)
        })).pipe(Effect.onError(() => dropPayloads(offloaded)))
      // fresh ids: nothing to read, so one plain commit
      const changes = new Changes()
      for (const record of records) stage(changes, record)
      move(changes, settings.queue, undefined, "Pending", records.length)
      yield* committing(offloaded, kv.write(changes))
      announce(settings.queue)
      events.enqueuedAll(records)
      return records.map((r) => r.id)
    })

  return { enqueueEncoded, enqueueBatchEncoded, ready, stageNew }
}
