/**
 * The queue's reads: `get` (a record, its offloaded payload read back and checked), `history`
 * (the attempts a record keeps), `stats` (the
 * counters kept by `records.ts`) and `awaitCompletion` (a waiter of `leases.ts`, answered from the
 * store when the job already ended). Each fails first with why the writer stopped, if it did.
 *
 * @internal
 */
import { Deferred, Duration, Effect, Option } from "effect"
import type { AwaitOptions, Service } from "../JobQueue.ts"
import type { QueueContext } from "./context.ts"
import type { Bookkeeping } from "./leases.ts"
import * as QueueOptions from "./options.ts"
import * as Rules from "../internal/options.ts"
import { checked } from "../internal/options.ts"
import { JobNotFound } from "../JobQueueError.ts"
import type { Payloads } from "./payloads.ts"
import { counter, getStored } from "./records.ts"

/**
 * `get`, `history`, `stats` and `awaitCompletion` of the queue of `ctx`, by id (the forms with a
 * definition decode on top of these: see `codec.ts`).
 */
export const make = (ctx: QueueContext, book: Bookkeeping, payloads: Payloads) => {
  const { kv, live } = ctx
  const { payloadOf } = payloads

  /** The record as stored, its offloaded payload read back. */
  const getRecord = (id: string) =>
    Effect.flatMap(Effect.andThen(live, getStored(kv, id)), (record) =>
      Option.isNone(record) || record.value.payloadRef === undefined
        ? Effect.succeed(record)
        : Effect.map(payloadOf(record.value), (payload) => Option.some({ ...record.value, payload })))

  const history: Service["history"] = (id) =>
    Effect.gen(function*() {
      yield* checked(Rules.text("id", id))
      yield* live
      const record = yield* getStored(kv, id)
      if (Option.isNone(record)) return yield* new JobNotFound({ id })
      return record.value.history ?? []
    })

  const stats: Service["stats"] = (queue) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.queueNameError(queue))
      yield* live
      return {
        queue,
        pending: yield* counter(kv, queue, "Pending"),
        scheduled: yield* counter(kv, queue, "Scheduled"),
        claimed: yield* counter(kv, queue, "Claimed"),
        done: yield* counter(kv, queue, "Done"),
        dead: yield* counter(kv, queue, "Dead")
      }
    })

  const awaitEncoded = (id: string, waitOptions: AwaitOptions | undefined) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.awaitCompletionError(waitOptions))
      yield* live
      const { forget, waiter } = book.awaitEnd(id)
      const current = yield* Effect.onError(getStored(kv, id), () => forget)
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

  return { getRecord, awaitEncoded, history, stats }
}
