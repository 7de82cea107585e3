/**
 * Claiming: up to `max` pending jobs of a queue moved to claimed in one conditional write (claims
 * of a queue serialized by its lock), each lease held before its payload is read, payloads that
 * no longer decode (or whose object is gone or damaged, or whose stored version does not migrate
 * to the definition's) dead-lettered on the way, their stored payload kept, never returned;
 * and the wait for an arrival when nothing is pending. A claim is not durable: a crash requeues
 * it at the next open.
 *
 * @internal
 */
import { Cause, Clock, Deferred, Duration, Effect, Option } from "effect"
import * as JobRecordSchema from "../../schema/JobRecord.ts"
import type { JobRecord } from "../../schema/JobRecord.ts"
import { fromLatin1 } from "../internal/binary.ts"
import * as Latin1Kv from "../internal/latin1Kv.ts"
import type * as Job from "../Job.ts"
import type { Claim, ClaimOptions, QueueError, Service } from "../JobQueue.ts"
import type { InvalidQueueName } from "../JobQueueError.ts"
import type { InvalidOption } from "../InvalidOption.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping, Held } from "./leases.ts"
import * as QueueOptions from "./options.ts"
import type { Payloads } from "./payloads.ts"
import { moveUpdates, pushStageWrites, without } from "./records.ts"

/**
 * `claim` of the queue of `ctx`; `deadLetter` takes the jobs whose payload does not decode, and
 * `isPaused` tells the queues whose claims return nothing (see `control.ts`).
 */
