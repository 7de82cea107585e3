/**
 * The rules of every option of the job queue's public operations, in one place: queue names, job
 * ids, `Job.define` and its backoff policies, `enqueue`, `schedule`, `claim`, `nack`, `extendLease`,
 * `awaitCompletion`, `JobQueue.Options` and `Worker.Options`. Each function returns the error an
 * input breaks (`InvalidOption`, `InvalidQueueName`, `InvalidJobId`), or `undefined`; the
 * operations call them first, before reading the clock or writing anything.
 *
 * **The contract.** A value these checks accept is one the operation can store and read back:
 * priorities are integers from 0 to 2^32 − 1 (the u32 of the pending key), attempt counts are
 * integers from 1 to 2^31 − 1, instants and delays are finite and within the range of a `Date`
 * (exact in the u64 time fields of the keys), dedup keys, headers and failure reasons are
 * well-formed strings (`schema/JobRecord.ts` decodes nothing else). Values are typed `unknown`
 * here on purpose: callers from plain JavaScript can pass anything.
 *
 * @internal
 */
import { Cron, DateTime, Duration, Effect, Option, Schema } from "effect"
import type { InvalidOption } from "../InvalidOption.ts"
import * as Rules from "../internal/options.ts"
import type { Backoff, Definition, Migration } from "../Job.ts"
import { InvalidJobId, InvalidQueueName } from "../JobQueueError.ts"

const { duration, instant, integer, invalid, optional, record, maxCount } = Rules

/** The highest priority number: the pending key holds it as a u32. */
export const maxPriority = 2 ** 32 - 1

/** Named priorities (`Job.Priority` is this object). */
export const priorities = { high: 100, normal: 1000, low: 10000 } as const


// ---- queue names and job ids ----------------------------------------------------------------

/** The longest queue name, in characters (all ASCII). */
export const maxQueueName = 128
const queueNamePattern = /^[A-Za-z0-9._:-]+(?:\/[A-Za-z0-9._:-]+)*$/
const validQueues = new Set<string>()

/**
 * Why a queue name is refused, or undefined. A name is 1 to 128 characters of
 * `[A-Za-z0-9._:-]` and `/`, where `/` separates non-empty segments none of which is `.` or
 * `..` (names can nest, `mail/eu`, and never climb out, `../x`). Valid names are cached.
 */
export const queueNameError = (queue: unknown): InvalidQueueName | undefined => {
  if (typeof queue === "string" && validQueues.has(queue)) return undefined
  const reason = queueNameProblem(queue)
  if (reason !== undefined) return new InvalidQueueName({ queue: typeof queue === "string" ? queue : Rules.render(queue), reason })
  if (validQueues.size < 10_000) validQueues.add(queue as string)
  return undefined
}

const queueNameProblem = (queue: unknown): string | undefined => {
  if (typeof queue !== "string") return "must be a string"
  if (queue.length === 0) return "must not be empty"
  if (queue.length > maxQueueName) return `must be at most ${maxQueueName} characters`
  if (!queueNamePattern.test(queue)) return "must be [A-Za-z0-9._:-] segments separated by single '/'"
  if (queue.split("/").some((segment) => segment === "." || segment === "..")) return "must not have a '.' or '..' segment"
  return undefined
}

const idPattern = /^[A-Za-z0-9_-]{1,128}$/

/** Why a job id of the caller's is refused (1 to 128 characters of `[A-Za-z0-9_-]`), or undefined. */
export const jobIdError = (id: unknown): InvalidJobId | undefined =>
  id === undefined || (typeof id === "string" && idPattern.test(id))
    ? undefined
    : new InvalidJobId({ id: typeof id === "string" ? id : Rules.render(id), reason: "1 to 128 characters of [A-Za-z0-9_-]" })

// ---- definitions and backoff ----------------------------------------------------------------

/** A priority: one of the names, or an integer from 0 to 2^32 − 1. */
export const priorityError = (option: string, value: unknown): InvalidOption | undefined =>
  typeof value === "string"
    ? (Object.hasOwn(priorities, value) ? undefined : invalid(option, value, "must be \"high\", \"normal\", \"low\" or a number"))
    : integer(option, value, 0, maxPriority)

