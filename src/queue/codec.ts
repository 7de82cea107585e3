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
import { Cause, Clock, Duration, Effect, Option } from "effect"
import type { JobRecord, JobStatus } from "../../schema/JobRecord.ts"
import type { InvalidOption } from "../InvalidOption.ts"
import * as Rules from "../internal/options.ts"
import { checked } from "../internal/options.ts"
import * as Job from "../Job.ts"
import type {
  AwaitOptions,
  Claim,
  ClaimOptions,
  CompletionOutcome,
  DecodedJob,
  EnqueueOptions,
  FollowUp,
  JobPage,
  ListedJob,
  ListedRecord,
  ListOptions,
  PayloadStoreError,
  QueueError,
  ReadError,
  ResultOutcome,
  Service
} from "../JobQueue.ts"
import { InvalidPayload, type InvalidQueueName } from "../JobQueueError.ts"
import type { ValueTooLarge } from "../KvError.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import type * as Codecs from "./codecs.ts"
import type { Core, HeldJob } from "./core.ts"
import type * as Effects from "./effects.ts"
import type { PrepareError } from "./enqueue.ts"
import * as QueueOptions from "./options.ts"
import { userWrites } from "./userKv.ts"
import { settingsOf } from "./wire.ts"

/** `InvalidOption` when the job is not of the definition's queue (read with another job's definition). */
const queueMismatch = (definition: Job.Definition<any, any, any>, record: JobRecord) =>
  record.queue === definition.queue
    ? undefined
    : Rules.invalid("definition", definition.queue, `job ${record.id} is in queue ${JSON.stringify(record.queue)}`)

/** The id-level reads the definition forms of `get` and `awaitCompletion` decode on top of. */
export interface Reads {
  /** The record as stored, its payload read back when offloaded. */
  readonly getRecord: (id: string) => Effect.Effect<Option.Option<JobRecord>, PayloadStoreError | ReadError>
  readonly awaitEncoded: (id: string, options: AwaitOptions | undefined) => Effect.Effect<CompletionOutcome, InvalidOption | ReadError>
  /** A page of a queue's jobs in one state as `getRecord` returns them (`payloadError` when the payload could not be read). */
  readonly listEncoded: (
    queue: string,
    state: JobStatus,
    options?: ListOptions
  ) => Effect.Effect<JobPage<ListedRecord>, InvalidQueueName | InvalidOption | PayloadStoreError | ReadError>
}

