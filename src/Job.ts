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
 * @since 0.1.0
 */
import { Duration, Schema } from "effect"

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
 * Backoff policies.
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
  }): Backoff => ({
    _tag: "Exponential",
    base: Duration.fromInputUnsafe(options?.base ?? "1 second"),
    max: Duration.fromInputUnsafe(options?.max ?? "5 minutes"),
    jitter: Math.min(1, Math.max(0, options?.jitter ?? 0))
  }),
  /** The same delay after every attempt. */
  fixed: (delay: Duration.Input): Backoff => ({ _tag: "Fixed", delay: Duration.fromInputUnsafe(delay) }),
  /** `min(step · attempt, max)`. */
  linear: (options: { readonly step: Duration.Input; readonly max?: Duration.Input | undefined }): Backoff => ({
    _tag: "Linear",
    step: Duration.fromInputUnsafe(options.step),
    max: options.max === undefined ? undefined : Duration.fromInputUnsafe(options.max)
  }),
  /** Retry at once: the job goes back to its place in line. */
  none: (): Backoff => ({ _tag: "None" }),
  /** Any function of the attempt number. */
  custom: (delay: (attempt: number) => Duration.Input): Backoff => ({ _tag: "Custom", delay })
}

/**
 * The delay after `attempt` attempts; `random` is a number in [0, 1) for the jitter.
 *
 * @category utils
 * @since 0.1.0
 */
export const delayOf = (backoff: Backoff, attempt: number, random: number): Duration.Duration => {
  switch (backoff._tag) {
    case "Exponential": {
      const millis = Math.min(Duration.toMillis(backoff.base) * 2 ** Math.max(0, attempt - 1), Duration.toMillis(backoff.max))
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
export const Priority = { high: 100, normal: 1000, low: 10000 } as const

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

/**
 * Options of `define`; every one has a default.
 *
 * @category models
 * @since 0.1.0
 */
export interface DefineOptions<S extends Schema.Codec<any, any, never, never>> {
  readonly payload: S
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
}

/**
 * A job definition.
 *
 * @category models
 * @since 0.1.0
 */
export interface Definition<A, I = unknown> {
  readonly queue: string
  readonly payload: Schema.Codec<A, I, never, never>
  readonly maxAttempts: number
  readonly leaseDuration: Duration.Duration
  readonly priority: number
  readonly backoff: Backoff
  readonly keepDone: Duration.Duration | undefined
  readonly deadRetention: Duration.Duration
}

/**
 * Defines a job: its queue and payload schema, with per-queue defaults.
 *
 * @category constructors
 * @since 0.1.0
 */
export const define = <S extends Schema.Codec<any, any, never, never>>(
  queue: string,
  options: DefineOptions<S>
): Definition<S["Type"], S["Encoded"]> => ({
  queue,
  payload: options.payload,
  maxAttempts: options.maxAttempts ?? 3,
  leaseDuration: Duration.fromInputUnsafe(options.leaseDuration ?? "30 seconds"),
  priority: priorityValue(options.priority ?? "normal"),
  backoff: typeof options.backoff === "function" ? Backoff.custom(options.backoff) : options.backoff ?? Backoff.exponential(),
  keepDone: options.keepDone === undefined ? undefined : Duration.fromInputUnsafe(options.keepDone),
  deadRetention: Duration.fromInputUnsafe(options.deadRetention ?? "7 days")
})

/**
 * A handler failure that dead-letters the job at once, without using up its attempts.
 *
 * @category errors
 * @since 0.1.0
 */
export class PermanentFailure extends Schema.TaggedError<PermanentFailure>()("PermanentFailure", {
  reason: Schema.String
}) {}
