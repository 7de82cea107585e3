/**
 * The primitive rules every option check is built from: integers in a range, durations (with or
 * without infinity), instants, strings, booleans and functions. Each check takes the option's
 * name and its value (typed `unknown`: callers from plain JavaScript pass anything) and returns
 * the `InvalidOption` it breaks, or `undefined`; checks compose with `??`, which stops at the
 * first failure. A value that passes a duration check is one `Duration.fromInputUnsafe` takes
 * without throwing and without silently reading as zero.
 *
 * The bounds are chosen so that nothing an option check accepts can overflow what is stored:
 * counts fit 31 bits, byte sizes too, durations are finite and at most `maxDurationMillis`, and
 * instants lie in the range of a JavaScript `Date`, all exact in a double and in the 64-bit big
 * endian time fields of the queue's keys.
 *
 * @internal
 */
import { Duration, Effect, Option } from "effect"
import { InvalidOption } from "../InvalidOption.ts"

/** The largest count an option takes (attempts, batch sizes, concurrency, byte sizes): 2^31 − 1. */
export const maxCount = 2 ** 31 - 1

/** The longest finite duration an option takes, in ms: 10^15 ms, about 31,700 years. */
export const maxDurationMillis = 1e15

/** The latest (and, negated, the earliest) instant an option takes: the range of a `Date`, in ms. */
export const maxInstantMillis = 8.64e15

const maxRendered = 200

/** `value` as text, whatever it is, cut to 200 characters: what an `InvalidOption` shows. */
export const render = (value: unknown): string => {
  const text = renderFull(value)
  return text.length <= maxRendered ? text : `${text.slice(0, maxRendered)}…`
}

const renderFull = (value: unknown): string => {
  switch (typeof value) {
    case "undefined":
      return "undefined"
    case "number":
      return Object.is(value, -0) ? "-0" : String(value)
    case "bigint":
      return `${value}n`
    case "string":
      return JSON.stringify(value.length > maxRendered ? value.slice(0, maxRendered) : value)
    case "boolean":
      return String(value)
    case "symbol":
      return value.toString()
    case "function":
      return `[function ${value.name || "anonymous"}]`
    case "object":
      return renderObject(value)
  }
}

const renderObject = (value: object | null): string => {
  if (value === null) return "null"
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString()
  if (Duration.isDuration(value)) return `Duration(${String(value)})`
  try {
    const json = JSON.stringify(value, (_, v: unknown) =>
      typeof v === "bigint" ? `${v}n` : typeof v === "number" && !Number.isFinite(v) ? String(v) : v)
    return json ?? Object.prototype.toString.call(value)
  } catch {
    return Object.prototype.toString.call(value) // cycles, throwing getters
  }
}

/** The error for `option` given `value`, which breaks `reason`. */
export const invalid = (option: string, value: unknown, reason: string): InvalidOption =>
  new InvalidOption({ option, value: render(value), reason })

/** An integer in `[min, max]`. */
export const integer = (option: string, value: unknown, min: number, max: number): InvalidOption | undefined => {
  if (typeof value !== "number" || Number.isNaN(value)) return invalid(option, value, "must be a number")
  if (!Number.isInteger(value)) return invalid(option, value, `must be an integer from ${min} to ${max}`)
  if (value < min || value > max) return invalid(option, value, `must be an integer from ${min} to ${max}`)
  return undefined
}

/** A number (not NaN) in `[min, max]`. */
export const number = (option: string, value: unknown, min: number, max: number): InvalidOption | undefined => {
  if (typeof value !== "number" || Number.isNaN(value)) return invalid(option, value, "must be a number")
  return value < min || value > max ? invalid(option, value, `must be from ${min} to ${max}`) : undefined
}

/** What a duration option may be. */
export interface DurationRule {
  /** `true`: zero is refused too. */
  readonly positive?: boolean | undefined
  /** `true`: `Infinity` (as a number, the string, or `Duration.infinity`) is taken ("forever"). */
  readonly infinite?: boolean | undefined
}

const durationUnits = new Set(["weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"])

/**
 * The milliseconds of a `Duration.Input`, or why it is not one. Refuses what `Duration` would
 * read as zero without a word: `NaN`, a tuple with `NaN`, an object with an unknown unit or a
 * field that is not a finite number.
 */
const millisOf = (value: unknown): number | string => {
  if (typeof value === "number") return Number.isNaN(value) ? "must be a number of milliseconds, not NaN" : value
  if (typeof value === "bigint") return Number(value) / 1e6
  if (typeof value === "object" && value !== null && !Duration.isDuration(value)) {
    const shape = Array.isArray(value) ? tupleProblem(value) : objectProblem(value)
    if (shape !== undefined) return shape
  } else if (typeof value !== "string" && !Duration.isDuration(value)) {
    return "must be a Duration.Input (milliseconds, \"5 seconds\", a Duration…)"
  }
  const parsed = Duration.fromInput(value as Duration.Input)
  return Option.isSome(parsed)
    ? Duration.toMillis(parsed.value)
    : "does not parse as a duration (e.g. \"500 millis\", \"5 seconds\", \"1 hour\")"
}