/** Claims allowed before a job is dead-lettered: an integer from 1 to 2^31 − 1. */
export const maxAttemptsError = (option: string, value: unknown): InvalidOption | undefined => integer(option, value, 1, maxCount)

/** `Backoff.exponential`'s options (or an exponential backoff's fields): durations, jitter in [0, 1]. */
export const exponentialError = (option: string, options: unknown): InvalidOption | undefined =>
  optional(options, (o) =>
    record(option, o) ?? fields(o, (f) =>
      optional(f.base, (v) => duration(`${option}.base`, v)) ??
        optional(f.max, (v) => duration(`${option}.max`, v)) ??
        optional(f.jitter, (v) => Rules.number(`${option}.jitter`, v, 0, 1))))

/** `Backoff.fixed`'s delay. */
export const fixedError = (option: string, delay: unknown): InvalidOption | undefined => duration(`${option}.delay`, delay)

/** `Backoff.linear`'s options (or a linear backoff's fields): a step and an optional cap. */
export const linearError = (option: string, options: unknown): InvalidOption | undefined =>
  record(option, options) ?? fields(options, (f) =>
    duration(`${option}.step`, f.step) ?? optional(f.max, (v) => duration(`${option}.max`, v)))

/** A custom backoff: a function of the attempt number. */
export const customError = (option: string, delay: unknown): InvalidOption | undefined => Rules.func(option, delay)

/** `check` over the fields of `value` (an object: `record` was checked first). */
const fields = <E>(value: unknown, check: (fields: Readonly<Record<string, unknown>>) => E | undefined): E | undefined =>
  check(value as Readonly<Record<string, unknown>>)

/** A backoff policy as `define` takes it: one the `Backoff` constructors build, or a function. */
export const backoffError = (option: string, backoff: unknown): InvalidOption | undefined => {
  if (typeof backoff === "function") return undefined
  const b = backoff as Partial<Backoff> | null
  switch (typeof b === "object" && b !== null ? b._tag : undefined) {
    case "Exponential":
      return exponentialError(option, b)
    case "Fixed":
      return fixedError(option, (b as { readonly delay: unknown }).delay)
    case "Linear":
      return linearError(option, b)
    case "None":
      return undefined
    case "Custom":
      return customError(option, (b as { readonly delay: unknown }).delay)
    default:
      return invalid(option, backoff, "must be a Job.Backoff policy or a function of the attempt")
  }
}

/** A payload schema. */
const schemaError = (option: string, value: unknown): InvalidOption | undefined =>
  Schema.isSchema(value) ? undefined : invalid(option, value, "must be a Schema")

// ---- versioned payloads --------------------------------------------------------------------

/** The migration steps `Job.migration` made: only these are taken by `define`. */
const madeMigrations = new WeakSet<object>()

/** Remembers a step as made by `Job.migration` (its fields checked) and returns it, frozen: checked once, it stays so. */
export const registerMigration = <M extends Migration>(migration: M): M => {
  const frozen = Object.freeze(migration)
  madeMigrations.add(frozen)
  return frozen
}

/** A payload version: an integer from 1 to 2^31 − 1. */
export const versionError = (option: string, value: unknown): InvalidOption | undefined => integer(option, value, 1, maxCount)

/** `Job.migration(from, schema, f)`: a version below the highest one, a Schema, a function. */
export const migrationError = (from: unknown, schema: unknown, f: unknown): InvalidOption | undefined =>
  integer("from", from, 1, maxCount - 1) ?? schemaError("schema", schema) ?? Rules.func("f", f)

/**
 * A definition's migration steps, for a payload of `version`: an array of steps made by
 * `Job.migration`, in ascending order of `from`, none from the same version as another, each
 * below `version`, with no hole between them and the last one from `version − 1`. (An older
 * step may be missing: jobs of that version are then dead-lettered at claim.)
 */
