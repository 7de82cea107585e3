/**
 * Dead-letter management: `requeueDead` of one job (pending again with its attempts reset, its
 * history kept with a `Requeued` entry, its last error kept), of every dead job of a queue, and
 * `purgeDead`. Each commit is a durable transaction that reads the dead records it moves, so a
 * race with a claim, a cancel or the retention sweep conflicts and is retried, never applied
 * twice; the counters move in the same commit, and the retention expiry entry of each job leaves
 * with it. A whole queue goes in pages (`pageSize` jobs, at most `pageBytes` of records), one
 * commit each: a failure midway leaves the pages before it done. Claims waiting on the queue are
 * woken once requeued jobs are durable; payload objects of purged jobs are deleted after the
 * commit (a failed delete leaves an orphan, logged).
 *
 * @internal
 */
import { Clock, Effect } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import { checked } from "../internal/options.ts"
import type { Service } from "../JobQueue.ts"
import { InvalidState, JobNotFound } from "../JobQueueError.ts"
import { afterPrefix, type Writes } from "../kv/engine.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping } from "./leases.ts"
import * as QueueOptions from "./options.ts"
import type { Payloads } from "./payloads.ts"
import { decodeOrSkip, locate, move, retries, stage, withAttempt, without } from "./records.ts"

/** Dead jobs moved per commit when a whole queue is requeued or purged. */
const pageSize = 500
/** At most this many bytes of dead records per commit (a commit holds at most 16 MiB by default). */
const pageBytes = 4 * 1024 * 1024

/** A step applied to one dead record inside a page's transaction. */
type Step = (tx: Writes, key: string, record: JobRecord, now: number) => void

/** Deletes a dead record's key and the retention expiry entry that would sweep it. */
const unbury = (tx: Writes, key: string, record: JobRecord): void => {
  tx.delete(key)
  if (record.expiresAt !== undefined) tx.delete(Keys.expiry(record.expiresAt, record.id))
}

/**
 * The dead record at `key` made pending again: attempts 0, a `Requeued` entry in its history, its
 * last error kept; what belonged to its death (failure time, expiry, a cancel asked of it) dropped,
 * and any dedup key (released at its claim: another job may hold it now).
 */
const requeueStep: Step = (tx, key, record, now) => {
  unbury(tx, key, record)
  const pending: JobRecord = {
    ...without(record, "failedAt", "expiresAt", "claimedAt", "lease", "runAt", "cancelRequested", "dedupKey"),
    status: "Pending",
    attempts: 0
  }
  stage(tx, withAttempt(pending, "Requeued", now))
  move(tx, record.queue, "Dead", "Pending")
}

/** The dead record at `key` deleted, with its index and its counter. */
const purgeStep: Step = (tx, key, record) => {
  unbury(tx, key, record)
  tx.delete(Keys.index(record.id))
  move(tx, record.queue, "Dead", undefined)
}

/** The first entries of `scanned` holding at most `pageBytes` of values (at least one). */
const byBytes = <E extends readonly [string, string]>(scanned: ReadonlyArray<E>): ReadonlyArray<E> => {
  let size = 0
  let n = 0
  while (n < scanned.length && (n === 0 || size + scanned[n]![1].length <= pageBytes)) size += scanned[n++]![1].length
  return scanned.slice(0, n)
}

/** `requeueDead` and `purgeDead` of the queue of `ctx`. */
export const make = (ctx: QueueContext, book: Bookkeeping, payloads: Payloads) => {
  const { kv, live } = ctx
  const { announce } = book
  const { dropPayloads } = payloads

  const requeueOne = (id: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const { value: queue } = yield* kv.transaction((tx) =>
        Effect.gen(function*() {
          const found = yield* locate(tx, id)
          if (found === undefined) return yield* new JobNotFound({ id })
          const [key, record] = found
          if (record.status !== "Dead") return yield* new InvalidState({ id, state: record.status, expected: "Dead" })
          requeueStep(tx, key, record, now)
          return record.queue
        }), retries)
      announce(queue)
    })

  /**
   * Applies `step` to every dead job of `queue`, a page per durable commit, each record read again
   * in the commit (one gone or no longer dead meanwhile is left alone); `then` runs after each
   * commit with the records it moved. Returns how many were moved.
   */
  const eachDeadPage = (queue: string, step: Step, then: (moved: ReadonlyArray<JobRecord>) => Effect.Effect<void>) =>
    Effect.gen(function*() {
      const prefix = Keys.deadPrefix(queue)
      const end = afterPrefix(prefix)
      let start = prefix
      let total = 0
      while (true) {
        const scanned = yield* kv.scan(start, end, pageSize)
        if (scanned.length === 0) return total
        const page = byBytes(scanned)
        const now = yield* Clock.currentTimeMillis
        const { value: moved } = yield* kv.transaction((tx) =>
          Effect.gen(function*() {
            const out: Array<JobRecord> = []
            for (const [key] of page) {
              const value = yield* tx.get(key)
              if (value === undefined) continue
              const record = yield* decodeOrSkip(key, value)
              if (record === undefined || record.status !== "Dead") continue
              step(tx, key, record, now)
              out.push(record)
            }
            return out
          }), retries)
        total += moved.length
        yield* then(moved)
        if (page.length === scanned.length && scanned.length < pageSize) return total
        // records that were skipped (gone, or not decoding) are behind this: never read again
        start = Keys.justAfter(page[page.length - 1]![0])
      }
    })

  const requeueDead = ((target: string, options?: { readonly all: true }) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.requeueDeadError(target, options))
      yield* live
      if (options === undefined) return yield* requeueOne(target)
      return yield* eachDeadPage(target, requeueStep, (moved) => Effect.sync(() => moved.length > 0 && announce(target)))
    })) as Service["requeueDead"]

  const purgeDead: Service["purgeDead"] = (queue) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.queueNameError(queue))
      yield* live
      return yield* eachDeadPage(queue, purgeStep, dropPayloads)
    })

  return { requeueDead, purgeDead }
}
