/**
 * The queue's events (`queue.events`): what happened to jobs in this process, each published once
 * the change it tells is committed (durable, but for `Claimed`: claims are not). Events are for
 * watching, not for driving work: a subscriber that falls `capacity` events behind misses what
 * is published until it catches up, and events of other processes (another writer, after a
 * takeover) are not seen. Without a subscriber nothing is built or published, so the hot paths pay one comparison
 * and the count of the event in `bucketq_jobs_total` (`metrics.ts`): the one place job events are counted.
 *
 * @internal
 */
import { Effect, Option, PubSub, type Scope, Stream } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type { JobEvent } from "../JobQueue.ts"
import type { QueueMetrics } from "./metrics.ts"

/** Events a subscriber may fall behind by before it misses new ones. */
const capacity = 4096

/**
 * The events of one queue: each method publishes its event, built only if anyone listens, and
 * counts it in `bucketq_jobs_total` (see `metrics.ts`) in any case. `at` left out: now.
 */
export interface EventHub {
  /** A job just committed (an enqueue, a follow-up, a schedule's slot). */
  readonly enqueued: (record: JobRecord) => void
  /** Jobs just committed, in order. */
  readonly enqueuedAll: (records: ReadonlyArray<JobRecord>) => void
  /** Jobs of `queue` just claimed, at `at` (their records as claimed). */
  readonly claimed: (queue: string, records: ReadonlyArray<JobRecord>, at: number) => void
  readonly completed: (id: string, queue: string, at?: number) => void
  /**
   * A claim ended by `next`, the job's record after it: `Retried` (pending or scheduled again, with
   * `error`) or `DeadLettered` (with its reason).
   */
  readonly claimEnded: (next: JobRecord, error: string, at: number) => void
  /** A claim whose lease expired, ended by the reaper with `next` (counted `reaped` too). */
  readonly reaped: (next: JobRecord, error: string, at: number) => void
  readonly cancelled: (id: string, queue: string, at?: number) => void
  /** Every event published from the moment the stream starts. */
  readonly stream: Stream.Stream<JobEvent>
}

/** An event hub counting in `metrics`, shut down with the scope (streams then end). */
export const make = (metrics: QueueMetrics, now: () => number): Effect.Effect<EventHub, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pubsub = yield* Effect.acquireRelease(PubSub.dropping<JobEvent>(capacity), PubSub.shutdown)
    let subscribers = 0
    const { count } = metrics
    const enqueued = (record: JobRecord) => {
      count(record.queue, "enqueued", 1)
      if (subscribers > 0) PubSub.publishUnsafe(pubsub, { _tag: "Enqueued", id: record.id, queue: record.queue, at: record.enqueuedAt })
    }
    const claimEnded: EventHub["claimEnded"] = (next, error, at) => {
      count(next.queue, next.status === "Dead" ? "dead_lettered" : "retried", 1)
      if (subscribers > 0) PubSub.publishUnsafe(pubsub, claimEndedEvent(next, error, at))
    }
    const subscription = Effect.acquireRelease(
      Effect.tap(PubSub.subscribe(pubsub), () => Effect.sync(() => subscribers++)),
      () => Effect.sync(() => subscribers--)
    )
    return {
      enqueued,
      enqueuedAll: (records) => records.forEach(enqueued),
      claimed: (queue, records, at) => {
        count(queue, "claimed", records.length)
        if (subscribers > 0) {
          for (const r of records) PubSub.publishUnsafe(pubsub, { _tag: "Claimed", id: r.id, queue: r.queue, attempt: r.attempts, at })
        }
      },
      completed: (id, queue, at) => {
        count(queue, "completed", 1)
        if (subscribers > 0) PubSub.publishUnsafe(pubsub, { _tag: "Completed", id, queue, at: at ?? now() })
      },
      claimEnded,
      reaped: (next, error, at) => {
        count(next.queue, "reaped", 1)
        claimEnded(next, error, at)
      },
      cancelled: (id, queue, at) => {
        count(queue, "cancelled", 1)
        if (subscribers > 0) PubSub.publishUnsafe(pubsub, { _tag: "Cancelled", id, queue, at: at ?? now() })
      },
      stream: Stream.unwrap(Effect.map(subscription, Stream.fromSubscription))
    }
  })

/** The event of a claimed job's record after its claim ended by `next` (see `EventHub.claimEnded`). */
const claimEndedEvent = (next: JobRecord, error: string, at: number): JobEvent =>
  next.status === "Dead"
    ? { _tag: "DeadLettered", id: next.id, queue: next.queue, reason: next.lastError ?? error, at }
    : {
      _tag: "Retried",
      id: next.id,
      queue: next.queue,
      error,
      runAt: next.status === "Scheduled" && next.runAt !== undefined ? Option.some(next.runAt) : Option.none(),
      at
    }