const tupleProblem = (value: ReadonlyArray<unknown>): string | undefined =>
  value.length === 2 && value.every((n) => typeof n === "number" && Number.isFinite(n))
    ? undefined
    : "must be a [seconds, nanos] pair of finite numbers"

const objectProblem = (value: object): string | undefined => {
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return "must be a plain object of duration units" // a Date, a Map…
  for (const [unit, n] of Object.entries(value)) {
    if (!durationUnits.has(unit)) return `has an unknown unit ${JSON.stringify(unit)}`
    if (n !== undefined && (typeof n !== "number" || !Number.isFinite(n))) return `has ${unit} that is not a finite number`
  }
  return undefined
}

/**
 * A `Duration.Input` that parses, is not negative, is finite unless `rule.infinite` (and then
 * `+Infinity` only), is at most `maxDurationMillis` when finite, and is above zero if
 * `rule.positive`.
 */
export const duration = (option: string, value: unknown, rule: DurationRule = {}): InvalidOption | undefined => {
  const millis = millisOf(value)
  if (typeof millis === "string") return invalid(option, value, millis)
  if (millis < 0) return invalid(option, value, "must not be negative")
  if (millis === Infinity) return rule.infinite === true ? undefined : invalid(option, value, "must be finite")
  if (millis > maxDurationMillis) return invalid(option, value, `must be at most ${maxDurationMillis} ms`)
  if (rule.positive === true && millis === 0) return invalid(option, value, "must be above zero")
  return undefined
}

/** A computed delay in ms (from a backoff policy): a finite, non-negative number up to the maximum. */
export const delayMillis = (option: string, millis: number): InvalidOption | undefined =>
  Number.isNaN(millis) || millis < 0 || millis > maxDurationMillis
    ? invalid(option, millis, `must be a delay from 0 to ${maxDurationMillis} ms`)
    : undefined

/** An instant: epoch milliseconds (finite, within a `Date`'s range) or a valid `Date`. */
export const instant = (option: string, value: unknown): InvalidOption | undefined => {
  const millis = value instanceof Date ? value.getTime() : value
  if (typeof millis !== "number") return invalid(option, value, "must be epoch milliseconds or a Date")
  if (Number.isNaN(millis)) return invalid(option, value, value instanceof Date ? "is an invalid Date" : "must be a number, not NaN")
  if (Math.abs(millis) > maxInstantMillis) return invalid(option, value, `must be within ±${maxInstantMillis} ms of the epoch`)
  return undefined
}

/** A well-formed string (no lone surrogates) of `min` to `max` UTF-8 bytes. */
export const string = (option: string, value: unknown, min: number, max: number): InvalidOption | undefined => {
  if (typeof value !== "string") return invalid(option, value, "must be a string")
  if (!isWellFormed(value)) return invalid(option, value, "must be well-formed Unicode (no lone surrogates)")
  const size = utf8Length(value)
  if (size < min || size > max) return invalid(option, value, `must be ${min} to ${max} UTF-8 bytes`)
  return undefined
}

/** Any string (stored as it is: its size is bounded by the KV's value limit). */
export const text = (option: string, value: unknown): InvalidOption | undefined =>
  typeof value === "string" ? undefined : invalid(option, value, "must be a string")

/** `true` or `false`. */
export const boolean = (option: string, value: unknown): InvalidOption | undefined =>
  typeof value === "boolean" ? undefined : invalid(option, value, "must be true or false")

/** A function. */
export const func = (option: string, value: unknown): InvalidOption | undefined =>
  typeof value === "function" ? undefined : invalid(option, value, "must be a function")

/** An object (not null, not an array): the options bag itself, or a nested one. */
export const record = (option: string, value: unknown): InvalidOption | undefined =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? undefined : invalid(option, value, "must be an object")

/** `check(value)` when the option was given; `undefined` (nothing to check) when it was left out. */
export const optional = <A, E = InvalidOption>(value: A | undefined, check: (value: A) => E | undefined): E | undefined =>
  value === undefined ? undefined : check(value)

const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** No lone surrogate (what `String.prototype.isWellFormed` tells, on every Node). */
export const isWellFormed = (s: string): boolean => !lone.test(s)

/** The UTF-8 length of a well-formed string, without encoding it. */
export const utf8Length = (s: string): number => {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4
      i++
    } else n += 3
  }
  return n
}

/** Fails with `error` when there is one (an option check's verdict), else succeeds. */
export const checked = <E>(error: E | undefined): Effect.Effect<void, E> => (error === undefined ? Effect.void : Effect.fail(error))