export const migrationsError = (option: string, migrations: unknown, version: number): InvalidOption | undefined => {
  if (!Array.isArray(migrations)) return invalid(option, migrations, "must be an array of Job.migration steps")
  for (let i = 0; i < migrations.length; i++) {
    const m: unknown = migrations[i]
    if (typeof m !== "object" || m === null || !madeMigrations.has(m)) {
      return invalid(`${option}[${i}]`, m, "must be made by Job.migration")
    }
    const from = (m as Migration).from
    if (from >= version) return invalid(`${option}[${i}].from`, from, `must be below version (${version})`)
    if (i === 0) continue
    const previous = (migrations[i - 1] as Migration).from
    if (from === previous) return invalid(`${option}[${i}].from`, from, `duplicates ${option}[${i - 1}] (from ${previous})`)
    if (from < previous) return invalid(`${option}[${i}].from`, from, `must be in ascending order (after ${previous})`)
    if (from > previous + 1) {
      return invalid(`${option}[${i}].from`, from, `leaves a hole: no migration from version ${previous + 1}`)
    }
  }
  const last = migrations.length === 0 ? undefined : (migrations[migrations.length - 1] as Migration).from
  return last === undefined || last === version - 1
    ? undefined
    : invalid(option, migrations.map((m: Migration) => m.from), `leaves a hole: no migration from version ${version - 1} (the chain must reach version ${version})`)
}

/** `version` and `migrations` of a definition or of `define`'s options, each optional. */
const versionsError = (prefix: string, version: unknown, migrations: unknown): InvalidOption | undefined =>
  optional(version, (v) => versionError(`${prefix}version`, v)) ??
    optional(migrations, (m) => migrationsError(`${prefix}migrations`, m, (version as number | undefined) ?? 1))

/** `Job.define(queue, options)`: the name, then every option given. */
export const defineError = (queue: unknown, options: unknown): InvalidQueueName | InvalidOption | undefined =>
  queueNameError(queue) ?? record("options", options) ?? fields(options, (o) =>
    schemaError("payload", o.payload) ??
      optional(o.maxAttempts, (v) => maxAttemptsError("maxAttempts", v)) ??
      optional(o.leaseDuration, (v) => duration("leaseDuration", v)) ??
      optional(o.priority, (v) => priorityError("priority", v)) ??
      optional(o.backoff, (v) => backoffError("backoff", v)) ??
      optional(o.keepDone, (v) => duration("keepDone", v)) ??
      optional(o.deadRetention, (v) => duration("deadRetention", v)) ??
      optional(o.result, (v) => schemaError("result", v)) ??
      optional(o.resultRetention, (v) => duration("resultRetention", v)) ??
      versionsError("", o.version, o.migrations))

const checkedDefinitions = new WeakSet<object>()

/**
 * A definition as the operations get it: what `define` built, or an object made by hand (every
 * field checked as `define` checks its options). Definitions that passed are remembered.
 */
export const definitionError = (definition: Definition<any, any>): InvalidQueueName | InvalidOption | undefined => {
  if (checkedDefinitions.has(definition)) return undefined
  const error = record("definition", definition) ?? fields(definition, (d) =>
    queueNameError(d.queue) ??
      schemaError("definition.payload", d.payload) ??
      maxAttemptsError("definition.maxAttempts", d.maxAttempts) ??
      duration("definition.leaseDuration", d.leaseDuration) ??
      integer("definition.priority", d.priority, 0, maxPriority) ??
      backoffError("definition.backoff", d.backoff) ??
      optional(d.keepDone, (v) => duration("definition.keepDone", v)) ??
      duration("definition.deadRetention", d.deadRetention) ??
      optional(d.result, (v) => schemaError("definition.result", v)) ??
      // definitions built by hand before results existed have no retention: the default applies
      optional(d.resultRetention, (v) => duration("definition.resultRetention", v)) ??
      versionsError("definition.", d.version, d.migrations))
  if (error === undefined) checkedDefinitions.add(definition)
  return error
}

/**
 * The delay in ms before retry `attempt` by `backoff`, or the `InvalidOption` when a custom
 * policy throws or returns something that is not a duration a job can wait (NaN, negative,
 * infinite, over the maximum). The custom function is called once.
 */
export const retryDelay = (
  backoff: Backoff,
  attempt: number,
  delayOf: (backoff: Backoff, attempt: number) => Duration.Duration
): number | InvalidOption => {
  if (backoff._tag !== "Custom") {
    const millis = Duration.toMillis(delayOf(backoff, attempt))
    return Rules.delayMillis("backoff", millis) ?? millis
  }
  let raw: unknown
  try {
    raw = backoff.delay(attempt)
  } catch (error) {
    return invalid("backoff", backoff.delay, `threw at attempt ${attempt}: ${String(error)}`)
  }
  return duration(`backoff(${attempt})`, raw) ?? Duration.toMillis(Duration.fromInputUnsafe(raw as Duration.Input))
}

