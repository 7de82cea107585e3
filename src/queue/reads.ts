/**
 * The queue's reads: `get` (a record, its offloaded payload read back and checked), `history`
 * (the attempts a record keeps), `stats` (the
 * counters kept by `records.ts`) and `awaitCompletion` (a waiter of `leases.ts`, answered from the
 * store when the job already ended). Each fails first with why the writer stopped, if it did.
 *
 * @internal
 */
import { Deferred, Duration, Effect, Option } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type * as Job from "../Job.ts"
import type { AwaitOptions, DecodedJob, PayloadStoreError, ResultOutcome, Service } from "../JobQueue.ts"
import type { QueueContext } from "./context.ts"
import type { Bookkeeping } from "./leases.ts"
import * as QueueOptions from "./options.ts"
import * as Rules from "../internal/options.ts"
import { checked } from "../internal/options.ts"
import { InvalidPayload, JobNotFound } from "../JobQueueError.ts"
import type { Payloads } from "./payloads.ts"
import { counter, getStored } from "./records.ts"

/** `InvalidOption` when the job is not of the definition's queue (read with another job's definition). */
const queueMismatch = (definition: Job.Definition<any, any, any>, record: JobRecord) =>
  record.queue === definition.queue
    ? undefined
    : Rules.invalid("definition", definition.queue, `job ${record.id} is in queue ${JSON.stringify(record.queue)}`)

/** `get`, `history`, `stats` and `awaitCompletion` of the queue of `ctx`. */
export const make = (ctx: QueueContext, book: Bookkeeping, payloads: Payloads) => {
  const { kv, live } = ctx
  const { decodePayload, decodeResult, payloadOf } = payloads

  /** The record as stored, its offloaded payload read back. */
  const getRecord = (id: string) =>
    Effect.flatMap(Effect.andThen(live, getStored(kv, id)), (record) =>
      Option.isNone(record) || record.value.payloadRef === undefined
        ? Effect.succeed(record)
        : Effect.map(payloadOf(record.value), (payload) => Option.some({ ...record.value, payload })))

  /** A record decoded with its definition: its payload (read back when offloaded) and its result. */
  const decoded = <A, I, R>(definition: Job.Definition<A, I, R>, record: JobRecord) =>
    Effect.gen(function*() {
      yield* checked(queueMismatch(definition, record))
      const payload = yield* decodePayload(definition, record).pipe(
        Effect.catchIf(
          (error): error is Exclude<typeof error, PayloadStoreError> =>
            error._tag !== "ObjectStoreError" && error._tag !== "PayloadMissing" && error._tag !== "Corrupt",
          (error) => Effect.fail(new InvalidPayload({ detail: `payload of job ${record.id} does not decode: ${error.message}` }))
        )
      )
      const result = yield* decodeResult(definition, record)
      const { result: _, ...rest } = record
      return { ...rest, payload, result } satisfies DecodedJob<A, R>
    })

  const get = ((first: string | Job.Definition<any, any, any>, id?: string) =>
    typeof first === "string" ? getRecord(first) : Effect.gen(function*() {
      yield* checked(QueueOptions.definitionError(first) ?? Rules.text("id", id))
      const record = yield* Effect.andThen(live, getStored(kv, id!))
      return Option.isNone(record) ? Option.none() : Option.some(yield* decoded(first, record.value))
    })) as Service["get"]

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
      const current = yield* getStored(kv, id)
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

  /** `awaitEncoded`, the result of a completed job decoded with its definition. */
  const awaitDecoded = <A, I, R>(definition: Job.Definition<A, I, R>, id: string, waitOptions: AwaitOptions | undefined) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.definitionError(definition) ?? Rules.text("id", id))
      const outcome = yield* awaitEncoded(id, waitOptions)
      if (outcome._tag !== "Completed") return outcome
      if (Option.isNone(outcome.job)) return { ...outcome, result: Option.none<R>() } satisfies ResultOutcome<R>
      yield* checked(queueMismatch(definition, outcome.job.value))
      const result = yield* decodeResult(definition, outcome.job.value)
      return { ...outcome, result } satisfies ResultOutcome<R>
    })

  const awaitCompletion = ((first: string | Job.Definition<any, any, any>, second?: string | AwaitOptions, third?: AwaitOptions) =>
    typeof first === "string"
      ? awaitEncoded(first, second as AwaitOptions | undefined)
      : awaitDecoded(first, second as string, third)) as Service["awaitCompletion"]

  return { get, history, stats, awaitCompletion }
}
