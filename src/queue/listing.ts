/**
 * Listings: the jobs of one queue in one state, page by page (`list`), and its dead jobs by id
 * (`deadJobs`). A page is read at its keys' order: pending by claim order (priority, then id),
 * claimed and dead by id, scheduled by due time, done by completion time.
 *
 * **The cursor** is the base64url of the last key a page covered; the next page starts strictly
 * after it. It names a position, not a job, so it stays valid while jobs come and go: a job is
 * listed at most once per pass unless it leaves and comes back behind the cursor (a retry
 * scheduled later than the cursor), and every job there for the whole pass is listed. A cursor
 * that does not decode to a key of the listing's key space is `InvalidOption`.
 *
 * **Scheduled and done jobs** are keyed by time for every queue at once (the scheduler and the
 * retention sweep read them so). A listing of one queue filters them while it scans, reading at
 * most `scanBudget` keys per call: a page can hold fewer jobs than asked (even none) while its
 * cursor is `Some`, and going through one queue's pages reads the other queues' entries too. We
 * chose this over a per-queue index on purpose: the index would cost one more write on the hot
 * paths (a delayed enqueue, a nack with backoff, a kept ack) and an invariant every path that
 * moves a job would have to keep, for listings, which are rare; each call stays bounded.
 *
 * **Payloads.** Offloaded payloads are read from their objects (8 at a time). With a queue name the
 * jobs come as `get` returns them (payload encoded); with a definition the payloads are decoded. A
 * job whose payload cannot be had (its object gone or damaged, or, decoded, not matching the
 * schema) is listed anyway, as stored, with `payloadError` saying why; a store that fails (past
 * its retries) fails the call.
 *
 * @internal
 */
import { Cause, Effect, Option } from "effect"
import type { JobRecord, JobStatus } from "../../schema/JobRecord.ts"
import { afterPrefix } from "../kv/engine.ts"
import { checked, invalid } from "../internal/options.ts"
import type { JobPage, ListedRecord, ListOptions, Service } from "../JobQueue.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import type { ReadError } from "../Kv.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import * as QueueOptions from "./options.ts"
import type { Payloads } from "./payloads.ts"
import { decodeOrSkip } from "./records.ts"

/** Keys read per call when a listing filters the global time order (scheduled, done). */
const scanBudget = 4096
/** Keys read per scan when filtering. */
const filterChunk = 512

/** The key space of a listing: its prefix, and whether its keys are filtered by queue. */
interface Space {
  readonly prefix: string
  /** For the time-first spaces: whether a key is one of the queue's. */
  readonly filter?: ((key: string) => boolean) | undefined
}

const spaceOf = (queue: string, state: JobStatus): Space => {
  switch (state) {
    case "Pending":
      return { prefix: Keys.pendingPrefix(queue) }
    case "Claimed":
      return { prefix: Keys.claimedPrefix(queue) }
    case "Dead":
      return { prefix: Keys.deadPrefix(queue) }
    case "Scheduled":
      return { prefix: Keys.scheduledPrefix, filter: (key) => Keys.isTimedOf(key, queue) }
    case "Done":
      return { prefix: Keys.donePrefix, filter: (key) => Keys.isTimedOf(key, queue) }
  }
}

/** Whether `key` (from a cursor) is a key of `space`: under its prefix, and well-formed there. */
const fits = (space: Space, key: string): boolean =>
  space.filter === undefined ? key.startsWith(space.prefix) && key.length > space.prefix.length : Keys.isTimedKey(space.prefix, key)

/** The entries of one page, and the key to resume strictly after (none: the end). */
interface RawPage {
  readonly entries: ReadonlyArray<readonly [key: string, value: string]>
  readonly last: string | undefined
}

