/**
 * Claiming, the core's part: up to `max` pending jobs of a queue moved to claimed in one
 * conditional write (claims of a queue serialized by its lock), each lease held before its
 * payload is read (on demand, by the codec that decodes it: see `codec.ts`), and the wait for an
 * arrival when nothing is pending. A claim is not durable: a crash requeues it at the next open.
 *
 * @internal
 */
import { Clock, Deferred, Duration, Effect, Option } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import { afterPrefix, Changes } from "../kv/engine.ts"
import type { QueueError } from "../JobQueue.ts"
import type { ReadError } from "../Kv.ts"
import type { QueueContext } from "./context.ts"
import type { Core, HeldJob } from "./core.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping, Held } from "./leases.ts"
import type { Payloads } from "./payloads.ts"
import { decodeRecord, move, reportUndecodable, stage, without } from "./records.ts"

/**
 * The core's `claim` of the queue of `ctx` (see `core.ts`; decoding is the codec's, `codec.ts`);
 * `isPaused` tells the queues whose claims return nothing (see `control.ts`).
 */
export const make = (ctx: QueueContext, book: Bookkeeping, payloads: Payloads, isPaused: (queue: string) => boolean) => {
  const { events, floors, kv, live, nextId } = ctx
  const { arrival, holdLease, lockOf } = book
  const { payloadOf } = payloads

  // A hot path, like enqueue and ack: plain functions over a few combinators rather than
  // generators (each step through the runtime costs, and most of the work is synchronous).

  /**
   * The first `max` pending records under `prefix` that decode, with their keys. A record that
   * does not is stepped over (see `reportUndecodable`): it never stalls the jobs behind it.
   */
  const pendingRecords = (prefix: string, max: number, limit = max): Effect.Effect<Array<readonly [string, JobRecord]>, ReadError> =>
    Effect.flatMap(kv.scan(floors.start(prefix), afterPrefix(prefix), limit), (entries) => {
      const records: Array<readonly [string, JobRecord]> = []
      const bad: Array<readonly [string, unknown]> = []
      for (const [key, value] of entries) {
        if (records.length === max) break
        try {
          records.push([key, decodeRecord(value)])
        } catch (error) {
          bad.push([key, error])
        }
      }
      const logged = bad.length === 0 ? Effect.void : Effect.forEach(bad, ([key, error]) => reportUndecodable(key, error), { discard: true })
      // short of `max` because of bad records, with more entries to look at: scan further
      const further = records.length < max && bad.length > 0 && entries.length === limit
      return Effect.andThen(logged, further ? pendingRecords(prefix, max, limit + bad.length) : Effect.succeed(records))
    })

  /**
   * Moves up to `max` pending jobs of `queue` to claimed, at `now`. Claims of one queue are
   * serialized by its lock, so the only writers that can race this one are cancels of the same
   * pending jobs: the commit checks that each is still there, and a lost race scans again.
   */
  const claimRecords = (
    queue: string,
    max: number,
    now: number,
    remoteLease: number | undefined,
    retried = 0
  ): Effect.Effect<Array<JobRecord>, QueueError> => {
    const prefix = Keys.pendingPrefix(queue)
    return Effect.flatMap(pendingRecords(prefix, max), (pending) => {
      if (pending.length === 0) return Effect.succeed([])
      const changes = new Changes()
      const expect: Array<readonly [string, boolean]> = []
      const out: Array<JobRecord> = []
      for (const [key, record] of pending) {
        const next: JobRecord = {
          ...without(record, "dedupKey"),
          status: "Claimed",
          attempts: record.attempts + 1,
          claimedAt: now,
          // a remote holder's lease is kept in the record: a writer opening after a restart keeps it
          ...(remoteLease === undefined ? {} : { lease: { token: nextId(now), millis: remoteLease } })
        }
        changes.delete(key)
        stage(changes, next)
        if (record.dedupKey !== undefined) changes.delete(Keys.dedup(record.queue, record.dedupKey))
        expect.push([key, true])
        out.push(next)
      }
      move(changes, queue, "Pending", "Claimed", out.length)
      return kv.writeIf(changes, expect, { durable: false }).pipe(
        // every pending job up to the last one claimed is taken (or does not decode): later scans start after it
        Effect.map(() => {
          floors.advance(prefix, Keys.justAfter(pending[pending.length - 1]![0]))
          return out
        }),
        Effect.catchTag("WriteConditionFailed", () =>
          retried < 1000 ? claimRecords(queue, max, now, remoteLease, retried + 1) : Effect.succeed([]))
      )
    })
  }

  /**
   * Moves up to `max` pending jobs of `queue` to claimed and holds their leases for `leaseMillis`
   * (payloads as stored: an offloaded one is not read). A paused queue gives nothing (a waiting
   * claim then waits for `resume`'s announce). What a claim is before its payloads are decoded,
   * wherever the definition is.
   */
  const claimHeld = (queue: string, max: number, leaseMillis: number, remote: boolean): Effect.Effect<Array<Held>, QueueError> =>
    // suspended: a waiting claim runs it again, and the queue may have been resumed meanwhile
    Effect.suspend(() =>
      isPaused(queue) ? Effect.succeed([]) : lockOf(queue).withPermits(1)(Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(claimRecords(queue, max, now, remote ? leaseMillis : undefined), (claimed) => {
          const expiresAt = now + leaseMillis
          const held = claimed.map((record) => holdLease(record, now, expiresAt, record.lease?.token))
          events.claimed(queue, claimed, now)
          return held
        }))))

  /**
   * The core's claim (see `core.ts`): up to `max` jobs of `queue` held for `leaseMillis`, waiting
   * up to `waitMillis` for an arrival while none is pending; each payload read back on demand.
   */
  const claim: Core["claim"] = (queue, max, leaseMillis, waitMillis, until, remote = false) => {
    const once = claimHeld(queue, max, leaseMillis, remote)
    return Effect.andThen(
      live,
      Effect.map(waitMillis <= 0 ? once : waitingFor(queue, once, waitMillis, until), (held) =>
        held.map((h): HeldJob => ({ ...h, payload: payloadOf(h.record) })))
    )
  }

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

  return { claim }
}
