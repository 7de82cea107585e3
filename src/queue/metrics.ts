/**
 * The queue's metrics (see DESIGN.md §6c), through `effect/Metric`, in the registry of the context
 * the queue was built in:
 *
 * - `bucketq_jobs_total{queue,event}`: counted by the event hub (`events.ts`), the one place every
 *   job event passes, whether or not anyone subscribes;
 * - `bucketq_queue_depth{queue,state}` (`pending`, `scheduled`, `claimed`, `dead`) and
 *   `bucketq_oldest_pending_seconds{queue}`: gauges read when metrics are exported, from the
 *   counters the queue keeps in the KV and from the head of its pending keys, so that nothing is
 *   updated on the hot path and nothing is scanned. Registered for every queue with counters when
 *   the queue opens, and for a queue seen later at its first event; removed when the queue closes.
 *
 * The series of a queue are built once, at its first event: an event then costs a map lookup for
 * the queue and the counter's own update (a registry lookup), no allocation.
 *
 * @internal
 */
import { type Clock, Effect, Metric, type Scope } from "effect"
import * as JobRecordSchema from "../../schema/JobRecord.ts"
import { fromLatin1 } from "../internal/binary.ts"
import { afterPrefix, type Engine, type NotResident, notResident } from "../kv/engine.ts"
import type { ReadError } from "../Kv.ts"
import type { Floors } from "./floors.ts"
import * as Keys from "./keys.ts"

/** The `event` label of `bucketq_jobs_total`. */
export type JobEventName = "enqueued" | "claimed" | "completed" | "retried" | "dead_lettered" | "reaped" | "cancelled"

const eventNames: ReadonlyArray<JobEventName> = [
  "enqueued",
  "claimed",
  "completed",
  "retried",
  "dead_lettered",
  "reaped",
  "cancelled"
]

/** The `state` label of `bucketq_queue_depth`, and the status whose counter it reads. */
const depthStates = [["pending", "Pending"], ["scheduled", "Scheduled"], ["claimed", "Claimed"], ["dead", "Dead"]] as const

/** The most priorities `bucketq_oldest_pending_seconds` looks at the head of (a bound on its read). */
const maxPrioritiesRead = 64

/** The metrics of one queue instance (see the module's header). */
export interface QueueMetrics {
  /** Counts `n` events of `event` in `queue`. */
  readonly count: (queue: string, event: JobEventName, n: number) => void
}

const jobsTotal = (queue: string, event: JobEventName) =>
  Metric.counter("bucketq_jobs_total", {
    description: "Job events in this process, by queue and event",
    incremental: true,
    attributes: { queue, event }
  })

const depth = (queue: string, state: string) =>
  Metric.gauge("bucketq_queue_depth", { description: "Jobs of a queue in a state, as its counters stand", attributes: { queue, state } })

const oldestPending = (queue: string) =>
  Metric.gauge("bucketq_oldest_pending_seconds", {
    description: "How long the longest-waiting job next in line of a queue has waited since it was due",
    attributes: { queue }
  })

/** When a stored pending record became due: its run time, or its enqueue (undefined: it does not decode). */
const dueSince = (value: string): number | undefined => {
  try {
    const record = JobRecordSchema.decode(fromLatin1(value))
    return Math.max(record.enqueuedAt, record.runAt ?? 0)
  } catch {
    return undefined // a damaged record is the claim's to report (it dead-letters it), not the exporter's
  }
}

/**
 * The age in seconds at `now` of the longest-waiting pending job among the first of each priority
 * of `queue` (0 when none is pending): each is due since its run time or its enqueue. Reads one
 * entry per priority in use, up to `maxPrioritiesRead`; a head that does not decode is passed over.
 */
const oldestPendingSeconds = (kv: Engine, floors: Floors, queue: string, now: number): number | NotResident => {
  const prefix = Keys.pendingPrefix(queue)
  const end = afterPrefix(prefix)
  let start = floors.from(prefix)
  let oldest = Number.POSITIVE_INFINITY
  for (let i = 0; i < maxPrioritiesRead; i++) {
    const scanned = kv.resident.scan(start, end, 1)
    if (scanned === notResident) return notResident
    const head = scanned[0]
    if (head === undefined) break
    const since = dueSince(head[1])
    if (since !== undefined) oldest = Math.min(oldest, since)
    // past the keys of this priority (`prefix | priority u32 | id`): at the next one in use, if any
    const next = afterPrefix(head[0].slice(0, prefix.length + 4))
    if (next === undefined) break
    start = next
  }
  return oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, now - oldest) / 1000
}

/**
 * The metrics of a queue over `kv` (its KV's engine), in the registry of the context it is built in;
 * the gauges' series are removed when the scope closes.
 */
export const make = (kv: Engine, floors: Floors, clock: Clock.Clock): Effect.Effect<QueueMetrics, ReadError, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<never>()
    const counters = new Map<string, Record<JobEventName, Metric.Counter<number>>>()
    const registrations: Array<Metric.Registration> = []
    yield* Effect.addFinalizer(() => Effect.sync(() => registrations.forEach((r) => r.remove())))

    /**
     * Registers `metric` read by `read` at export; an answer that is not in memory (a block of the
     * store's runs that is not cached) is not fetched from a synchronous export: the gauge keeps
     * its last value.
     */
    const gauge = (metric: Metric.Gauge<number>, read: () => number | NotResident) => {
      let last = 0
      const value = () => {
        const current = read()
        if (current !== notResident) last = current
        return last
      }
      registrations.push(Metric.registerUnsafe(metric, context, { get: () => ({ value: value() }), update: () => {}, modify: () => {} }))
    }

    /** The series of `queue`, built and its gauges registered the first time it is seen. */
    const seriesOf = (queue: string) => {
      let series = counters.get(queue)
      if (series !== undefined) return series
      series = {} as Record<JobEventName, Metric.Counter<number>>
      for (const event of eventNames) series[event] = jobsTotal(queue, event)
      counters.set(queue, series)
      for (const [state, status] of depthStates) {
        const key = Keys.stat(queue, status)
        gauge(depth(queue, state), () => {
          // a counter is stored as its ASCII digits: as latin1, the digits themselves
          const value = kv.resident.get(key)
          return value === notResident ? value : Number(value ?? 0)
        })
      }
      gauge(oldestPending(queue), () => oldestPendingSeconds(kv, floors, queue, clock.currentTimeMillisUnsafe()))
      return series
    }

    // the queues already in the store, so that their depth is exported before any event
    for (const [key] of yield* kv.scan(Keys.statsPrefix, afterPrefix(Keys.statsPrefix))) {
      const stat = Keys.parseStat(key)
      if (stat !== undefined) seriesOf(stat.queue)
    }

    return {
      count: (queue, event, n) => seriesOf(queue)[event].updateUnsafe(n, context)
    }
  })
