/**
 * Typed job definitions: a queue name, a payload schema and per-queue defaults.
 *
 * **Example** (A job definition)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Job } from "bucketq"
 *
 * const Email = Job.define("emails", {
 *   payload: Schema.Struct({ to: Schema.String }),
 *   maxAttempts: 5,
 *   leaseDuration: "30 seconds",
 *   priority: "normal",
 *   backoff: Job.Backoff.exponential({ base: "1 second", max: "5 minutes" })
 * })
 * ```
 *
 * **Versioned payloads.** A definition can declare the version of its payload schema and
 * migrations from older versions (`version`, `migrations`, `migration`): a job stored with an
 * older version is decoded with that version's schema and brought up to date by the migration
 * functions when it is claimed.
 *
 * **Validation.** `define` and the `Backoff` constructors check every option when they are
 * called and throw `InvalidOption` (or `InvalidQueueName`) if one breaks its rule: definitions
 * are module-level constants, so a bad one fails the program at its start, never later inside a
 * queue. The queue's operations check a definition again (once per object), so one built by hand
 * fails them with the same typed errors.
 *
 * @since 0.1.0
 */
import { Duration, Schema } from "effect"
import type { InvalidOption } from "./InvalidOption.ts"
import type { InvalidQueueName } from "./JobQueueError.ts"
import * as Options from "./queue/options.ts"

/** Throws `error` when there is one (the synchronous constructors' way to refuse an option). */
const orThrow = (error: InvalidOption | InvalidQueueName | undefined): void => {
  if (error !== undefined) throw error
}

/**
 * How long a failed attempt waits before the next one. `delayOf` computes it from the number of
 * attempts made so far (1 after the first claim).
 *
 * @category models
 * @since 0.1.0
 */
export type Backoff =
  | {
    readonly _tag: "Exponential"
    readonly base: Duration.Duration
    readonly max: Duration.Duration
    /** Each delay is scaled by a random factor in [1 − jitter, 1]. */
    readonly jitter: number
  }
  | { readonly _tag: "Fixed"; readonly delay: Duration.Duration }
  | { readonly _tag: "Linear"; readonly step: Duration.Duration; readonly max: Duration.Duration | undefined }
  | { readonly _tag: "None" }
  | { readonly _tag: "Custom"; readonly delay: (attempt: number) => Duration.Input }

/**
 * Backoff policies. Durations are `Duration.Input`s from zero up to 10^15 ms, finite; `jitter` is
 * a number from 0 to 1. A constructor given anything else throws `InvalidOption` (naming, e.g.,
 * `backoff.base`).
 *
 * @category constructors
 * @since 0.1.0
 */
export const Backoff = {
  /** `min(base · 2^(attempt−1), max)` (defaults 1 second and 5 minutes), optionally jittered. */
  exponential: (options?: {
    readonly base?: Duration.Input | undefined
    readonly max?: Duration.Input | undefined
    readonly jitter?: number | undefined
  }): Backoff => {
    orThrow(Options.exponentialError("backoff", options))
    return exponentialOf(options)
  },
  /** The same delay after every attempt. */
  fixed: (delay: Duration.Input): Backoff => {
    orThrow(Options.fixedError("backoff", delay))
    return { _tag: "Fixed", delay: Duration.fromInputUnsafe(delay) }
  },
  /** `min(step · attempt, max)`. */
  linear: (options: { readonly step: Duration.Input; readonly max?: Duration.Input | undefined }): Backoff => {
    orThrow(Options.linearError("backoff", options))
    return {
      _tag: "Linear",
      step: Duration.fromInputUnsafe(options.step),
      max: options.max === undefined ? undefined : Duration.fromInputUnsafe(options.max)
    }
  },
  /** Retry at once: the job goes back to its place in line. */
  none: (): Backoff => ({ _tag: "None" }),
  /**
   * Any function of the attempt number. What it returns is checked at each `nack`: a delay that
   * is not a finite, non-negative duration (or a throw) fails the `nack` with `InvalidOption`.
   */
  custom: (delay: (attempt: number) => Duration.Input): Backoff => {
    orThrow(Options.customError("backoff", delay))
    return { _tag: "Custom", delay }
  }
}

