/**
 * The rules of `Kv.Options`, checked when the KV opens, before it reads or writes anything: every
 * size and count a whole number from 1 to 2^31 − 1 (`keepManifests` from 1: the current manifest
 * is always kept), the two durations finite and non-negative, `useLocalLog` a boolean,
 * `fenceCheckInterval` `false` or a finite duration above zero. And the options of each call, checked
 * before it reads or commits: `durable` a boolean, `guard` a function, `isolation` `snapshot` or
 * `serializable`, `maxRetries` and `limit` whole numbers from 0, `reverse` a boolean. A failure
 * is `InvalidOption` naming the option.
 *
 * @internal
 */
import type { InvalidOption } from "../InvalidOption.ts"
import { boolean, duration, integer, invalid, maxCount, optional, record } from "../internal/options.ts"

const counts = [
  "maxKeyBytes",
  "maxValueBytes",
  "maxCommitBytes",
  "maxUnflushedBytes",
  "maxWalPutsInFlight",
  "runFlushSegments",
  "memtableBytes",
  "maxRuns",
  "maxRunBytes",
  "cacheBytes",
  "keepManifests",
  "openAttempts"
] as const

const durations = ["minFlushInterval", "gcMinAge"] as const

/** Why `Kv.Options` are refused, or undefined. */
export const kvOptionsError = (options: unknown): InvalidOption | undefined =>
  optional(options, (o) => {
    const bad = record("options", o)
    if (bad !== undefined) return bad
    const f = o as Readonly<Record<string, unknown>>
    for (const name of counts) {
      const error = optional(f[name], (v) => integer(name, v, 1, maxCount))
      if (error !== undefined) return error
    }
    for (const name of durations) {
      const error = optional(f[name], (v) => duration(name, v))
      if (error !== undefined) return error
    }
    return optional(f.useLocalLog, (v) => boolean("useLocalLog", v)) ??
      optional(f.fenceCheckInterval, (v) => (v === false ? undefined : duration("fenceCheckInterval", v, { positive: true })))
  })

type Fields = Readonly<Record<string, unknown>>

/** `WriteOptions`: `durable` a boolean. */
export const writeOptionsError = (options: unknown): InvalidOption | undefined =>
  optional(options, (o) => record("options", o) ?? optional((o as Fields).durable, (v) => boolean("durable", v)))

/** `writeIf`'s options: `WriteOptions` and a `guard` function. */
export const writeIfOptionsError = (options: unknown): InvalidOption | undefined =>
  writeOptionsError(options) ??
    optional(options, (o) =>
      optional((o as Fields).guard, (v) => typeof v === "function" ? undefined : invalid("guard", v, "must be a function")))

/** `TransactionOptions`: `WriteOptions`, `isolation` one of two names, `maxRetries` a whole number from 0. */
export const transactionOptionsError = (options: unknown): InvalidOption | undefined =>
  writeOptionsError(options) ??
    optional(options, (o) => {
      const f = o as Fields
      return optional(f.isolation, (v) =>
        v === "snapshot" || v === "serializable" ? undefined : invalid("isolation", v, "must be \"snapshot\" or \"serializable\"")) ??
        optional(f.maxRetries, (v) => integer("maxRetries", v, 0, maxCount))
    })

/** `ScanOptions`: `limit` a whole number from 0, `reverse` a boolean. */
export const scanOptionsError = (options: unknown): InvalidOption | undefined =>
  optional(options, (o) => {
    const f = o as Fields
    return record("options", o) ?? optional(f.limit, (v) => integer("limit", v, 0, maxCount)) ??
      optional(f.reverse, (v) => boolean("reverse", v))
  })
