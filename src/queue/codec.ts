/**
 * The queue's operations that carry a job definition, over a `Core` (`core.ts`): the definition's
 * Schemas encode payloads, results and follow-ups before they reach the core and decode claims
 * after (old payload versions through the definition's migrations), its backoff chooses a retry's
 * delay, and every argument is checked here first (`InvalidOption` and the like, nothing sent).
 * The same code serves a queue in this process and one reached over a connection: only the core
 * differs.
 *
 * A claim whose payload does not decode (or whose payload object is gone or damaged, or whose
 * stored version does not migrate) is dead-lettered with why, never returned; if that leaves
 * nothing while jobs were there, it claims again, so a bad job never makes a caller wait while
 * good ones are pending.
 *
 * @internal
 */
import { Cause, Clock, Duration, Effect } from "effect"
import * as Rules from "../internal/options.ts"
import { checked } from "../internal/options.ts"
import * as Job from "../Job.ts"
import type { InvalidOption } from "../InvalidOption.ts"
import type { Claim, ClaimOptions, QueueError, Service } from "../JobQueue.ts"
import type { InvalidQueueName } from "../JobQueueError.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import type { Core, HeldJob } from "./core.ts"
import type * as Effects from "./effects.ts"
import * as QueueOptions from "./options.ts"
import type { Payloads } from "./payloads.ts"
import { settingsOf } from "./wire.ts"

/** The definition-carrying operations of a queue over `core`. */
export const make = (
  core: Core,
  /** A job's payload encoded with its definition, the definition and the options checked first. */
  encodeJob: Effects.Enqueuing["encode"],
  codecs: Pick<Payloads, "encodePayload" | "decodeBytes" | "encodeResult">,
  effects: Pick<Effects.Effects, "encode">,
  random: () => number
) => {
  const { decodeBytes, encodePayload, encodeResult } = codecs

  const enqueue: Service["enqueue"] = (definition, payload, options) =>
    Effect.flatMap(encodeJob(definition, payload, options), (encoded) => core.enqueue(settingsOf(definition), encoded, options))

  const enqueueBatch: Service["enqueueBatch"] = (definition, payloads) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.enqueueBatchError(definition, payloads))
      const encoded = yield* Effect.forEach(payloads, (p) => encodePayload(definition, p))
      return yield* core.enqueueBatch(settingsOf(definition), encoded)
    })

  /** A held job decoded with the definition; undefined when it was dead-lettered instead. */
  const decoded = <A, I>(definition: Job.Definition<A, I>, held: HeldJob): Effect.Effect<Claim<A> | undefined, ObjectStoreError> => {
    const { cancelled, record, token } = held
    const decode = Effect.flatMap(held.payload, (bytes) => decodeBytes(definition, record, bytes))
    return Effect.flatMap(Effect.exit(decode), (exit): Effect.Effect<Claim<A> | undefined, ObjectStoreError> => {
      if (exit._tag === "Success") {
        return Effect.succeed({ job: { ...record, payload: exit.value }, record, token, definition, cancelled })
      }
      const failure = exit.cause.reasons.find(Cause.isFailReason)?.error
      // the store failing past its retries: the claims of the call stay taken until their leases expire
      if (failure?._tag === "ObjectStoreError") return Effect.fail(failure)
      const reason = failure?._tag === "PayloadMissing"
        ? `payload object ${failure.key} is missing`
        : failure?._tag === "Corrupt"
        ? `payload object ${failure.key} is corrupt: ${failure.detail}`
        : failure?._tag === "PayloadVersionError"
        ? failure.message // names the stored and current versions and the step that failed
        : `payload does not decode: ${String(exit.cause)}`
      return Effect.as(Effect.ignore(core.deadLetter(held, reason, undefined)), undefined)
    })
  }

  // A hot path, like enqueue and ack: plain functions over a few combinators rather than a
  // generator (each step through the runtime costs).
  const claim = <A, I>(
    definition: Job.Definition<A, I>,
    claimOptions?: ClaimOptions
  ): Effect.Effect<ReadonlyArray<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError> => {
      const invalid = QueueOptions.claimError(definition, claimOptions)
      if (invalid !== undefined) return Effect.fail(invalid)
      const max = Math.floor(claimOptions?.max ?? 1)
      if (max === 0) return Effect.succeed([])
      const lease = Duration.toMillis(claimOptions?.lease === undefined ? definition.leaseDuration : Duration.fromInputUnsafe(claimOptions.lease))
      const wait = claimOptions?.wait === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(claimOptions.wait))
      const until = claimOptions?.until
      const attempt = (waitMillis: number, deadline: number): Effect.Effect<Array<Claim<A>>, QueueError | ObjectStoreError> =>
        Effect.flatMap(core.claim(definition.queue, max, lease, waitMillis, until), (held) => {
          if (held.length === 0) return Effect.succeed([])
          const claims = held.length === 1
            ? Effect.map(decoded(definition, held[0]!), (c) => (c === undefined ? [] : [c]))
            : Effect.map(Effect.forEach(held, (h) => decoded(definition, h)), (cs) => cs.filter((c) => c !== undefined))
          // every job taken was dead-lettered: look again, for what is left of the wait (a bad
          // job never hides good ones)
          return Effect.flatMap(claims, (good) =>
            good.length > 0
              ? Effect.succeed(good)
              : Effect.flatMap(Clock.currentTimeMillis, (now) => attempt(Math.max(0, deadline - now), deadline)))
        })
      return wait <= 0 ? attempt(0, 0) : Effect.flatMap(Clock.currentTimeMillis, (now) => attempt(wait, now + wait))
    })

  const ack: Service["ack"] = (claim, options) => {
    const settings = settingsOf(claim.definition)
    return options === undefined ? core.ack(claim, settings, undefined, undefined) : Effect.gen(function*() {
      yield* checked(Rules.record("options", options))
      const result = options.result === undefined ? undefined : yield* encodeResult(claim.definition, options.result)
      yield* core.ack(claim, settings, result, yield* effects.encode("", options))
    })
  }

  const nack: Service["nack"] = (claim, error, nackOptions) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.nackError(error, nackOptions))
      const jitter = random()
      // the delay (the backoff's, checked), chosen before anything is written: the claim holds its attempts
      const delay = nackOptions?.delay !== undefined
        ? Duration.toMillis(Duration.fromInputUnsafe(nackOptions.delay))
        : claim.record.attempts >= claim.record.maxAttempts
        ? 0
        : QueueOptions.retryDelay(claim.definition.backoff, claim.record.attempts, (b, attempt) => Job.delayOf(b, attempt, jitter))
      if (typeof delay !== "number") return yield* delay
      return yield* core.nack(claim, error, delay, yield* effects.encode("effects", nackOptions?.effects))
    })

  const deadLetter: Service["deadLetter"] = (claim, reason, options) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.reasonError("reason", reason) ?? Rules.optional(options, (o) => Rules.record("options", o)))
      yield* core.deadLetter(claim, reason, yield* effects.encode("effects", options?.effects))
    })

  const extendLease: Service["extendLease"] = (claim, duration) =>
    Effect.andThen(
      checked(QueueOptions.extendLeaseError(duration)),
      Effect.suspend(() => core.extendLease(claim, Duration.toMillis(Duration.fromInputUnsafe(duration))))
    )

  return { enqueue, enqueueBatch, claim, ack, nack, deadLetter, release: core.release, discard: core.discard, extendLease }
}
