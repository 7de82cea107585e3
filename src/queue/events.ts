/**
 * The queue's events (`queue.events`): what happened to jobs in this process, each published once
 * the change it tells is committed (durable, but for `Claimed`: claims are not). Events are for
 * watching, not for driving work: a subscriber that falls `capacity` events behind misses what
 * is published until it catches up, and events of other processes (another writer, after a
 * takeover) are not seen. Without a subscriber nothing is built or published, so the hot paths pay one comparison.
 *
 * @internal
 */
import { Effect, Option, PubSub, type Scope, Stream } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type { JobEvent } from "../JobQueue.ts"

/** Events a subscriber may fall behind by before it misses new ones. */
const capacity = 4096

/** The events of one queue. */
export interface EventHub {
  /** Publishes the event `make` builds, if anyone listens (else `make` is not called). */
  readonly emit: (make: () => JobEvent) => void
  /** Publishes the events `make` builds, if anyone listens. */
  readonly emitAll: (make: () => ReadonlyArray<JobEvent>) => void
  /** Every event published from the moment the stream starts. */
  readonly stream: Stream.Stream<JobEvent>
}

/** An event hub, shut down with the scope (streams then end). */
export const make: Effect.Effect<EventHub, never, Scope.Scope> = Effect.gen(function*() {
  const pubsub = yield* Effect.acquireRelease(PubSub.dropping<JobEvent>(capacity), PubSub.shutdown)
  let subscribers = 0
  const emit = (make: () => JobEvent) => {
    if (subscribers > 0) PubSub.publishUnsafe(pubsub, make())
  }
  const emitAll = (make: () => ReadonlyArray<JobEvent>) => {
    if (subscribers > 0) for (const event of make()) PubSub.publishUnsafe(pubsub, event)
  }
  const subscription = Effect.acquireRelease(
    Effect.tap(PubSub.subscribe(pubsub), () => Effect.sync(() => subscribers++)),
    () => Effect.sync(() => subscribers--)
  )
  const stream = Stream.unwrap(Effect.map(subscription, Stream.fromSubscription))
  return { emit, emitAll, stream }
})

/** The `Enqueued` event of a job just committed. */
export const enqueued = (record: JobRecord): JobEvent => ({ _tag: "Enqueued", id: record.id, queue: record.queue, at: record.enqueuedAt })

/**
 * The event of a claimed job's record after its claim ended by `next`: `Retried` (pending or
 * scheduled again, with `error`) or `DeadLettered` (with its reason).
 */
export const claimEnded = (next: JobRecord, error: string, at: number): JobEvent =>
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
