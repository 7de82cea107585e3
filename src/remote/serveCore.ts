/**
 * The server's handlers of the queue core's operations (`src/queue/core.ts`): what a client in
 * another process sends for the operations that carry a definition. Everything is checked here,
 * at the edge, with the queue's own rules, before the core sees it (the core trusts its callers):
 * a definition's settings as `Job.define` checks them, options as `enqueue`, `claim`, `nack` and
 * `schedule` check them, effects as a settlement checks them, sizes against the limits. A claim
 * is known by its job's id and its lease's token; the writer settles the record it holds for it
 * (a client cannot name another job's payload object).
 *
 * @internal
 */
import { Effect } from "effect"
import type { InvalidOption } from "../InvalidOption.ts"
import * as Rules from "../internal/options.ts"
import { checked } from "../internal/options.ts"
import { ClaimLost, type InvalidQueueName } from "../JobQueueError.ts"
import { ValueTooLarge } from "../KvError.ts"
import { maxResultBytes } from "../queue/codecs.ts"
import type * as Core from "../queue/core.ts"
import type * as Effects from "../queue/effects.ts"
import * as QueueOptions from "../queue/options.ts"
import { userWrites } from "../queue/userKv.ts"
import type { JobSettings } from "../queue/wire.ts"
import { fromWireOptions, toWireHeld } from "./convert.ts"
import { maxClaimPayloadBytes } from "./protocol.ts"
import type * as Protocol from "./protocol.ts"

/** The outcome of one item of a batch (see `Protocol.Outcome`). */
type Outcome<A, E> = { readonly _tag: "Ok"; readonly value: A } | { readonly _tag: "Failed"; readonly error: E }

const outcomeOf = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<Outcome<A, E>> =>
  Effect.match(effect, {
    onSuccess: (value) => ({ _tag: "Ok", value }) as const,
    onFailure: (error) => ({ _tag: "Failed", error }) as const
  })

