/**
 * The job queue's key space in the KV (taquba's layout, reference §2.1): every key is
 * `[tag, version 1, fields…]`, built here as latin1 strings (one char per byte) and handed to
 * the KV as bytes. Queue names are length-prefixed UTF-8; numbers are big-endian so that byte
 * order is numeric order.
 *
 * @internal
 */
import { fromLatin1, toLatin1 } from "../internal/binary.ts"

const tag = {
  pending: "\x01\x01",
  claimed: "\x02\x01",
  scheduled: "\x03\x01",
  done: "\x04\x01",
  dead: "\x05\x01",
  index: "\x06\x01",
  dedup: "\x07\x01",
  userKv: "\x08\x01",
  stats: "\x09\x01",
  expiry: "\x0a\x01",
  schedule: "\x0b\x01",
  paused: "\x0c\x01"
} as const

const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder()

/** The UTF-8 bytes of a string, as latin1. */
const bytesOf = (s: string): string => toLatin1(utf8.encode(s))

const u32 = (n: number): string =>
  String.fromCharCode((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)

const u64 = (n: number): string => u32(Math.floor(n / 0x1_0000_0000)) + u32(n >>> 0)

const queueParts = new Map<string, string>()

/** `len u8 | queue` (cached: a process has few queues). */
const queuePart = (queue: string): string => {
  let part = queueParts.get(queue)
  if (part === undefined) {
    const b = bytesOf(queue)
    part = String.fromCharCode(b.length) + b
    if (queueParts.size < 10_000) queueParts.set(queue, part)
  }
  return part
}

/** Pending jobs of a queue: `[1,1] | queue | priority u32 | id`, so claims go by priority, then id. */
export const pendingPrefix = (queue: string) => tag.pending + queuePart(queue)
/** Pending jobs of every queue. */
export const pendingAll = tag.pending
/** The prefix of the pending jobs of the queue of `key`, a pending job's key. */
export const pendingPrefixOf = (key: string): string => key.slice(0, tag.pending.length + 1 + key.charCodeAt(tag.pending.length))
/** A pending job's key. */
export const pending = (queue: string, priority: number, id: string) => pendingPrefix(queue) + u32(priority) + id
/** Claimed jobs of a queue: `[2,1] | queue | id`. */
export const claimedPrefix = (queue: string) => tag.claimed + queuePart(queue)
/** A claimed job's key. */
export const claimed = (queue: string, id: string) => claimedPrefix(queue) + id
/** Claimed jobs of every queue (the requeue at open scans them all). */
export const claimedAll = tag.claimed
/** Scheduled jobs of every queue, by time: `[3,1] | runAt u64 | queue | id`. */
export const scheduledPrefix = tag.scheduled
/** A scheduled job's key. */
export const scheduled = (runAt: number, queue: string, id: string) => tag.scheduled + u64(Math.max(0, Math.floor(runAt))) + queuePart(queue) + id
/** Done jobs kept, by completion time: `[4,1] | completedAt u64 | queue | id`. */
export const donePrefix = tag.done
/** A done job's key. */
export const done = (completedAt: number, queue: string, id: string) => tag.done + u64(Math.max(0, Math.floor(completedAt))) + queuePart(queue) + id
/** Dead jobs of a queue: `[5,1] | queue | id`. */
export const deadPrefix = (queue: string) => tag.dead + queuePart(queue)
/** A dead job's key. */
export const dead = (queue: string, id: string) => deadPrefix(queue) + id
/** Job id to the key of its record: `[6,1] | id`. */
export const index = (id: string) => tag.index + id
/** Dedup key of a queue to the id of its live job: `[7,1] | queue | key`. */
export const dedup = (queue: string, key: string) => tag.dedup + queuePart(queue) + bytesOf(key)

/**
 * The user KV namespace (`queue.kv`): `[8,1] | key (UTF-8)`. Its tag is its own, so no key a
 * caller chooses can reach a queue key, and no queue key is listed by a scan of it.
 */
export const userKvPrefix = tag.userKv
/** A key of the user KV namespace. */
export const userKey = (key: string) => tag.userKv + bytesOf(key)
/** The caller's key of a user KV key. */
export const userKeyName = (key: string): string => utf8Decoder.decode(fromLatin1(key.slice(tag.userKv.length)))

/** The counter of jobs of one status in a queue (`done` counts every ack, kept or not). */
export const stat = (queue: string, status: string) => tag.stats + queuePart(queue) + status
/** The counters of every queue: `[9,1] | queue | status`. */
export const statsPrefix = tag.stats

/** The queue name in a key at `offset` (`len u8 | UTF-8`), and where it ends; undefined when cut short. */
const queueAt = (key: string, offset: number): { readonly queue: string; readonly end: number } | undefined => {
  if (key.length <= offset) return undefined
  const length = key.charCodeAt(offset)
  const end = offset + 1 + length
  if (length === 0 || key.length < end) return undefined
  return { queue: utf8Text.decode(fromLatin1(key.slice(offset + 1, end))), end }
}

const utf8Text = new TextDecoder()

/** The queue and status of a counter's key (see `stat`), or undefined for another key. */
export const parseStat = (key: string): { readonly queue: string; readonly status: string } | undefined => {
  if (!key.startsWith(tag.stats)) return undefined
  const at = queueAt(key, tag.stats.length)
  return at === undefined || at.end === key.length ? undefined : { queue: at.queue, status: key.slice(at.end) }
}

/** A queue's pause flag: `[12,1] | queue`, present while the queue is paused. */
export const paused = (queue: string) => tag.paused + queuePart(queue)
/** The pause flags of every queue. */
export const pausedPrefix = tag.paused
/** The queue of a pause flag's key, or undefined for another key. */
export const parsePaused = (key: string): string | undefined => {
  if (!key.startsWith(tag.paused)) return undefined
  const at = queueAt(key, tag.paused.length)
  return at === undefined || at.end !== key.length ? undefined : at.queue
}

/** Where the queue starts in a time-first key: after `[tag, version]` and the u64 time. */
const timedQueueOffset = 10

/**
 * Whether a time-first key (`scheduled`, `done`: `[tag] | time u64 | queue | id`) holds a job of
 * `queue` (a listing of one queue filters the global time order with it).
 */
export const isTimedOf = (key: string, queue: string): boolean => {
  const part = queuePart(queue)
  return key.startsWith(part, timedQueueOffset) && key.length > timedQueueOffset + part.length
}


/** Whether `key` is a well-formed time-first key (`scheduled`, `done`) under `prefix`. */
export const isTimedKey = (prefix: string, key: string): boolean => {
  if (!key.startsWith(prefix)) return false
  const at = queueAt(key, timedQueueOffset)
  return at !== undefined && at.end < key.length
}

/** The smallest key after `key`: a scan resumed strictly after it starts here. */
export const justAfter = (key: string): string => key + "\x00"

/** The key a listing's cursor stands for: base64url of its bytes, opaque to callers. */
export const toCursor = (key: string): string => Buffer.from(key, "latin1").toString("base64url")

/** The key of a cursor made by `toCursor`, or undefined when the text is not one (not strict base64url). */
export const fromCursor = (cursor: string): string | undefined => {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined
  const key = Buffer.from(cursor, "base64url").toString("latin1")
  return key.length > 0 && toCursor(key) === cursor ? key : undefined
}


/** Done and dead jobs by the instant their retention ends: `[10,1] | expiresAt u64 | id` -> primary key. */
export const expiryPrefix = tag.expiry
/** @internal */
export const expiry = (expiresAt: number, id: string) => tag.expiry + u64(Math.max(0, Math.floor(expiresAt))) + id

/** Cron schedules, by their key: `[11,1] | key (UTF-8)`. */
export const schedulePrefix = tag.schedule
/** A cron schedule's key. */
export const schedule = (key: string) => tag.schedule + bytesOf(key)

/** A key without its `[tag, version]`, as log messages name a record. */
export const describe = (key: string): string => key.slice(2)

/** Keys as the KV takes them. */
export const toBytes = (key: string): Uint8Array => fromLatin1(key)
/** Bytes from the KV back to a key. */
export const fromBytes = (key: Uint8Array): string => toLatin1(key)

/** The smallest key after every key of `[tag, version]` + time `≤ time`: a scan bound. */
export const timeBound = (prefix: string, time: number) => prefix + u64(Math.max(0, Math.floor(time)) + 1)

/** The prefixes of job records in every status (pending, claimed, scheduled, done, dead): a full scan's. */
export const recordPrefixes: ReadonlyArray<string> = [tag.pending, tag.claimed, tag.scheduled, tag.done, tag.dead]
/** Index entries of every job. */
export const indexPrefix = tag.index
/** The job id of an index key. */
export const idOfIndex = (key: string): string => key.slice(tag.index.length)
/** Dedup entries of every queue. */
export const dedupPrefix = tag.dedup
