/**
 * The rules of the object store layers' options, checked when a layer is built, before any I/O:
 * the retry policy (`maxAttempts` a whole number from 1, `base` and `max` finite non-negative
 * durations, or `false`), the directory backend's `directory` (a non-empty path without NUL) and
 * `logPartBytes` (a whole number from 1 KiB), and
 * the S3 backend's options (a bucket name, a root prefix that follows the key rules, an http(s)
 * endpoint URL, a region, credentials with a redacted secret, booleans, a finite request timeout
 * above zero). A failure is `InvalidOption` naming the option.
 *
 * @internal
 */
import { Redacted } from "effect"
import type { InvalidOption } from "../InvalidOption.ts"
import { boolean, duration, integer, invalid, maxCount, optional, record } from "../internal/options.ts"
import { keyProblem } from "./validate.ts"

type Fields = Readonly<Record<string, unknown>>

/** `retry`: `false`, or `{ maxAttempts, base, max }`. */
export const retryOptionsError = (option: string, retry: unknown): InvalidOption | undefined =>
  optional(retry, (r) => {
    if (r === false) return undefined
    const f = r as Fields
    return record(option, r) ??
      optional(f.maxAttempts, (v) => integer(`${option}.maxAttempts`, v, 1, maxCount)) ??
      optional(f.base, (v) => duration(`${option}.base`, v)) ??
      optional(f.max, (v) => duration(`${option}.max`, v))
  })

/** The options of `layerMemory` (only `retry`). */
export const memoryOptionsError = (options: unknown): InvalidOption | undefined =>
  optional(options, (o) => record("options", o) ?? retryOptionsError("retry", (o as Fields).retry))

/** The options of `layerFileSystem`. */
export const fileSystemOptionsError = (options: unknown): InvalidOption | undefined => {
  const f = options as Fields
  return record("options", options) ??
    (typeof f.directory === "string" && f.directory.length > 0 && !f.directory.includes("\u0000")
      ? undefined
      : invalid("directory", f.directory, "must be a non-empty path without NUL")) ??
    optional(f.logPartBytes, (v) => integer("logPartBytes", v, 1024, maxCount)) ??
    retryOptionsError("retry", f.retry)
}

const bucketPattern = /^[A-Za-z0-9._-]{1,255}$/
const regionPattern = /^[A-Za-z0-9_-]{1,64}$/

const prefixError = (prefix: unknown): InvalidOption | undefined => {
  if (typeof prefix !== "string") return invalid("prefix", prefix, "must be a string")
  const trimmed = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix
  if (trimmed === "") return prefix === "" ? undefined : invalid("prefix", prefix, "must not be only '/'")
  const problem = keyProblem(trimmed)
  return problem === undefined ? undefined : invalid("prefix", prefix, `must follow the key rules (${problem})`)
}

const endpointError = (endpoint: unknown): InvalidOption | undefined => {
  if (typeof endpoint !== "string") return invalid("endpoint", endpoint, "must be a URL string")
  try {
    const url = new URL(endpoint)
    return url.protocol === "http:" || url.protocol === "https:" ? undefined : invalid("endpoint", endpoint, "must be an http or https URL")
  } catch {
    return invalid("endpoint", endpoint, "does not parse as a URL")
  }
}

const credentialsError = (credentials: unknown): InvalidOption | undefined => {
  const f = credentials as Fields
  return record("credentials", credentials) ??
    (typeof f.accessKeyId === "string" && f.accessKeyId.length > 0
      ? undefined
      : invalid("credentials.accessKeyId", f.accessKeyId, "must be a non-empty string")) ??
    (Redacted.isRedacted(f.secretAccessKey)
      ? undefined
      : invalid("credentials.secretAccessKey", "<not shown>", "must be a Redacted string")) ??
    optional(f.sessionToken, (v) => (Redacted.isRedacted(v) ? undefined : invalid("credentials.sessionToken", "<not shown>", "must be a Redacted string")))
}