/** An exponential policy from checked options. */
const exponentialOf = (options?: {
  readonly base?: Duration.Input | undefined
  readonly max?: Duration.Input | undefined
  readonly jitter?: number | undefined
}): Backoff => ({
  _tag: "Exponential",
  base: Duration.fromInputUnsafe(options?.base ?? "1 second"),
  max: Duration.fromInputUnsafe(options?.max ?? "5 minutes"),
  jitter: options?.jitter ?? 0
})

/**
 * The delay after `attempt` attempts; `random` is a number in [0, 1) for the jitter.
 *
 * @category utils
 * @since 0.1.0
 */
export const delayOf = (backoff: Backoff, attempt: number, random: number): Duration.Duration => {
  switch (backoff._tag) {
    case "Exponential": {
      const base = Duration.toMillis(backoff.base) // 0 · 2^1024 would be NaN
      const millis = base === 0 ? 0 : Math.min(base * 2 ** Math.max(0, attempt - 1), Duration.toMillis(backoff.max))
      return Duration.millis(millis * (1 - backoff.jitter * random))
    }
    case "Fixed":
      return backoff.delay
    case "Linear": {
      const millis = Duration.toMillis(backoff.step) * attempt
      return Duration.millis(backoff.max === undefined ? millis : Math.min(millis, Duration.toMillis(backoff.max)))
    }
    case "None":
      return Duration.zero
    case "Custom":
      return Duration.fromInputUnsafe(backoff.delay(attempt))
  }
}

/**
 * Named priorities; lower numbers are claimed first. Any integer from 0 to 2^32 − 1 works too.
 *
 * @category constants
 * @since 0.1.0
 */
export const Priority: { readonly high: 100; readonly normal: 1000; readonly low: 10000 } = Options.priorities

/**
 * A priority: a name or a number (lower first).
 *
 * @category models
 * @since 0.1.0
 */
export type PriorityInput = keyof typeof Priority | number

/**
 * The number of a priority.
 *
 * @category utils
 * @since 0.1.0
 */
export const priorityValue = (priority: PriorityInput): number => (typeof priority === "number" ? priority : Priority[priority])

// ---- versioned payloads ----------------------------------------------------------------------

/**
 * A step of a payload's migration chain, made by `migration`: a payload stored with version
 * `from` is decoded with `schema` (the codec of that old shape), and `migrate` turns the decoded
 * old value into the decoded value of version `from + 1`.
 *
 * `Out` is that next version's decoded type. In a definition's `migrations` only the last step's
 * `Out` is checked (it must be the current payload type); the steps before are `Migration<any>`,
 * since TypeScript cannot check that each step's output is the next step's input without
 * recursive types. Each output is checked at run time instead, against the next version's schema.
 *
 * @category models
 * @since 0.2.0
 */
export interface Migration<out Out = any> {
  readonly _tag: "Migration"
  /** The stored version this step reads. */
  readonly from: number
  /** The codec of the payload as it was stored with version `from`. */
  readonly schema: Schema.Codec<any, any, never, never>
  /** The decoded old value to the decoded value of version `from + 1`; may throw (the job is dead-lettered). */
  readonly migrate: (old: any) => Out
}