// ---- operations -------------------------------------------------------------------------------

/** The longest dedup key, in UTF-8 bytes (it is part of a KV key, at most 4 KiB). */
export const maxDedupKey = 1024

const headersError = (headers: unknown): InvalidOption | undefined =>
  record("headers", headers) ?? Object.entries(headers as object).reduce<InvalidOption | undefined>(
    (error, [name, value]) => error ?? Rules.text(`headers[${JSON.stringify(name)}]`, value),
    undefined
  )

/** The options of `enqueue`, given or not. */
export const enqueueOptionsError = (options: unknown): InvalidOption | InvalidJobId | undefined =>
  optional(options, (o) =>
    record("options", o) ?? fields(o, (f) =>
      optional(f.priority, (v) => priorityError("priority", v)) ??
        optional(f.delay, (v) => duration("delay", v)) ??
        optional(f.runAt, (v) => instant("runAt", v)) ??
        (f.delay !== undefined && f.runAt !== undefined ? invalid("delay", f.delay, "must not be given with runAt") : undefined) ??
        optional(f.dedupKey, (v) => Rules.string("dedupKey", v, 1, maxDedupKey)) ??
        optional(f.maxAttempts, (v) => maxAttemptsError("maxAttempts", v)) ??
        optional(f.headers, headersError) ??
        optional(f.kv, (v) => userWritesError("kv", v)) ??
        jobIdError(f.id)))

/** `enqueue(definition, payload, options)`. */
export const enqueueError = (definition: Definition<any, any>, options: unknown) =>
  definitionError(definition) ?? enqueueOptionsError(options)

/** `enqueueBatch(definition, payloads)`. */
export const enqueueBatchError = (definition: Definition<any, any>, payloads: unknown) =>
  definitionError(definition) ?? (Array.isArray(payloads) ? undefined : invalid("payloads", payloads, "must be an array"))

/** The longest schedule key, in UTF-8 bytes: its base64url (86 characters), `-` and a slot's epoch ms fit a job id. */
export const maxScheduleKey = 64

/** The most jobs one catch-up of a schedule enqueues. */
export const maxCatchUpLimit = 10_000

/** The missed-slot policies of a schedule. */
const missedPolicies = new Set<unknown>(["latest", "all", "none"])

/** A schedule's key: a well-formed string of 1 to `maxScheduleKey` UTF-8 bytes. */
export const scheduleKeyError = (key: unknown): InvalidOption | undefined => Rules.string("key", key, 1, maxScheduleKey)

/** A time zone `DateTime.zoneFromString` knows (an IANA name such as `Europe/Paris`, or an offset such as `+01:00`). */
const timezoneError = (value: unknown): InvalidOption | undefined =>
  typeof value !== "string"
    ? invalid("timezone", value, "must be a string")
    : Option.isNone(DateTime.zoneFromString(value))
    ? invalid("timezone", value, "must be a time zone, e.g. \"Europe/Paris\" or \"UTC\"")
    : undefined

/** A cron expression `Cron.parse` takes (5 fields, or 6 with seconds first). */
const cronError = (value: unknown): InvalidOption | undefined => {
  if (typeof value !== "string") return invalid("cron", value, "must be a string")
  const parsed = Cron.parse(value, "UTC")
  return parsed._tag === "Failure" ? invalid("cron", value, `must be a cron expression: ${parsed.failure.message}`) : undefined
}

/**
 * `schedule(definition, options)`: the definition as `enqueue` checks it, then the key, the
 * cron expression, the time zone, the missed policy, `maxCatchUp` (an integer from 1 to 10 000)
 * and the enqueue options a schedule takes (priority, maxAttempts, headers). The payload is
 * checked by encoding it.
 */
export const scheduleError = (definition: Definition<any, any>, options: unknown) =>
  definitionError(definition) ?? scheduleOptionsError(options)