/** The options of `layerS3`. */
export const s3OptionsError = (options: unknown): InvalidOption | undefined => {
  const f = options as Fields
  return record("options", options) ??
    (typeof f.bucket === "string" && bucketPattern.test(f.bucket)
      ? undefined
      : invalid("bucket", f.bucket, "must be 1 to 255 characters of [A-Za-z0-9._-]")) ??
    optional(f.prefix, prefixError) ??
    optional(f.endpoint, endpointError) ??
    optional(f.region, (v) => (typeof v === "string" && regionPattern.test(v) ? undefined : invalid("region", v, "must be 1 to 64 characters of [A-Za-z0-9_-]"))) ??
    optional(f.credentials, credentialsError) ??
    optional(f.forcePathStyle, (v) => boolean("forcePathStyle", v)) ??
    optional(f.quoteIfMatch, (v) => boolean("quoteIfMatch", v)) ??
    optional(f.requestTimeout, (v) => duration("requestTimeout", v, { positive: true })) ??
    retryOptionsError("retry", f.retry)
}

// ---- the fault-injecting store (FaultInjection) ------------------------------------------------

const operations = new Set(["get", "head", "put", "delete", "list", "all"])
const reasons = new Set(["PreconditionFailed", "NotFound", "Conflict", "Throttled", "Unavailable", "Corrupt", "Unknown"])

/** A number in `[min, max]`. */
const numberIn = (option: string, value: unknown, min: number, max: number): InvalidOption | undefined =>
  typeof value === "number" && !Number.isNaN(value) && value >= min && value <= max
    ? undefined
    : invalid(option, value, `must be a number from ${min} to ${max}`)

/** A latency distribution: `Fixed { millis }`, `Uniform { min, max }` (min ≤ max) or `LogNormal { p50, p99 }` (p50 ≤ p99). */
const latencyError = (option: string, latency: unknown): InvalidOption | undefined => {
  const l = latency as Fields
  const ms = (field: string) => numberIn(`${option}.${field}`, l[field], 0, 3_600_000)
  if (record(option, latency) !== undefined) return record(option, latency)
  switch (l._tag) {
    case "Fixed":
      return ms("millis")
    case "Uniform":
      return ms("min") ?? ms("max") ?? ((l.min as number) > (l.max as number) ? invalid(`${option}.min`, l.min, "must not be over max") : undefined)
    case "LogNormal":
      return ms("p50") ?? ms("p99") ?? ((l.p50 as number) > (l.p99 as number) ? invalid(`${option}.p50`, l.p50, "must not be over p99") : undefined)
    default:
      return invalid(`${option}._tag`, l._tag, "must be \"Fixed\", \"Uniform\" or \"LogNormal\"")
  }
}

/** The faults of each operation kind (`get`, `head`, `put`, `delete`, `list`, `all`). */
export const faultsError = (option: string, faults: unknown): InvalidOption | undefined =>
  record(option, faults) ?? Object.entries(faults as Fields).reduce<InvalidOption | undefined>((error, [op, f]) => {
    if (error !== undefined || f === undefined) return error
    if (!operations.has(op)) return invalid(`${option}.${op}`, f, "must be an operation: get, head, put, delete, list or all")
    const of = `${option}.${op}`
    const o = f as Fields
    return record(of, f) ??
      optional(o.latency, (v) => latencyError(`${of}.latency`, v)) ??
      optional(o.errorRate, (v) => numberIn(`${of}.errorRate`, v, 0, 1)) ??
      optional(o.errorReason, (v) => (reasons.has(v as string) ? undefined : invalid(`${of}.errorReason`, v, "must be an ObjectStoreError reason"))) ??
      optional(o.lostResponseRate, (v) => numberIn(`${of}.lostResponseRate`, v, 0, 1)) ??
      optional(o.keyPrefix, (v) => (typeof v === "string" ? undefined : invalid(`${of}.keyPrefix`, v, "must be a string")))
  }, undefined)

/** The options of `FaultInjection.make` and `layer`. */
export const faultInjectionOptionsError = (options: unknown): InvalidOption | undefined =>
  record("options", options) ?? ((o: Fields) =>
    (typeof o.seed === "number" || typeof o.seed === "string" ? undefined : invalid("seed", o.seed, "must be a number or a string")) ??
      optional(o.faults, (v) => faultsError("faults", v)) ??
      optional(o.freezeAt, (v) => integer("freezeAt", v, 0, Number.MAX_SAFE_INTEGER)) ??
      retryOptionsError("retry", o.retry))(options as Fields)
