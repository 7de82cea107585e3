/**
 * The queue's background work, started once the queue opens: first the requeue at open (jobs
 * left claimed by a previous process requeued, their attempt counted, or dead-lettered), then,
 * forked in the layer's scope, the reaper (expired leases requeued or dead-lettered, then the
 * retention sweep of done and dead jobs past their expiry) and the scheduler (due scheduled jobs
 * made pending, and the due slots of cron schedules enqueued: see `schedules.ts`). A failed step is logged and tried again at the next tick; both loops stop when
 * the KV's writer stops for good, so that nothing touches the store any more.
 *
 * @internal
 */
import { Clock, Duration, Effect, Fiber, Option, Schedule, type Scope } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type { Options, QueueError } from "../JobQueue.ts"
import { afterPrefix, Changes } from "../kv/engine.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping } from "./leases.ts"
import type { Payloads } from "./payloads.ts"
import type { Schedules } from "./schedules.ts"
import { decodeOrSkip, move, read, requeueOrBury, retries, stage, without } from "./records.ts"

/** Scheduled jobs promoted per commit: a commit stays far below the KV's size limit. */
const promotePage = 1000

/** Expiry entries read per sweep. */
const sweepPage = 10_000

/** Jobs left claimed by a previous writer requeued per commit at open. */
const requeuePage = 1000

/**
 * Requeues the jobs left claimed, then forks the reaper and the scheduler of the queue of `ctx`
 * in the scope (the scheduler's cron step told when the queue opened).
 */