/** The core's handlers over what the queue of this process serves. */
export const make = ({ core, held }: Core.Served) => {
  /** The claim the writer holds for `ref`, or `ClaimLost`. */
  const claimOf = (ref: typeof Protocol.ClaimRef.Type) =>
    Effect.suspend(() => {
      const claim = held(ref.id, ref.token)
      return claim === undefined ? Effect.fail(new ClaimLost({ id: ref.id })) : Effect.succeed(claim)
    })

  /** Wire enqueue options, checked, as the core takes them. */
  const checkedOptions = (options: typeof Protocol.EnqueueOptions.Type) =>
    Effect.suspend(() => {
      const local = fromWireOptions(options)
      return Effect.as(checked(QueueOptions.enqueueOptionsError(local)), local)
    })

  /** A wire job's settings and options, checked; the options as the core takes them. */
  const checkedJob = (settings: JobSettings, options: typeof Protocol.EnqueueOptions.Type) =>
    Effect.andThen(checked(QueueOptions.settingsError(settings)), checkedOptions(options))

  /** Wire effects checked as a settlement checks them. */
  const checkedEffects = (effects: typeof Protocol.Effects.Type | undefined) =>
    Effect.gen(function*() {
      if (effects === undefined) return undefined
      const enqueue = yield* Effect.forEach(effects.enqueue, ({ options, payload, settings }) =>
        Effect.map(checkedJob(settings, options), (local) => [settings, payload, local] as const))
      const writes = yield* userWrites("", Object.fromEntries(effects.kv.map(({ key, value }) => [key, value])), effects.kvDelete)
      return { enqueue, writes } satisfies Effects.Encoded
    })

  /**
   * Runs the items of a batch at once (they share the writer's group commit), each with its
   * settings, which are checked once a batch; answers an outcome per item, in order.
   */
  const batch = <I extends { readonly settings: number }, A, E>(
    { items, settings }: { readonly settings: ReadonlyArray<JobSettings>; readonly items: ReadonlyArray<I> },
    run: (settings: JobSettings, item: I) => Effect.Effect<A, E>
  ): Effect.Effect<Array<Outcome<A, E | InvalidOption | InvalidQueueName>>> => {
    const errors = settings.map(QueueOptions.settingsError)
    const runItem = (item: I) =>
      Effect.suspend((): Effect.Effect<A, E | InvalidOption | InvalidQueueName> => {
        const itemSettings = settings[item.settings]
        if (itemSettings === undefined) {
          return Effect.fail(Rules.invalid("settings", item.settings, "must be the index of one of the batch's settings"))
        }
        const error = errors[item.settings]
        return error === undefined ? run(itemSettings, item) : Effect.fail(error)
      })
    return Effect.forEach(items, (item) => outcomeOf(runItem(item)), { concurrency: "unbounded" })
  }

  /**
   * The claimed jobs with their payloads, as many as fit `maxClaimPayloadBytes` (one at least);
   * the others are given back (released) for the next claim, so that an answer stays a message
   * the client takes.
   */
  const boundedAnswer = (jobs: ReadonlyArray<Core.HeldJob>) =>
    Effect.gen(function*() {
      const answer: Array<typeof Protocol.HeldJob.Type> = []
      let bytes = 0
      for (const [i, job] of jobs.entries()) {
        const wire = yield* toWireHeld(job)
        const size = wire.payload._tag === "Read" ? wire.payload.bytes.length : 0
        if (answer.length > 0 && bytes + size > maxClaimPayloadBytes) {
          yield* Effect.forEach(jobs.slice(i), (rest) => Effect.ignore(core.release(rest)), { discard: true })
          break
        }
        bytes += size
        answer.push(wire)
      }
      return answer
    })

  const millisError = (option: string, millis: number) => Rules.number(option, millis, 0, Rules.maxDurationMillis)

  return {
    Enqueue: (request: typeof Protocol.EnqueueBatch.Type) =>
      batch(request, (settings, { options, payload }) =>
        Effect.flatMap(checkedOptions(options), (local) => core.enqueue(settings, payload, local))),
    EnqueueBatch: ({ payloads, settings }: { readonly settings: JobSettings; readonly payloads: ReadonlyArray<Uint8Array> }) =>
      Effect.andThen(checked(QueueOptions.settingsError(settings)), core.enqueueBatch(settings, payloads)),
    Claim: ({ leaseMillis, max, queue, waitMillis }: { readonly queue: string; readonly max: number; readonly leaseMillis: number; readonly waitMillis?: number }) =>
      Effect.andThen(
        checked(
          QueueOptions.queueNameError(queue) ??
            Rules.integer("max", max, 0, Rules.maxCount) ??
            millisError("leaseMillis", leaseMillis) ??
            Rules.optional(waitMillis, (w) => Rules.number("waitMillis", w, 0, Infinity))
        ),
        Effect.flatMap(core.claim(queue, max, leaseMillis, waitMillis ?? Infinity, undefined, true), boundedAnswer)
      ),
    Ack: (request: typeof Protocol.AckBatch.Type) =>
      batch(request, (settings, { claim, effects, result }) =>
        Effect.gen(function*() {
          if (result !== undefined && result.length > maxResultBytes) {
            return yield* new ValueTooLarge({ what: "value", size: result.length, limit: maxResultBytes })
          }
          const encoded = yield* checkedEffects(effects)
          yield* core.ack(yield* claimOf(claim), settings, result, encoded)
        })),
    Nack: ({ claim, delayMillis, effects, error }: {
      readonly claim: typeof Protocol.ClaimRef.Type
      readonly error: string
      readonly delayMillis: number
      readonly effects?: typeof Protocol.Effects.Type
    }) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.reasonError("error", error) ?? millisError("delayMillis", delayMillis))
        const encoded = yield* checkedEffects(effects)
        return yield* core.nack(yield* claimOf(claim), error, delayMillis, encoded)
      }),
    DeadLetter: ({ claim, effects, reason }: {
      readonly claim: typeof Protocol.ClaimRef.Type
      readonly reason: string
      readonly effects?: typeof Protocol.Effects.Type
    }) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.reasonError("reason", reason))
        const encoded = yield* checkedEffects(effects)
        yield* core.deadLetter(yield* claimOf(claim), reason, encoded)
      }),
    Release: ({ claim }: { readonly claim: typeof Protocol.ClaimRef.Type }) => Effect.flatMap(claimOf(claim), core.release),
    Discard: ({ claim }: { readonly claim: typeof Protocol.ClaimRef.Type }) => Effect.flatMap(claimOf(claim), core.discard),
    ExtendLease: ({ claim, millis }: { readonly claim: typeof Protocol.ClaimRef.Type; readonly millis: number }) =>
      Effect.andThen(checked(millisError("millis", millis)), Effect.flatMap(claimOf(claim), (c) => core.extendLease(c, millis))),
    Schedule: ({ options, payload, settings }: {
      readonly settings: JobSettings
      readonly payload: Uint8Array
      readonly options: typeof Protocol.ScheduleOptions.Type
    }) =>
      Effect.andThen(
        checked(QueueOptions.settingsError(settings) ?? QueueOptions.scheduleOptionsError(options)),
        core.schedule(settings, payload, options)
      )
  }
}
