/**
 * What the parts of one queue share, built once by `JobQueue.make` and handed to each part
 * explicitly: the KV's engine (its one write vocabulary, `kv/engine.ts`), the
 * object store, the generator of job ids and claim tokens, the guard against a stopped writer,
 * the payload limits and the event hub (which counts the queue's metrics). No module under `src/queue/` keeps state of its own: two queues in one
 * process share nothing.
 *
 * @internal
 */
import { Clock, Effect, Random, type Scope } from "effect"
import { monotonicFactory } from "ulid"
import * as KvEngine from "../kv/engine.ts"
import type { Options } from "../JobQueue.ts"
import * as Kv from "../Kv.ts"
import * as Events from "./events.ts"
import type { EventHub } from "./events.ts"
import * as Floors from "./floors.ts"
import * as Metrics from "./metrics.ts"
import { ObjectStore, type Service as ObjectStoreService } from "../ObjectStore.ts"

/** Encoded payloads up to this size are stored inline by default. */
const defaultOffloadThreshold = 256 * 1024
/** The largest encoded payload taken by default. */
export const defaultMaxPayload = 64 * 1024 * 1024

/** The shared state of one queue (see the module's header). */
export interface QueueContext {
  /** The engine of the KV: every read and commit of the queue goes through it. */
  readonly kv: KvEngine.Engine
  readonly store: ObjectStoreService
  /** A random number in [0, 1) (backoff jitter). */
  readonly random: () => number
  /** The next job id or claim token at `now`. */
  readonly nextId: (now: number) => string
  /**
   * Fails with why the KV's writer stopped (`Fenced` or `Closed`), if it did. Commits fail so on
   * their own; this guards what would otherwise read stale state or touch the store first.
   */
  readonly live: Effect.Effect<void, Kv.StopError>
  /** Encoded payloads larger than this are stored as objects of their own. */
  readonly offloadThreshold: number
  /** The largest encoded payload taken. */
  readonly maxPayload: number
  /** The queue's events (see `events.ts`). */
  readonly events: EventHub
  /** Where scans of the ranges the queue consumes from the front begin (see `floors.ts`). */
  readonly floors: Floors.Floors
}

/** The context of a queue over the KV and the store in context (its options already checked). */
export const make = (options: Options | undefined): Effect.Effect<QueueContext, Kv.ReadError, Kv.Kv | ObjectStore | Scope.Scope> =>
  Effect.gen(function*() {
    const kv = KvEngine.engineOf(yield* Kv.Kv)
    if (kv === undefined) {
      return yield* Effect.die(new Error("the Kv in context was not made by Kv.make or Kv.layer (a copy or wrapper of one has no engine): the job queue needs the KV's own service"))
    }
    const store = yield* ObjectStore
    const offloadThreshold = options?.offloadThreshold ?? defaultOffloadThreshold
    const maxPayload = Math.max(offloadThreshold, options?.maxPayloadBytes ?? defaultMaxPayload)
    const random = yield* Random.Random
    const clock = yield* Clock.Clock
    const newUlid = monotonicFactory(() => random.nextDoubleUnsafe())
    // Job ids and claim tokens come from one monotonic generator: never reused, even within a millisecond.
    const nextId = (now: number) => newUlid(Math.floor(now))
    const live: Effect.Effect<void, Kv.StopError> = Effect.suspend(() => {
      const failure = kv.failure()
      return failure === undefined ? Effect.void : Effect.fail(failure)
    })
    const floors = Floors.make(kv)
    return {
      kv,
      store,
      floors,
      random: () => random.nextDoubleUnsafe(),
      nextId,
      live,
      offloadThreshold,
      maxPayload,
      // events built synchronously take the instant from the `Clock` the queue was built with
      events: yield* Events.make(yield* Metrics.make(kv, floors, clock), () => clock.currentTimeMillisUnsafe())
    }
  })
