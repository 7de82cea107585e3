/**
 * The rules of `Kv.Options`, checked when the KV opens, before it reads or writes anything: every
 * size and count a whole number from 1 to 2^31 − 1 (`keepManifests` from 1: the current manifest
 * is always kept), the two durations finite and non-negative, `useLocalLog` a boolean,
 * `fenceCheckInterval` `false` or a finite duration above zero. A failure
 * is `InvalidOption` naming the option.
 *
 * @internal
 */
import type { InvalidOption } from "../InvalidOption.ts"
import { boolean, duration, integer, maxCount, optional, record } from "../internal/options.ts"

const counts = [
  "maxKeyBytes",
  "maxValueBytes",
  "maxCommitBytes",
  "maxUnflushedBytes",
  "maxWalPutsInFlight",
  "runFlushSegments",
  "runFlushBytes",
  "maxRuns",
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