export const make = (
  ctx: QueueContext,
  book: Bookkeeping,
  payloads: Payloads,
  deadLetter: Service["deadLetter"],
  isPaused: (queue: string) => boolean
) => {
  const { events, fast, kv, live } = ctx
  const { arrival, holdLease, lockOf } = book
  const { decodePayload } = payloads

  // A hot path, like enqueue and ack: plain functions over a few combinators rather than
  // generators (each step through the runtime costs, and most of the work is synchronous).

  /**
   * Moves up to `max` pending jobs of `queue` to claimed, at `now`. Claims of one queue are
   * serialized by its lock, so the only writers that can race this one are cancels of the same
   * pending jobs: the commit checks that each is still there, and a lost race scans again.
   */
  const claimRecords = (queue: string, max: number, now: number, retried = 0): Effect.Effect<Array<JobRecord>, QueueError> => {
    const prefix = Keys.pendingPrefix(queue)
    return Effect.flatMap(fast.scan(prefix, Latin1Kv.afterPrefix(prefix), max), (entries) => {
      if (entries.length === 0) return Effect.succeed([])
      const writes: Array<Latin1Kv.Op> = []
      const expect: Array<readonly [string, boolean]> = []
      const out: Array<JobRecord> = []
      for (const [key, value] of entries) {
        const record = JobRecordSchema.decode(fromLatin1(value))
        const next: JobRecord = { ...without(record, "dedupKey"), status: "Claimed", attempts: record.attempts + 1, claimedAt: now }
        writes.push([key, null])
        pushStageWrites(writes, next)
        if (record.dedupKey !== undefined) writes.push([Keys.dedup(record.queue, record.dedupKey), null])
        expect.push([key, true])
        out.push(next)
      }
      return fast.writeIf(writes, moveUpdates(queue, "Pending", "Claimed", out.length), expect, { durable: false }).pipe(
        Effect.as(out),
        Effect.catchTag("WriteConditionFailed", () =>
          retried < 1000 ? claimRecords(queue, max, now, retried + 1) : Effect.succeed([]))
      )
    })
  }

  /** Decodes the payload of a record whose lease is held (undefined: dead-lettered instead). */
  const startClaim = <A, I>(
    definition: Job.Definition<A, I>,
    { cancelled, record, token }: Held
  ): Effect.Effect<Claim<A> | undefined, ObjectStoreError> => {
    const decode = decodePayload(definition, record)
    return Effect.flatMap(Effect.exit(decode), (decoded): Effect.Effect<Claim<A> | undefined, ObjectStoreError> => {
      if (decoded._tag === "Success") {
        return Effect.succeed({ job: { ...record, payload: decoded.value }, record, token, definition, cancelled })
      }
      const failure = decoded.cause.reasons.find(Cause.isFailReason)?.error
      if (failure?._tag === "ObjectStoreError") return Effect.fail(failure)
      // A payload that no longer decodes (or whose object is gone, or damaged) goes to the
      // dead-letter queue, never to the caller.
      const claim: Claim<A> = { job: { ...record, payload: undefined as A }, record, token, definition, cancelled }
      const reason = failure?._tag === "PayloadMissing"
        ? `payload object ${failure.key} is missing`
        : failure?._tag === "Corrupt"
        ? `payload object ${failure.key} is corrupt: ${failure.detail}`
        : failure?._tag === "PayloadVersionError"
        ? failure.message // names the stored and current versions and the step that failed
        : `payload does not decode: ${String(decoded.cause)}`
      return Effect.as(Effect.ignore(deadLetter(claim, reason)), undefined)
    })
  }

  /**
   * Moves up to `max` pending jobs of `queue` to claimed and holds their leases for `leaseMillis`
   * (payloads as stored: an offloaded one is not read). A paused queue gives nothing (a waiting
   * claim then waits for `resume`'s announce). What a claim is before its payloads are decoded,
   * wherever the definition is.
   */
  const claimHeld = (queue: string, max: number, leaseMillis: number): Effect.Effect<Array<Held>, QueueError> =>
    // suspended: a waiting claim runs it again, and the queue may have been resumed meanwhile
    Effect.suspend(() =>
      isPaused(queue) ? Effect.succeed([]) : lockOf(queue).withPermits(1)(Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(claimRecords(queue, max, now), (claimed) => {
          const expiresAt = now + leaseMillis
          const held = claimed.map((record) => holdLease(record, now, expiresAt))
          events.emitAll(() => claimed.map((r) => ({ _tag: "Claimed", id: r.id, queue: r.queue, attempt: r.attempts, at: now })))
          return held
        }))))

  /**
   * Claims up to `max` jobs. Jobs whose payload does not decode are dead-lettered on the way;
   * if that leaves nothing while jobs were there, it looks again, so a bad job never makes a
   * caller wait for an arrival while good ones are pending.
   */
  const claimOnce = <A, I>(
    definition: Job.Definition<A, I>,
    max: number,
    lease: Duration.Duration
  ): Effect.Effect<Array<Claim<A>>, QueueError | ObjectStoreError> =>
    Effect.flatMap(claimHeld(definition.queue, max, Duration.toMillis(lease)), (held) => {
      if (held.length === 0) return Effect.succeed([])
      const started = held.length === 1
        ? Effect.map(startClaim(definition, held[0]!), (c) => (c === undefined ? [] : [c]))
        : Effect.map(Effect.forEach(held, (h) => startClaim(definition, h)), (claims) => claims.filter((c) => c !== undefined))
      return Effect.flatMap(started, (claims) => (claims.length === 0 ? claimOnce(definition, max, lease) : Effect.succeed(claims)))
    })

  const claim = <A, I>(
    definition: Job.Definition<A, I>,
    claimOptions?: ClaimOptions
  ): Effect.Effect<ReadonlyArray<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<Claim<A>>, QueueError | InvalidQueueName | InvalidOption | ObjectStoreError> => {
      const invalid = QueueOptions.claimError(definition, claimOptions)
      if (invalid !== undefined) return Effect.fail(invalid)
      const max = Math.max(0, Math.floor(claimOptions?.max ?? 1))
      if (max === 0) return Effect.succeed([])
      const lease = claimOptions?.lease === undefined ? definition.leaseDuration : Duration.fromInputUnsafe(claimOptions.lease)
      const wait = claimOptions?.wait === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(claimOptions.wait))
      const once = claimOnce(definition, max, lease)
      return Effect.andThen(live, wait <= 0 ? once : waitingFor(definition.queue, once, wait, claimOptions?.until))
    })

  /**
   * `once` (a claim of `queue`), then waiting up to `wait` ms for an enqueue while it gives
   * nothing; the wait fails at once if the writer stops meanwhile.
   */
  const waitingFor = <C, E>(queue: string, once: Effect.Effect<Array<C>, E>, wait: number, until: Effect.Effect<void> | undefined) =>
    Effect.gen(function*() {
      const deadline = (yield* Clock.currentTimeMillis) + wait
      while (true) {
        const arrived = arrival(queue) // before the scan, so no enqueue is missed
        const claims = yield* once
        if (claims.length > 0) return claims
        const left = deadline - (yield* Clock.currentTimeMillis)
        if (left <= 0) return claims
        const stop = until === undefined ? Effect.never : Effect.as(until, "stop" as const)
        const woken = yield* Effect.raceFirst(Effect.as(Deferred.await(arrived), "arrived" as const), stop).pipe(
          Effect.raceFirst(kv.stopped),
          Effect.timeoutOption(Duration.millis(left))
        )
        if (Option.isNone(woken) || woken.value === "stop") return claims
      }
    })

  return { claim, claimHeld, waitingFor }
}