/** The options of `schedule` but its payload (what a server checks of a client's). */
export const scheduleOptionsError = (options: unknown) =>
  record("options", options) ?? fields(options, (f) =>
    scheduleKeyError(f.key) ??
      cronError(f.cron) ??
      optional(f.timezone, timezoneError) ??
      optional(f.missed, (v) => (missedPolicies.has(v) ? undefined : invalid("missed", v, "must be \"latest\", \"all\" or \"none\""))) ??
      optional(f.maxCatchUp, (v) => integer("maxCatchUp", v, 1, maxCatchUpLimit)) ??
      optional(f.priority, (v) => priorityError("priority", v)) ??
      optional(f.maxAttempts, (v) => maxAttemptsError("maxAttempts", v)) ??
      optional(f.headers, headersError))

/** `claim(definition, options)`: `max` from 0, a finite `lease`, a `wait` (`Infinity`: until one arrives). */
export const claimError = (definition: Definition<any, any>, options: unknown) =>
  definitionError(definition) ?? optional(options, (o) =>
    record("options", o) ?? fields(o, (f) =>
      optional(f.max, (v) => integer("max", v, 0, maxCount)) ??
        optional(f.lease, (v) => duration("lease", v)) ??
        optional(f.wait, (v) => duration("wait", v, { infinite: true })) ??
        optional(f.until, (v) => (Effect.isEffect(v) ? undefined : invalid("until", v, "must be an Effect")))))

/** A failure reason stored with the job (`nack`'s error, `deadLetter`'s reason). */
export const reasonError = (option: string, value: unknown): InvalidOption | undefined => Rules.text(option, value)

/** `nack(claim, error, options)`. */
export const nackError = (error: unknown, options: unknown): InvalidOption | undefined =>
  reasonError("error", error) ?? optional(options, (o) =>
    record("options", o) ?? fields(o, (f) => optional(f.delay, (v) => duration("delay", v))))

/** `extendLease(claim, duration)`: a finite duration. */
export const extendLeaseError = (value: unknown): InvalidOption | undefined => duration("duration", value)

/** `awaitCompletion(id, options)`: a `timeout` (`Infinity`: none). */
export const awaitCompletionError = (options: unknown): InvalidOption | undefined =>
  optional(options, (o) => record("options", o) ?? fields(o, (f) => optional(f.timeout, (v) => duration("timeout", v, { infinite: true }))))

// ---- inspecting and managing jobs -----------------------------------------------------------

/** The states a listing takes. */
export const listStates: ReadonlyArray<string> = ["Pending", "Scheduled", "Claimed", "Done", "Dead"]

/** The most jobs of one listing page, and the default. */
export const maxListLimit = 1000
export const defaultListLimit = 100

/** A job id given as an argument (`wake`, `requeueDead`): 1 to 128 characters of `[A-Za-z0-9_-]`. */
export const idArgumentError = (id: unknown): InvalidJobId | undefined =>
  typeof id === "string" && idPattern.test(id)
    ? undefined
    : new InvalidJobId({ id: typeof id === "string" ? id : Rules.render(id), reason: "1 to 128 characters of [A-Za-z0-9_-]" })

/** What a listing is of: a definition (payloads decoded), or else a queue name. */
const listTargetError = (target: unknown): InvalidQueueName | InvalidOption | undefined =>
  typeof target === "object" && target !== null ? definitionError(target as Definition<any, any>) : queueNameError(target)

const limitError = (value: unknown): InvalidOption | undefined => integer("limit", value, 1, maxListLimit)

/** `list(queue | definition, state, { cursor, limit })`: the cursor's fit to the listing is checked by the listing. */
export const listError = (target: unknown, state: unknown, options: unknown) =>
  listTargetError(target) ??
    (typeof state === "string" && listStates.includes(state)
      ? undefined
      : invalid("state", state, `must be one of ${listStates.join(", ")}`)) ??
    optional(options, (o) =>
      record("options", o) ?? fields(o, (f) =>
        optional(f.cursor, (v) => Rules.string("cursor", v, 1, 8192)) ??
          optional(f.limit, limitError)))

/** `deadJobs(queue, { after, limit })`: `after` a job id. */
export const deadJobsError = (queue: unknown, options: unknown) =>
  queueNameError(queue) ?? optional(options, (o) =>
    record("options", o) ?? fields(o, (f) =>
      optional(f.after, (v) => (typeof v === "string" && idPattern.test(v) ? undefined : invalid("after", v, "must be a job id"))) ??
        optional(f.limit, limitError)))

