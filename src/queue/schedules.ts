/**
 * Cron schedules: `schedule`, `unschedule` and `schedules`, and `fireDue`, the step of the
 * scheduler loop (`maintenance.ts`) that enqueues the due slots of every stored schedule.
 *
 * **Contract**
 *
 * - A schedule is stored in the KV (`schema/Schedule.ts`) with everything its jobs are built
 *   from, so a process that never saw the definition carries it on.
 * - Its slots are what `Cron.next` says, walking forward from the instant the schedule was made.
 * - Each slot is enqueued at most once and, while some process runs the queue, at least once
 *   (unless its policy skips it): the slot's job and the schedule's progress (`after`, `next`,
 *   `lastSlot`) are one durable transaction, and the job's id is derived from the key and the slot
 *   (`slotJobId`); a slot whose id is in the index already is not enqueued again. A writer that
 *   was fenced cannot commit, and its successor reads the progress it committed.
 * - Slots due at or before the moment this process opened the queue were missed (no process ran
 *   them): `missed` decides (`latest`: the newest; `all`: the newest `maxCatchUp`, oldest first;
 *   `none`: none). Slots due since are enqueued at the next tick, the newest `maxCatchUp` of them.
 * - One tick's slots are committed in batches of bounded size (so that a large catch-up fits a
 *   commit); each batch records the last slot it handled, and what is left is the suffix that the
 *   next batch (or the next process) computes again from the same rules.
 *
 * @internal
 */
import { Clock, Cron, Effect, Option } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import * as ScheduleSchema from "../../schema/Schedule.ts"
import type { Schedule } from "../../schema/Schedule.ts"
import { fromLatin1, toLatin1 } from "../internal/binary.ts"
import { checked, invalid } from "../internal/options.ts"
import * as Job from "../Job.ts"
import type { ScheduleInfo, ScheduleOptions, Service } from "../JobQueue.ts"
import { PayloadTooLarge } from "../JobQueueError.ts"
import * as Kv from "../Kv.ts"
import { Corrupt } from "../KvError.ts"
import { afterPrefix, type Reads } from "../kv/engine.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping } from "./leases.ts"
import * as QueueOptions from "./options.ts"
import { move, payloadVersionField, retries, stage } from "./records.ts"
import type { JobSettings } from "./wire.ts"

/** The largest encoded payload of a schedule: it is stored inline, in the schedule and in each job. */
export const maxSchedulePayload = 64 * 1024

/** The default of `maxCatchUp`. */
const defaultMaxCatchUp = 100

/** About the most bytes of job records one commit of a tick stages (the KV takes 16 MiB by default). */
const commitBudget = 4 * 1024 * 1024

const utf8 = new TextEncoder()

/** base64url, without padding: `[A-Za-z0-9_-]` only, and one string per byte string. */
const base64url = (data: Uint8Array): string =>
  btoa(toLatin1(data)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")

/**
 * The id of the job of slot `slot` (epoch ms) of schedule `key`: base64url of the key's UTF-8,
 * `-`, the slot's epoch ms as 16 decimal digits (zero-padded, so that ids order as their slots
 * and a schedule's jobs are claimed oldest slot first). Injective (the last `-` separates the
 * two: the digits have none), and within the job id rule: a key of at most 64 bytes is at most
 * 86 characters, and every instant of a `Date` fits 16 digits (at most 103 characters in all).
 */
export const slotJobId = (key: string, slot: number): string =>
  `${base64url(utf8.encode(key))}-${String(Math.max(0, Math.floor(slot))).padStart(16, "0")}`

/** The next slot strictly after `instant`, or undefined when the expression has none. */
const nextSlot = (cron: Cron.Cron, instant: number): number | undefined => {
  try {
    return Cron.next(cron, instant).getTime()
  } catch {
    return undefined // "Unable to find cron date": no slot left
  }
}

/** The slot strictly before `instant`, or undefined. */
const prevSlot = (cron: Cron.Cron, instant: number): number | undefined => {
  try {
    return Cron.prev(cron, instant).getTime()
  } catch {
    return undefined
  }
}

/**
 * The last `limit` slots in `(from, to]`, oldest first, as `Cron.next` walks them. To skip a long
 * stretch without stepping through it, the walk first goes back `limit` slots from `to` with
 * `Cron.prev`; when it gets that far without reaching `from`, the forward walk starts there.
 */
export const lastSlots = (cron: Cron.Cron, from: number, to: number, limit: number): Array<number> => {
  if (to <= from || limit <= 0) return []
  let start = from
  let back = to + 1
  for (let count = 0; count < limit; count++) {
    const slot = prevSlot(cron, back)
    if (slot === undefined || slot <= from) break
    back = slot
    if (count === limit - 1) start = slot - 1
  }
  const slots: Array<number> = []
  for (let at = start;;) {
    const slot = nextSlot(cron, at)
    if (slot === undefined || slot > to) break
    slots.push(slot)
    if (slots.length > limit) slots.shift()
    at = slot
  }
  return slots
}

/**
 * The slots a tick at `now` enqueues for `schedule`, oldest first: those missed (due at or before
 * `openedAt`, when this process opened the queue) as its policy says, then those due since, the
 * newest `maxCatchUp` of all.
 */
export const dueSlots = (schedule: Schedule, cron: Cron.Cron, now: number, openedAt: number): Array<number> => {
  const missedEnd = Math.min(openedAt, now)
  const missedLimit = schedule.missed === "all" ? schedule.maxCatchUp : schedule.missed === "latest" ? 1 : 0
  const missed = lastSlots(cron, schedule.after, missedEnd, missedLimit)
  const onTime = lastSlots(cron, Math.max(schedule.after, missedEnd), now, schedule.maxCatchUp)
  const all = missed.concat(onTime)
  return all.length > schedule.maxCatchUp ? all.slice(all.length - schedule.maxCatchUp) : all
}

/** What `schedules` tells of a stored schedule. */
const infoOf = (schedule: Schedule): ScheduleInfo => ({
  key: schedule.key,
  queue: schedule.queue,
  cron: schedule.cron,
  timezone: schedule.timezone,
  missed: schedule.missed,
  maxCatchUp: schedule.maxCatchUp,
  nextSlot: Option.fromUndefinedOr(schedule.next),
  lastSlot: Option.fromUndefinedOr(schedule.lastSlot)
})

/** A stored schedule, or undefined (logged) when it does not decode. */
const decodeOrSkip = (key: string, value: string) =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(ScheduleSchema.decode(fromLatin1(value)))
    } catch (error) {
      return Effect.as(Effect.logWarning(`schedule ${Keys.describe(key)} does not decode; skipped`, error), undefined)
    }
  })

