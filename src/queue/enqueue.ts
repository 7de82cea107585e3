/**
 * Enqueueing: a new job's record (its status, priority, due time and dedup key from the options
 * and the definition, the definition's payload version when it is not 1), its payload encoded and offloaded when large, committed with its counter.
 * A job with a fresh id and no dedup key is one plain write with nothing to read first; a dedup
 * key or an id of the caller's is checked in a transaction. Claims waiting on the queue are woken
 * once the job is durable and pending.
 *
 * @internal
 */
import { Clock, Duration, Effect, Option } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type * as Latin1Kv from "../internal/latin1Kv.ts"
import * as Job from "../Job.ts"
import type { EnqueueOptions, Service } from "../JobQueue.ts"
import { DuplicateJobId } from "../JobQueueError.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping } from "./leases.ts"
import * as QueueOptions from "./options.ts"
import { checked } from "../internal/options.ts"
import type { Payloads } from "./payloads.ts"
import { bytes, move, moveUpdates, pushStageWrites, retries, stage } from "./records.ts"

/** `enqueue` and `enqueueBatch` of the queue of `ctx`. */
export const make = (ctx: QueueContext, book: Bookkeeping, payloads: Payloads) => {
  const { fast, kv, nextId } = ctx
  const { announce } = book
  const { committing, dropPayloads, encodePayload, offload } = payloads

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
      ...(options?.dedupKey === undefined ? {} : { dedupKey: options.dedupKey }),
      // version 1 is left out (absent reads as 1): records stay as small as before versions
      ...(definition.version === undefined || definition.version === 1 ? {} : { payloadVersion: definition.version })
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

  return { enqueue, enqueueBatch }
}