/** `requeueDead(id)` or `requeueDead(queue, { all: true })`. */
export const requeueDeadError = (target: unknown, options: unknown) =>
  options === undefined
    ? idArgumentError(target)
    : queueNameError(target) ?? record("options", options) ?? fields(options, (f) =>
      f.all === true ? undefined : invalid("all", f.all, "must be true (requeueDead(id) requeues one job)"))

/**
 * `JobQueue.Options`: intervals above zero, sizes whole bytes, and an offload threshold no
 * larger than the largest payload.
 */
export const queueOptionsError = (options: unknown): InvalidOption | undefined =>
  optional(options, (o) =>
    record("options", o) ?? fields(o, (f) =>
      optional(f.reaperInterval, (v) => duration("reaperInterval", v, { positive: true })) ??
        optional(f.schedulerInterval, (v) => duration("schedulerInterval", v, { positive: true })) ??
        optional(f.offloadThreshold, (v) => integer("offloadThreshold", v, 0, maxCount)) ??
        optional(f.maxPayloadBytes, (v) => integer("maxPayloadBytes", v, 1, maxCount)) ??
        (typeof f.offloadThreshold === "number" && typeof f.maxPayloadBytes === "number" && f.offloadThreshold > f.maxPayloadBytes
          ? invalid("offloadThreshold", f.offloadThreshold, `must not be over maxPayloadBytes (${f.maxPayloadBytes})`)
          : undefined) ??
        optional(f.writerRecord, (v) => Rules.boolean("writerRecord", v)) ??
        optional(f.takeoverAfter, takeoverAfterError) ??
        optional(f.address, (v) => Rules.string("address", v, 1, maxAddressBytes))))

/** The longest address of a writer record, in UTF-8 bytes. */
export const maxAddressBytes = 1024

/** The shortest takeover time, in ms (`WriterRecord.minTakeoverAfter`: keep the two equal). */
const minTakeoverMillis = 1000

/** `takeoverAfter`: a finite duration of at least 1 second. */
const takeoverAfterError = (value: unknown): InvalidOption | undefined =>
  duration("takeoverAfter", value, { positive: true }) ??
    (Duration.toMillis(Duration.fromInputUnsafe(value as Duration.Input)) < minTakeoverMillis
      ? invalid("takeoverAfter", value, "must be at least 1 second")
      : undefined)

/**
 * `JobQueue.layerStandby`'s options: the queue's, `writerRecord` not `false` (a standby that wrote
 * no record could not be watched in turn), and `kv`, an object (its fields are checked by the KV).
 */
export const standbyOptionsError = (options: unknown): InvalidOption | undefined =>
  queueOptionsError(options) ?? optional(options, (o) =>
    fields(o, (f) =>
      (f.writerRecord === false ? invalid("writerRecord", f.writerRecord, "must not be false for a standby") : undefined) ??
        optional(f.kv, (v) => record("kv", v))))

// ---- workers ----------------------------------------------------------------------------------

/** `Worker.makePermits(size)`: an integer from 1. */
export const permitsSizeError = (size: unknown): InvalidOption | undefined => integer("size", size, 1, maxCount)

const permitsError = (permits: unknown): InvalidOption | undefined => {
  if (!Array.isArray(permits)) return invalid("permits", permits, "must be an array of Worker.makePermits limits")
  const bad = permits.findIndex((p) =>
    typeof p !== "object" || p === null || typeof p.order !== "number" || typeof p.withPermit !== "function")
  return bad < 0 ? undefined : invalid(`permits[${bad}]`, permits[bad], "must be made by Worker.makePermits")
}

const rateLimitError = (rateLimit: unknown): InvalidOption | undefined =>
  record("rateLimit", rateLimit) ?? fields(rateLimit, (f) =>
    integer("rateLimit.limit", f.limit, 1, maxCount) ?? duration("rateLimit.window", f.window, { positive: true }))