/** The schedule stored under `key`, read in a transaction (undefined when there is none). */
const readSchedule = (tx: Reads, key: string): Effect.Effect<Schedule | undefined, Kv.ReadError> =>
  Effect.map(tx.get(Keys.schedule(key)), (value) => (value === undefined ? undefined : ScheduleSchema.decode(fromLatin1(value))))

/** The schedules of one queue. */
export type Schedules = ReturnType<typeof make>

/** `schedule`, `unschedule`, `schedules` and the scheduler's `fireDue` of the queue of `ctx`. */
export const make = (ctx: QueueContext, book: Bookkeeping) => {
  const { events, kv, live } = ctx
  const { announce } = book

  // Parsed expressions by time zone and expression: a tick parses each schedule's once.
  const parsed = new Map<string, Cron.Cron | undefined>()
  const cronOf = (expression: string, timezone: string): Cron.Cron | undefined => {
    const id = `${timezone}\n${expression}`
    if (parsed.has(id)) return parsed.get(id)
    const result = Cron.parse(expression, timezone)
    const cron = result._tag === "Success" ? result.success : undefined
    if (parsed.size < 10_000) parsed.set(id, cron)
    return cron
  }

  /**
   * Stores a schedule of a definition with `settings`, its payload encoded and its options
   * checked (the cron expression parsed here, in its time zone).
   */
  const scheduleEncoded = (settings: JobSettings, payload: Uint8Array, options: Omit<ScheduleOptions<unknown>, "payload">) =>
    Effect.gen(function*() {
      const timezone = options.timezone ?? "UTC"
      const cron = cronOf(options.cron, timezone)
      if (cron === undefined) return yield* invalid("cron", options.cron, `does not parse in time zone ${timezone}`)
      if (payload.length > maxSchedulePayload) return yield* new PayloadTooLarge({ size: payload.length, limit: maxSchedulePayload })
      const now = yield* Clock.currentTimeMillis
      if (nextSlot(cron, now) === undefined) return yield* invalid("cron", options.cron, "has no slot to come")
      const { value: stored } = yield* kv.transaction((tx) =>
        Effect.map(readSchedule(tx, options.key), (existing) => {
          // a replaced schedule keeps its progress: no slot up to now fires again
          const after = Math.max(now, existing?.after ?? now)
          const next = nextSlot(cron, after)
          const record: Schedule = {
            key: options.key,
            queue: settings.queue,
            cron: options.cron,
            timezone,
            missed: options.missed ?? "latest",
            maxCatchUp: options.maxCatchUp ?? defaultMaxCatchUp,
            payload,
            headers: { ...options.headers },
            priority: options.priority === undefined ? settings.priority : Job.priorityValue(options.priority),
            maxAttempts: options.maxAttempts ?? settings.maxAttempts,
            deadRetentionMs: settings.deadRetentionMillis,
            ...payloadVersionField(settings),
            createdAt: existing?.createdAt ?? now,
            after,
            ...(next === undefined ? {} : { next }),
            ...(existing?.lastSlot === undefined ? {} : { lastSlot: existing.lastSlot })
          }
          tx.put(Keys.schedule(options.key), toLatin1(ScheduleSchema.encode(record)))
          return record
        }), retries)
      return infoOf(stored)
    })

  const unschedule: Service["unschedule"] = (key) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.scheduleKeyError(key))
      const { value: outcome } = yield* kv.transaction((tx) =>
        Effect.map(tx.get(Keys.schedule(key)), (value) => {
          if (value === undefined) return "NotFound" as const
          tx.delete(Keys.schedule(key))
          return "Removed" as const
        }), retries)
      return outcome
    })

  const schedules: Service["schedules"] = () =>
    Effect.gen(function*() {
      yield* live
      const entries = yield* kv.scan(Keys.schedulePrefix, afterPrefix(Keys.schedulePrefix))
      const out: Array<ScheduleInfo> = []
      for (const [key, value] of entries) {
        const stored = yield* decodeOrSkip(key, value)
        if (stored !== undefined) out.push(infoOf(stored))
      }
      return out
    })

  /** The job record of `slot` of `schedule`, enqueued at `now`. */
  const slotRecord = (schedule: Schedule, slot: number, now: number): JobRecord => ({
    id: slotJobId(schedule.key, slot),
    queue: schedule.queue,
    payload: schedule.payload,
    headers: schedule.headers,
    status: "Pending",
    attempts: 0,
    maxAttempts: schedule.maxAttempts,
    priority: schedule.priority,
    enqueuedAt: now,
    deadRetentionMs: schedule.deadRetentionMs,
    ...(schedule.payloadVersion === undefined ? {} : { payloadVersion: schedule.payloadVersion })
  })

  /**
   * One commit of the schedule under `key`: the first batch of its due slots enqueued (those
   * whose job id is not taken), with its progress. Tells whether slots are left for another batch.
   */
  const fireBatch = (key: string, now: number, openedAt: number) =>
    Effect.map(kv.transaction((tx) =>
      Effect.gen(function*() {
        const stored = yield* readSchedule(tx, key)
        if (stored === undefined || stored.next === undefined || stored.next > now) return { queue: undefined, enqueued: 0, more: false }
        const cron = cronOf(stored.cron, stored.timezone)
        if (cron === undefined) {
          return yield* new Corrupt({ key: `schedule ${key}`, detail: `cron ${stored.cron} in ${stored.timezone} no longer parses` })
        }
        const slots = dueSlots(stored, cron, now, openedAt)
        const perCommit = Math.max(1, Math.floor(commitBudget / (stored.payload.length + 1024)))
        const batch = slots.slice(0, perCommit)
        const more = slots.length > batch.length
        const created: Array<JobRecord> = []
        for (const slot of batch) {
          const record = slotRecord(stored, slot, now)
          if ((yield* tx.get(Keys.index(record.id))) !== undefined) continue // enqueued before
          stage(tx, record)
          created.push(record)
        }
        const enqueued = created.length
        if (enqueued > 0) move(tx, stored.queue, undefined, "Pending", enqueued)
        // handled through the batch's last slot when slots are left, else through now
        const last = batch.at(-1)
        const after = more && last !== undefined ? last : now
        const next = nextSlot(cron, after)
        const { next: _, ...rest } = stored
        const progressed: Schedule = {
          ...rest,
          after,
          ...(next === undefined ? {} : { next }),
          ...(last === undefined ? {} : { lastSlot: last })
        }
        tx.put(Keys.schedule(key), toLatin1(ScheduleSchema.encode(progressed)))
        return { queue: stored.queue, enqueued, created, more }
      }), retries), (result) => result.value)

  /**
   * The scheduler's step: every stored schedule with a slot due by now gets its due slots
   * enqueued (see the module's header); `openedAt` is when this process opened the queue (slots
   * due until then were missed). A schedule that fails is logged and tried again next tick,
   * without holding up the others; a stopped writer ends the step.
   */
  const fireDue = (openedAt: number) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const entries = yield* kv.scan(Keys.schedulePrefix, afterPrefix(Keys.schedulePrefix))
      for (const [key, value] of entries) {
        const stored = yield* decodeOrSkip(key, value)
        if (stored === undefined || stored.next === undefined || stored.next > now) continue
        const fire = Effect.gen(function*() {
          for (let more = true; more;) {
            const result = yield* fireBatch(stored.key, now, openedAt)
            if (result.queue !== undefined && result.enqueued > 0) announce(result.queue)
            if (result.created !== undefined) events.enqueuedAll(result.created)
            more = result.more
          }
        })
        const failed = (error: unknown) => Effect.logWarning(`schedule ${stored.key} could not enqueue its due slots`, error)
        yield* fire.pipe(Effect.catchIf((error) => !Kv.isStopError(error), failed), Effect.catchDefect(failed))
      }
    })

  return { scheduleEncoded, unschedule, schedules, fireDue }
}