/**
 * A migration step from stored version `from` (see `Migration`): `schema` decodes a payload
 * stored with that version, `f` turns the decoded value into the decoded value of version
 * `from + 1`. The step is typed by `schema`: `f` gets its decoded type.
 *
 * **Example** (Two steps up to version 3)
 *
 * ```ts
 * const Email = Job.define("emails", {
 *   payload: EmailV3, version: 3,
 *   migrations: [
 *     Job.migration(1, EmailV1, (v1) => ({ to: [v1.to] })),            // version 1 to 2
 *     Job.migration(2, EmailV2, (v2) => ({ ...v2, subject: "(none)" }))  // version 2 to 3
 *   ]
 * })
 * ```
 *
 * **Gotchas**
 *
 * Throws `InvalidOption` unless `from` is an integer from 1 to 2^31 − 2, `schema` a Schema and
 * `f` a function. `f` is called at claim time: a throw, or an output the next version's schema
 * rejects, dead-letters the job (its stored payload kept), it is never handed to a handler.
 *
 * @category constructors
 * @since 0.2.0
 */
export const migration = <S extends Schema.Codec<any, any, never, never>, Out>(
  from: number,
  schema: S,
  f: (old: S["Type"]) => Out
): Migration<Out> => {
  orThrow(Options.migrationError(from, schema, f))
  return Options.registerMigration({ _tag: "Migration", from, schema, migrate: f })
}

/**
 * The migrations `define` takes: none, or steps in ascending order of `from` whose last one
 * yields the current payload type `A` (the steps before it are not checked by the compiler; see
 * `Migration`). Written inline in `define`'s options, the array is typed as this tuple; an array
 * kept in a variable needs `as const`.
 *
 * @category models
 * @since 0.2.0
 */
export type Migrations<A> = readonly [] | readonly [...ReadonlyArray<Migration<any>>, Migration<A>]

/**
 * Options of `define`; every one has a default. Rules (else `InvalidOption`): `payload` is a
 * Schema; `maxAttempts` an integer from 1 to 2^31 − 1; `priority` a name or an integer from 0 to
 * 2^32 − 1; `leaseDuration`, `keepDone` and `deadRetention` finite, non-negative durations up to
 * 10^15 ms; `backoff` a `Backoff` policy or a function; `version` an integer from 1 to 2^31 − 1;
 * `migrations` an array of steps made by `migration`, in ascending order of `from`, no two from
 * the same version, each below `version`, contiguous (no hole) and ending at `version − 1`.
 *
 * @category models
 * @since 0.1.0
 */
export interface DefineOptions<
  S extends Schema.Codec<any, any, never, never>,
  RS extends Schema.Codec<any, any, never, never> = never
> {
  readonly payload: S
  /**
   * The schema of the job's result: what a Worker's handler returns (or `ack`'s `result`) is
   * stored encoded with the done job, and `get` and `awaitCompletion` with the definition return
   * it decoded. Without it a handler's return value is ignored.
   */
  readonly result?: RS | undefined
  /**
   * How long a result is kept once the job is done (default 1 hour): a done job with a result is
   * kept for the longer of this and `keepDone`, so `awaitCompletion` after the fact still sees it.
   */
  readonly resultRetention?: Duration.Input | undefined
  /** Claims allowed before the job is dead-lettered (default 3). */
  readonly maxAttempts?: number | undefined
  /** Lease of a claim when the claim does not say (default 30 seconds). */
  readonly leaseDuration?: Duration.Input | undefined
  /** Default priority (default `"normal"`, 1000). */
  readonly priority?: PriorityInput | undefined
  /** Delay before a retry (default `exponential({ base: "1 second", max: "5 minutes" })`), or a function of the attempt. */
  readonly backoff?: Backoff | ((attempt: number) => Duration.Input) | undefined
  /** Keep done jobs this long (default: deleted on ack). */
  readonly keepDone?: Duration.Input | undefined
  /** Keep dead jobs this long (default 7 days). */
  readonly deadRetention?: Duration.Input | undefined
  /** The version of `payload` (default 1): written with every job enqueued. */
  readonly version?: number | undefined
  /**
   * Steps from older stored versions up to `version` (default none). Older steps can be dropped
   * once no job stored with their version is left: a job stored with a version that has no step
   * is dead-lettered at claim.
   */
  readonly migrations?: Migrations<S["Type"]> | undefined
}