export const start = (
  ctx: QueueContext,
  book: Bookkeeping,
  payloads: Payloads,
  schedules: Schedules,
  options: Options | undefined
): Effect.Effect<void, QueueError, Scope.Scope> =>
  Effect.gen(function*() {
    const { events, floors, kv } = ctx
    const { announce, complete, leases } = book
    const { dropPayloads } = payloads

    const reapExpired = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const [id, lease] of [...leases.entries()]) {
        if (lease.expiresAt > now || lease.reaping) continue
        lease.reaping = true
        const exit = yield* Effect.exit(kv.transaction((tx) =>
          Effect.map(read(tx, Keys.claimed(lease.queue, id)), (record) =>
            record === undefined ? undefined : requeueOrBury(tx, record, now, "LeaseExpired", "lease expired")), { durable: false, ...retries }))
        if (exit._tag === "Failure") {
          // e.g. a record that does not decode: tried again next tick, without holding up the others
          lease.reaping = false
          yield* Effect.logWarning(`lease of ${id} could not be reaped`, exit.cause)
          continue
        }
        const next = exit.value.value
        if (leases.get(id) === lease) leases.delete(id)
        if (next?.status === "Pending") announce(next.queue)
        if (next?.status === "Dead") complete(id, Option.some(next))
        if (next !== undefined) events.reaped(next, "lease expired", now)
      }
    })

    /**
     * Moves the scheduled jobs due by now to pending, `promotePage` per commit (not durable: a
     * promotion lost in a crash is made again), from the floor of the scheduled range on.
     */
    const promoteDue = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const end = Keys.timeBound(Keys.scheduledPrefix, now)
      while (true) {
        const due = yield* kv.scan(floors.start(Keys.scheduledPrefix), end, promotePage)
        if (due.length === 0) return floors.advance(Keys.scheduledPrefix, end)
        const { value: { left, queues } } = yield* kv.transaction((tx) =>
          Effect.gen(function*() {
            const queues = new Set<string>()
            // the first entry left in place: scans start there next time
            let left: string | undefined
            for (const [key, value] of due) {
              const record = yield* decodeOrSkip(key, value)
              // the key's time is whole milliseconds: a run time that is not (a delay of 1500 micros)
              // is found in its millisecond before it is due, and waits for the next run
              if (record !== undefined && record.runAt !== undefined && record.runAt > now) {
                left ??= key
                continue
              }
              if (record === undefined) continue // does not decode: logged, and stepped over for good
              tx.delete(key)
              stage(tx, { ...without(record, "runAt"), status: "Pending" })
              move(tx, record.queue, "Scheduled", "Pending")
              queues.add(record.queue)
            }
            return { left, queues }
          }), { durable: false, ...retries })
        for (const queue of queues) announce(queue)
        const last = due[due.length - 1]![0]
        floors.advance(Keys.scheduledPrefix, left ?? (due.length < promotePage ? end : Keys.justAfter(last)))
        if (left !== undefined || due.length < promotePage) return
      }
    })

    /**
     * Deletes done and dead jobs past their retention, found by their expiry entries (so a sweep
     * reads only what is due, however many jobs are kept).
     */
    const sweepRetention = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const end = Keys.timeBound(Keys.expiryPrefix, now)
      const due = yield* kv.scan(floors.start(Keys.expiryPrefix), end, sweepPage)
      if (due.length === 0) return floors.advance(Keys.expiryPrefix, end)
      // the first entry left in place: scans start there next time
      let left: string | undefined
      const changes = new Changes()
      const expired: Array<JobRecord> = []
      const present: Array<readonly [key: string, present: boolean]> = []
      for (const [entryKey, recordKey] of due) {
        const value = yield* kv.get(recordKey)
        const record = value === undefined ? undefined : yield* decodeOrSkip(recordKey, value)
        // An entry's key holds its time in whole milliseconds: a record's own entry is found in the
        // millisecond its expiry falls in, before that expiry when it is not whole (a retention of
        // 1500 micros). It stays for the next sweep; deleted, the record would be kept for good.
        const notYet = record?.expiresAt !== undefined && record.expiresAt > now
        if (notYet && Keys.expiry(record.expiresAt!, record.id) === entryKey) {
          left ??= entryKey
          continue
        }
        changes.delete(entryKey)
        if (record === undefined || record.expiresAt === undefined || notYet) continue
        expired.push(record)
        present.push([recordKey, true])
        changes.delete(recordKey)
        changes.delete(Keys.index(record.id))
        move(changes, record.queue, record.status, undefined)
      }
      // Durable first when payload objects go next: a kept record never points to a deleted one.
      // Each record must still be there at the commit: one requeued or purged since it was read
      // (requeueDead, purgeDead) fails the sweep, tried again at the next tick, rather than
      // deleting the index of its new record or counting it twice.
      yield* kv.writeIf(changes, present, { durable: expired.some((record) => record.payloadRef !== undefined) })
      floors.advance(Keys.expiryPrefix, left ?? (due.length < sweepPage ? end : Keys.justAfter(due[due.length - 1]![0])))
      yield* dropPayloads(expired)
    })

    // Jobs left claimed by a previous writer: those its own process held are requeued (the
    // attempt counts) or dead-lettered; those held by another process (over QueueServer, their
    // lease in the record) may still be running there: their lease is held again, for its length
    // from now, so their holder settles or renews them with the same token (or the reaper takes
    // them once it runs out).
    const claimedAtOpen = yield* kv.scan(Keys.claimedAll, afterPrefix(Keys.claimedAll))
    if (claimedAtOpen.length > 0) {
      const now = yield* Clock.currentTimeMillis
      const records: Array<JobRecord> = []
      for (const [key, value] of claimedAtOpen) {
        const record = yield* decodeOrSkip(key, value)
        if (record !== undefined) records.push(record)
      }
      for (const record of records) {
        if (record.lease !== undefined) book.holdLease(record, now, now + record.lease.millis, record.lease.token)
      }
      const interrupted = records.filter((record) => record.lease === undefined)
      for (let i = 0; i < interrupted.length; i += requeuePage) {
        const page = interrupted.slice(i, i + requeuePage)
        yield* kv.transaction((tx) =>
          Effect.sync(() => {
            for (const record of page) requeueOrBury(tx, record, now, "Interrupted", "claim interrupted by process exit")
          }), { durable: false, ...retries })
      }
    }

    // Cron slots due until now were due while no process ran this queue: the schedules' `missed` decides.
    const openedAt = yield* Clock.currentTimeMillis

    const every = (interval: Duration.Input | undefined, fallback: Duration.Input, step: Effect.Effect<void, unknown>) =>
      step.pipe(
        Effect.catchCause((cause) => Effect.logWarning("job queue background step failed", cause)),
        Effect.repeat(Schedule.spaced(Duration.fromInputUnsafe(interval ?? fallback))),
        Effect.forkScoped
      )
    const background = [
      yield* every(options?.reaperInterval, "5 seconds", Effect.andThen(reapExpired, sweepRetention)),
      yield* every(options?.schedulerInterval, "1 second", promoteDue),
      yield* every(options?.schedulerInterval, "1 second", schedules.fireDue(openedAt))
    ]

    /** When the writer stops for good, the reaper and the scheduler stop too: nothing polls on. */
    const stopWithWriter = Effect.flatMap(Effect.flip(kv.stopped), (failure) =>
      Effect.andThen(Effect.logError(`job queue stopped: ${failure.message}`), Fiber.interruptAll(background)))
    yield* Effect.forkScoped(stopWithWriter)
  })
