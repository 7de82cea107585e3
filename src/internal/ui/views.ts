/**
 * What the web page's JSON endpoints answer: jobs as plain JSON (the payload and result, stored
 * as msgpack, rendered as JSON text cut to a bounded length), errors as their tag, fields and
 * message, and the JSON text itself with `<`, `>` and `&` escaped, so that no byte of the store
 * can read as markup even where a response is sniffed as HTML.
 *
 * @internal
 */
import type { Attempt, ListedRecord } from "../../JobQueue.ts"
import * as Msgpack from "../msgpack.ts"

/** The longest payload or result text shown, in characters (longer ones are cut, ending in `…`). */
export const maxValueText = 4096

/** A job as the page shows it. */
export interface JobView {
  readonly id: string
  readonly queue: string
  readonly status: string
  readonly attempts: number
  readonly maxAttempts: number
  readonly priority: number
  readonly enqueuedAt: number
  readonly runAt?: number | undefined
  readonly claimedAt?: number | undefined
  readonly completedAt?: number | undefined
  readonly failedAt?: number | undefined
  readonly lastError?: string | undefined
  readonly dedupKey?: string | undefined
  readonly headers: Readonly<Record<string, string>>
  /** The payload as JSON text (cut), or undefined when it could not be read (`payloadError` says why). */
  readonly payload?: string | undefined
  readonly payloadBytes: number
  readonly payloadError?: string | undefined
  readonly result?: string | undefined
}

/** The page's view of a record (`get` and listings return them so). */
export const jobView = (record: ListedRecord): JobView => {
  const unread = record.payloadRef !== undefined && record.payload.length === 0
  return {
    id: record.id,
    queue: record.queue,
    status: record.status,
    attempts: record.attempts,
    maxAttempts: record.maxAttempts,
    priority: record.priority,
    enqueuedAt: record.enqueuedAt,
    runAt: record.runAt,
    claimedAt: record.claimedAt,
    completedAt: record.completedAt,
    failedAt: record.failedAt,
    lastError: record.lastError,
    dedupKey: record.dedupKey,
    headers: record.headers,
    payload: unread ? undefined : valueText(record.payload),
    payloadBytes: record.payload.length,
    payloadError: record.payloadError ?? (unread ? `payload object ${record.payloadRef} not read` : undefined),
    result: record.result === undefined ? undefined : valueText(record.result)
  }
}

/** A job's record and its ended attempts, as `/api/job` answers. */
export const jobDetail = (record: ListedRecord, history: ReadonlyArray<Attempt>) => ({ job: jobView(record), history })

/** msgpack bytes as JSON text (bytes as `{"$bytes":"<hex>"}`), cut to `maxValueText`; bytes that do not decode say so. */
export const valueText = (bytes: Uint8Array): string => {
  let text: string
  try {
    text = JSON.stringify(Msgpack.decode(bytes), replacer) ?? "undefined"
  } catch {
    return `(${bytes.length} bytes that are not msgpack)`
  }
  return text.length <= maxValueText ? text : `${text.slice(0, maxValueText)}…`
}

const replacer = (_key: string, value: unknown): unknown => {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.subarray(0, 1024)).toString("hex") }
  if (typeof value === "bigint") return value.toString()
  if (value instanceof Map) return Object.fromEntries(value)
  return value
}

/** An error of the edge or the store as a JSON body: its tag, its own fields, and its message. */
export const errorBody = (error: { readonly _tag: string; readonly message: string }): Record<string, unknown> => {
  const fields: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(error)) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") fields[key] = value
  }
  return { ...fields, _tag: error._tag, message: error.message }
}

const unsafe: Record<string, string> = { "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029" }

/** `value` as JSON text in which `<`, `>`, `&` (and the JavaScript line separators) are `\u` escapes: the same JSON. */
export const safeJson = (value: unknown): string => JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => unsafe[c]!)