/**
 * A job definition.
 *
 * @category models
 * @since 0.1.0
 */
export interface Definition<A, I = unknown, R = unknown> {
  readonly queue: string
  readonly payload: Schema.Codec<A, I, never, never>
  /** The result's schema, when the job has one. */
  readonly result: Schema.Codec<R, any, never, never> | undefined
  readonly resultRetention: Duration.Duration
  readonly maxAttempts: number
  readonly leaseDuration: Duration.Duration
  readonly priority: number
  readonly backoff: Backoff
  readonly keepDone: Duration.Duration | undefined
  readonly deadRetention: Duration.Duration
  /** The version of `payload` (absent: 1), stored with each job enqueued. */
  readonly version?: number | undefined
  /** The steps from older stored versions, ascending and contiguous up to `version − 1` (absent: none). */
  readonly migrations?: ReadonlyArray<Migration> | undefined
}

/**
 * Defines a job: its queue and payload schema, with per-queue defaults.
 *
 * **Gotchas**
 *
 * Throws `InvalidQueueName` for a name outside the rule (1 to 128 characters of
 * `[A-Za-z0-9._:-]`, `/` between non-empty segments, no `.` or `..` segment) and `InvalidOption`
 * for an option outside its rule (see `DefineOptions`), at once: definitions are module-level
 * constants, so the program fails where the mistake is, not at the first enqueue.
 *
 * @category constructors
 * @since 0.1.0
 */
export const define = <S extends Schema.Codec<any, any, never, never>, RS extends Schema.Codec<any, any, never, never> = never>(
  queue: string,
  options: DefineOptions<S, RS>
): Definition<S["Type"], S["Encoded"], ResultOf<RS>> => {
  orThrow(Options.defineError(queue, options))
  return definitionOf(queue, options)
}

/**
 * How long a result is kept when the definition does not say (`resultRetention`): 1 hour.
 *
 * @category constants
 * @since 0.2.0
 */
export const defaultResultRetention: Duration.Duration = Duration.hours(1)

/**
 * The type of a definition's result: its schema's, or `unknown` (anything a handler returns,
 * ignored) for a job without one.
 *
 * @category models
 * @since 0.2.0
 */
export type ResultOf<RS> = [RS] extends [never] ? unknown : RS extends Schema.Codec<infer R, any, never, never> ? R : unknown

/** A definition from checked options, with the defaults filled in. */
const definitionOf = <S extends Schema.Codec<any, any, never, never>, RS extends Schema.Codec<any, any, never, never>>(
  queue: string,
  options: DefineOptions<S, RS>
): Definition<S["Type"], S["Encoded"], ResultOf<RS>> => ({
  queue,
  payload: options.payload,
  result: options.result,
  resultRetention: options.resultRetention === undefined ? defaultResultRetention : Duration.fromInputUnsafe(options.resultRetention),
  maxAttempts: options.maxAttempts ?? 3,
  leaseDuration: Duration.fromInputUnsafe(options.leaseDuration ?? "30 seconds"),
  priority: priorityValue(options.priority ?? "normal"),
  backoff: typeof options.backoff === "function" ? Backoff.custom(options.backoff) : options.backoff ?? Backoff.exponential(),
  keepDone: options.keepDone === undefined ? undefined : Duration.fromInputUnsafe(options.keepDone),
  deadRetention: Duration.fromInputUnsafe(options.deadRetention ?? "7 days"),
  version: options.version ?? 1,
  migrations: [...(options.migrations ?? [])]
})

/**
 * A handler failure that dead-letters the job at once, without using up its attempts.
 *
 * @category errors
 * @since 0.1.0
 */
export class PermanentFailure extends Schema.TaggedError<PermanentFailure>()("PermanentFailure", {
  reason: Schema.String
}) {
  override get message(): string {
    return `permanent failure: ${this.reason}`
  }
}