/** The definition-carrying operations of a queue over `core`, with `codecs` and `reads`. */
export const make = (core: Core, codecs: Codecs.Codecs, reads: Reads, random: () => number) => {
  const { decodeBytes, decodeResult, encodePayload, encodeResult } = codecs

  /** A job's payload encoded with its definition, the definition and the options checked first. */
  const encodeJob = <A, I>(definition: Job.Definition<A, I>, payload: A, options: EnqueueOptions | undefined): Effect.Effect<Uint8Array, PrepareError> =>
    Effect.suspend((): Effect.Effect<Uint8Array, PrepareError> => {
      const invalid = QueueOptions.enqueueError(definition, options)
      return invalid !== undefined ? Effect.fail(invalid) : encodePayload(definition, payload)
    })

  /**
   * Checks `effects` (the option named `option`; `""`: the operation's own options, as ack's
   * are) and encodes its follow-ups' payloads with their definitions: `InvalidOption` for a bad
   * shape, key or value, the errors of `enqueue` for a follow-up that it would refuse.
   */
  const encodeEffects = (option: string, effects: unknown): Effect.Effect<Effects.Encoded | undefined, PrepareError | ValueTooLarge> =>
    Effect.suspend((): Effect.Effect<Effects.Encoded | undefined, PrepareError | ValueTooLarge> => {
      if (effects === undefined) return Effect.succeed(undefined)
      // ack's effects are its own options ("" here): `kv`, not `.kv`; nack's are `effects.kv`
      const prefix = option === "" ? "" : `${option}.`
      const shape = Rules.record(option === "" ? "options" : option, effects) ??
        followUpsError(`${prefix}enqueue`, (effects as { enqueue?: unknown }).enqueue)
      if (shape !== undefined) return Effect.fail(shape)
      const { enqueue = [], kv, kvDelete } = effects as { enqueue?: ReadonlyArray<FollowUp>; kv?: unknown; kvDelete?: unknown }
      return Effect.flatMap(userWrites(prefix, kv, kvDelete), (writes) =>
        Effect.map(
          Effect.forEach(enqueue, ([definition, payload, options]) =>
            Effect.map(encodeJob(definition, payload, options), (encoded) => [settingsOf(definition), encoded, options] as const)),
          (followUps) => ({ enqueue: followUps, writes })
        ))
    })

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
      const attempt = (
        waitMillis: number,
        deadline: number
      ): Effect.Effect<Array<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError> =>
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
      yield* core.ack(claim, settings, result, yield* encodeEffects("", options))
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
      return yield* core.nack(claim, error, delay, yield* encodeEffects("effects", nackOptions?.effects))
    })

  const deadLetter: Service["deadLetter"] = (claim, reason, options) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.reasonError("reason", reason) ?? Rules.optional(options, (o) => Rules.record("options", o)))
      yield* core.deadLetter(claim, reason, yield* encodeEffects("effects", options?.effects))
    })

  const extendLease: Service["extendLease"] = (claim, duration) =>
    Effect.andThen(
      checked(QueueOptions.extendLeaseError(duration)),
      Effect.suspend(() => core.extendLease(claim, Duration.toMillis(Duration.fromInputUnsafe(duration))))
    )

  /** A record decoded with its definition: its payload (read back already when offloaded) and its result. */
  const decodeJob = <A, I, R>(definition: Job.Definition<A, I, R>, record: JobRecord) =>
    Effect.gen(function*() {
      yield* checked(queueMismatch(definition, record))
      const payload = yield* decodeBytes(definition, record, record.payload).pipe(
        Effect.mapError((error) => new InvalidPayload({ detail: `payload of job ${record.id} does not decode: ${error.message}` }))
      )
      const result = yield* decodeResult(definition, record)
      const { result: _, ...rest } = record
      return { ...rest, payload, result } satisfies DecodedJob<A, R>
    })

  const get = ((first: string | Job.Definition<any, any, any>, id?: string) =>
    typeof first === "string" ? reads.getRecord(first) : Effect.gen(function*() {
      yield* checked(QueueOptions.definitionError(first) ?? Rules.text("id", id))
      const record = yield* reads.getRecord(id!)
      return Option.isNone(record) ? Option.none() : Option.some(yield* decodeJob(first, record.value))
    })) as Service["get"]

  /** `awaitCompletion` by id, the result of a completed job decoded with its definition. */
  const awaitDecoded = <A, I, R>(definition: Job.Definition<A, I, R>, id: string, waitOptions: AwaitOptions | undefined) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.definitionError(definition) ?? Rules.text("id", id))
      const outcome = yield* reads.awaitEncoded(id, waitOptions)
      if (outcome._tag !== "Completed") return outcome
      if (Option.isNone(outcome.job)) return { ...outcome, result: Option.none<R>() } satisfies ResultOutcome<R>
      yield* checked(queueMismatch(definition, outcome.job.value))
      const result = yield* decodeResult(definition, outcome.job.value)
      return { ...outcome, result } satisfies ResultOutcome<R>
    })

  const awaitCompletion = ((first: string | Job.Definition<any, any, any>, second?: string | AwaitOptions, third?: AwaitOptions) =>
    typeof first === "string"
      ? reads.awaitEncoded(first, second as AwaitOptions | undefined)
      : awaitDecoded(first, second as string, third)) as Service["awaitCompletion"]

  /** A listed job with its payload decoded, or as listed with `payloadError` when it does not decode. */
  const decodeListed = <A, I>(definition: Job.Definition<A, I>, listed: ListedRecord): Effect.Effect<ListedJob<A>> =>
    listed.payloadError !== undefined
      ? Effect.succeed(listed as ListedJob<A>)
      : Effect.match(decodeBytes(definition, listed, listed.payload), {
        onSuccess: (payload): ListedJob<A> => {
          const { payloadError: _, ...record } = listed
          return { ...record, payload }
        },
        onFailure: (error): ListedJob<A> => ({ ...listed, payloadError: `payload does not decode: ${error.message}` })
      })

  const list = ((target: string | Job.Definition<any, any>, state: JobStatus, options?: ListOptions) =>
    typeof target === "string" ? reads.listEncoded(target, state, options) : Effect.gen(function*() {
      yield* checked(QueueOptions.listError(target, state, options))
      const page = yield* reads.listEncoded(target.queue, state, options)
      return { jobs: yield* Effect.forEach(page.jobs, (job) => decodeListed(target, job)), cursor: page.cursor }
    })) as Service["list"]

  const schedule: Service["schedule"] = (definition, options) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.scheduleError(definition, options))
      const { payload, ...rest } = options
      return yield* core.schedule(settingsOf(definition), yield* encodePayload(definition, payload), rest)
    })

  return {
    enqueue,
    enqueueBatch,
    claim,
    ack,
    nack,
    deadLetter,
    release: core.release,
    discard: core.discard,
    extendLease,
    get,
    awaitCompletion,
    list,
    schedule
  }
}

/**
 * `enqueue: [[definition, payload, options?], …]` of a settlement's effects. A follow-up's options
 * are `enqueue`'s but `kv` (the settlement has its own): given anyway, it is refused rather than
 * dropped.
 */
const followUpsError = (option: string, followUps: unknown): InvalidOption | undefined => {
  if (followUps === undefined) return undefined
  if (!Array.isArray(followUps)) return Rules.invalid(option, followUps, "must be an array of [definition, payload, options?]")
  return followUps.reduce<InvalidOption | undefined>(
    (error, followUp, i) =>
      error ?? (Array.isArray(followUp) && (followUp.length === 2 || followUp.length === 3)
        ? kvOfFollowUpError(`${option}[${i}]`, followUp[2])
        : Rules.invalid(`${option}[${i}]`, followUp, "must be [definition, payload, options?]")),
    undefined
  )
}

const kvOfFollowUpError = (option: string, options: unknown): InvalidOption | undefined =>
  typeof options === "object" && options !== null && (options as { kv?: unknown }).kv !== undefined
    ? Rules.invalid(`${option}.kv`, (options as { kv?: unknown }).kv, "is not taken by a follow-up: give the settlement's kv")
    : undefined