/** `Worker.run(definition, handler, options)`: the definition, the handler and every option. */
export const workerError = (definition: Definition<any, any>, handler: unknown, options: unknown) =>
  definitionError(definition) ?? Rules.func("handler", handler) ?? optional(options, (o) =>
    record("options", o) ?? fields(o, (f) =>
      optional(f.concurrency, (v) => integer("concurrency", v, 1, maxCount)) ??
        optional(f.permits, permitsError) ??
        optional(f.rateLimit, rateLimitError) ??
        optional(f.timeout, (v) => duration("timeout", v, { positive: true, infinite: true })) ??
        optional(f.drainTimeout, (v) => duration("drainTimeout", v, { infinite: true })) ??
        optional(f.batch, (v) => integer("batch", v, 1, maxCount)) ??
        optional(f.lease, (v) => duration("lease", v)) ??
        optional(f.renewEvery, (v) => duration("renewEvery", v, { positive: true })) ??
        optional(f.idleWait, (v) => duration("idleWait", v, { positive: true })) ??
        optional(f.retry, (v) => Rules.func("retry", v)) ??
        optional(f.errorSchema, (v) => schemaError("errorSchema", v))))

/** `Worker.Retry(delay)`: a finite delay. */
export const retryDecisionError = (delay: unknown): InvalidOption | undefined => optional(delay, (v) => duration("delay", v))

// ---- the user KV namespace and settlement effects --------------------------------------------

/** The longest key of the user KV namespace, in UTF-8 bytes. */
export const maxUserKey = 1024
/** The largest value of the user KV namespace, in bytes (above it: `ValueTooLarge`). */
export const maxUserValue = 256 * 1024

/** A key of the user KV namespace: a well-formed string of 1 to 1024 UTF-8 bytes. */
export const userKeyError = (option: string, key: unknown): InvalidOption | undefined => Rules.string(option, key, 1, maxUserKey)

/** A value of the user KV namespace: bytes (its size is checked apart, as `ValueTooLarge`). */
export const userValueError = (option: string, value: unknown): InvalidOption | undefined =>
  value instanceof Uint8Array ? undefined : invalid(option, value, "must be a Uint8Array")

/** `kv: { key: bytes }` of an enqueue or a settlement: keys and values as `put` takes them. */
export const userWritesError = (option: string, writes: unknown): InvalidOption | undefined =>
  record(option, writes) ?? Object.entries(writes as object).reduce<InvalidOption | undefined>(
    (error, [key, value]) =>
      error ?? userKeyError(`${option} key`, key) ?? userValueError(`${option}[${JSON.stringify(key)}]`, value),
    undefined
  )

/** `kvDelete: [key]` of a settlement. */
export const userDeletesError = (option: string, keys: unknown): InvalidOption | undefined =>
  Array.isArray(keys)
    ? keys.reduce<InvalidOption | undefined>((error, key, i) => error ?? userKeyError(`${option}[${i}]`, key), undefined)
    : invalid(option, keys, "must be an array of keys")

/** `scan(prefix, { after, limit })` of the user KV namespace. */
export const userScanError = (prefix: unknown, options: unknown): InvalidOption | undefined =>
  Rules.string("prefix", prefix, 0, maxUserKey) ?? optional(options, (o) =>
    record("options", o) ?? fields(o, (f) =>
      optional(f.after, (v) => userKeyError("after", v)) ??
        optional(f.limit, (v) => integer("limit", v, 1, 10_000))))

// ---- a definition's settings, as a client in another process sends them ------------------------

/** `JobSettings` (see `wire.ts`) checked as `Job.define` checks the options they come from. */
export const settingsError = (settings: unknown): InvalidQueueName | InvalidOption | undefined =>
  record("settings", settings) ?? fields(settings, (s) =>
    queueNameError(s.queue) ??
      maxAttemptsError("settings.maxAttempts", s.maxAttempts) ??
      integer("settings.priority", s.priority, 0, maxPriority) ??
      Rules.number("settings.leaseMillis", s.leaseMillis, 0, Rules.maxDurationMillis) ??
      optional(s.keepDoneMillis, (v) => Rules.number("settings.keepDoneMillis", v, 0, Rules.maxDurationMillis)) ??
      Rules.number("settings.deadRetentionMillis", s.deadRetentionMillis, 0, Rules.maxDurationMillis) ??
      Rules.number("settings.resultRetentionMillis", s.resultRetentionMillis, 0, Rules.maxDurationMillis) ??
      integer("settings.version", s.version, 1, maxCount))