/** `list`, `deadJobs` and the page reader they share, for the queue of `ctx`. */
export const make = (ctx: QueueContext, payloads: Payloads) => {
  const { kv, live } = ctx
  const { payloadOf } = payloads

  /**
   * Up to `limit` entries of `space` after `after`, with the key to resume after when more may
   * follow. Unfiltered: one scan of `limit + 1`. Filtered: scans of `filterChunk` until `limit + 1`
   * matches, the end, or `scanBudget` keys read.
   */
  const readPage = (space: Space, after: string | undefined, limit: number): Effect.Effect<RawPage, ReadError> =>
    Effect.gen(function*() {
      const end = afterPrefix(space.prefix)
      let start = after === undefined ? space.prefix : Keys.justAfter(after)
      if (space.filter === undefined) {
        const entries = yield* kv.scan(start, end, limit + 1)
        return entries.length > limit ? { entries: entries.slice(0, limit), last: entries[limit - 1]![0] } : { entries, last: undefined }
      }
      const hits: Array<readonly [string, string]> = []
      let read = 0
      while (true) {
        const chunk = yield* kv.scan(start, end, filterChunk)
        for (const entry of chunk) {
          if (!space.filter(entry[0])) continue
          // a match past the page: the page ends at the last one taken
          if (hits.length === limit) return { entries: hits, last: hits[limit - 1]![0] }
          hits.push(entry)
        }
        if (chunk.length < filterChunk) return { entries: hits, last: undefined }
        read += chunk.length
        const lastRead = chunk[chunk.length - 1]![0]
        // every match up to `lastRead` is in `hits`: the next call resumes after it
        if (read >= scanBudget) return { entries: hits, last: lastRead }
        start = Keys.justAfter(lastRead)
      }
    })

  /** The records of a page's entries (one that does not decode as a record is logged and left out). */
  const recordsOf = (entries: RawPage["entries"]) =>
    Effect.map(
      Effect.forEach(entries, ([key, value]) => decodeOrSkip(key, value)),
      (records) => records.filter((r): r is JobRecord => r !== undefined)
    )

  /** Why a payload could not be had, or the store's failure (which fails the call). */
  const payloadProblem = (cause: Cause.Cause<unknown>): Effect.Effect<string, ObjectStoreError> => {
    const error = cause.reasons.find(Cause.isFailReason)?.error as { readonly _tag?: string; readonly message?: string } | undefined
    if (error?._tag === "ObjectStoreError") return Effect.fail(error as ObjectStoreError)
    return Effect.succeed(error?.message ?? Cause.pretty(cause))
  }

  /** A record as `get` returns it: an offloaded payload read back, or `payloadError`. */
  const materialize = (record: JobRecord): Effect.Effect<ListedRecord, ObjectStoreError> =>
    record.payloadRef === undefined ? Effect.succeed(record) : Effect.flatMap(Effect.exit(payloadOf(record)), (read) =>
      read._tag === "Success"
        ? Effect.succeed({ ...record, payload: read.value })
        : Effect.map(payloadProblem(read.cause), (payloadError) => ({ ...record, payloadError })))

  /** The key a listing's cursor stands for, or `InvalidOption` when it is not one of `space`'s. */
  const afterOf = (space: Space, cursor: string | undefined) => {
    if (cursor === undefined) return Effect.succeed(undefined)
    const key = Keys.fromCursor(cursor)
    return key !== undefined && fits(space, key)
      ? Effect.succeed(key)
      : Effect.fail(invalid("cursor", cursor, "is not a cursor of this listing (pass back the cursor a page of it returned)"))
  }

  const pageOf = <J>(
    space: Space,
    options: ListOptions | undefined,
    after: string | undefined,
    toJob: (record: JobRecord) => Effect.Effect<J, ObjectStoreError>
  ): Effect.Effect<JobPage<J>, ObjectStoreError | ReadError> =>
    Effect.gen(function*() {
      const page = yield* readPage(space, after, options?.limit ?? QueueOptions.defaultListLimit)
      const jobs = yield* Effect.forEach(yield* recordsOf(page.entries), toJob, { concurrency: 8 })
      return { jobs, cursor: page.last === undefined ? Option.none() : Option.some(Keys.toCursor(page.last)) }
    })

  /** A page of the jobs of `queue` in `state` as `get` returns them (the form with a definition decodes them: `codec.ts`). */
  const listEncoded = (queue: string, state: JobStatus, options?: ListOptions) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.listError(queue, state, options))
      yield* live
      const space = spaceOf(queue, state)
      const after = yield* afterOf(space, options?.cursor)
      return yield* pageOf(space, options, after, materialize)
    })

  const deadJobs: Service["deadJobs"] = (queue, options) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.deadJobsError(queue, options))
      yield* live
      const after = options?.after === undefined ? undefined : Keys.dead(queue, options.after)
      const page = yield* readPage(spaceOf(queue, "Dead"), after, options?.limit ?? QueueOptions.defaultListLimit)
      return yield* Effect.forEach(yield* recordsOf(page.entries), materialize, { concurrency: 8 })
    })

  return { listEncoded, deadJobs }
}
