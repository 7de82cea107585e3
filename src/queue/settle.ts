/**
 * Settling claims, the core's part (see `core.ts`: results and effects encoded, the delay of a
 * retry chosen by the caller): `ack` (the job deleted, or kept as done for `keepDone` or its
 * result), `nack` (retried after its delay, or dead-lettered once its attempts are used up),
 * `release`, `discard`, `deadLetter`, `extendLease`, and `cancel` of any job. A settlement commits only while the claim
 * holds its lease and its claimed record is still there (else `ClaimLost`, nothing changed); each
 * returns once durable, and only then wakes the claims waiting for an arrival and the waiters of
 * the job's completion. Payload objects of jobs removed are deleted after the commit.
 *
 * @internal
 */
import { Clock, Deferred, Effect, Option } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type { NackOutcome, Service } from "../JobQueue.ts"
import type { Core } from "./core.ts"
import { CancelRequested, ClaimLost } from "../JobQueueError.ts"
import { Changes, type Tx } from "../kv/engine.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping, ClaimRef } from "./leases.ts"
import * as Effects from "./effects.ts"
import type { Payloads } from "./payloads.ts"
import type { JobSettings } from "./wire.ts"
import { bury, locate, move, read, retries, stage, withAttempt, without } from "./records.ts"

/**
 * How long a done job is kept (ms): for `keepDone`, and with a result for at least its
 * retention; undefined: deleted at its ack.
 */
const keptFor = (settings: JobSettings, withResult: boolean): number | undefined =>
  withResult ? Math.max(settings.keepDoneMillis ?? 0, settings.resultRetentionMillis) : settings.keepDoneMillis

/** The settlements of the queue of `ctx`, and `cancel`; `effects` makes their effects ready. */
export const make = (ctx: QueueContext, book: Bookkeeping, payloads: Payloads, effects: Effects.Effects) => {
  const { events, kv, live } = ctx
  const { announce, complete, holds, holdsNow, leases, letGo } = book
  const { committing, dropPayloads } = payloads

  /**
   * Runs a settlement of `claim` with its prepared effects: the claimed record must still be
   * there, or `ClaimLost` and nothing applied. `f` says whether the effects apply (a nack that
   * retries does not). Once durable, `told` tells the outcome (completion waiters, claims waiting
   * for an arrival, events), then the effects' follow-ups are; if it did not commit, their payload
   * objects are deleted.
   */
  const settle = <A>(
    claim: ClaimRef,
    prepared: Effects.Prepared,
    f: (tx: Tx, record: JobRecord, now: number) => readonly [A, applyEffects: boolean],
    told: (result: A, now: number) => void
  ) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      // the lease checked under `committing` too: a claim found lost before the transaction
      // deletes the payload objects written for its follow-ups, as one lost inside it does
      const { value: [result, applied] } = yield* committing(effects.records(prepared), Effect.andThen(holds(claim), kv.transaction((tx) =>
        Effect.gen(function*() {
          const record = yield* read(tx, Keys.claimed(claim.record.queue, claim.record.id))
          // the token again, in the commit: a reap and a new claim of the job between `holds` and
          // here leave a claimed record at the same key, the new claim's (as ackAndForget's guard)
          if (record === undefined || !holdsNow(claim)) return yield* new ClaimLost({ id: claim.record.id })
          tx.delete(Keys.claimed(record.queue, record.id))
          const [result, apply] = f(tx, record, now)
          const applied = apply ? yield* effects.stage(tx, prepared) : undefined
          return [result, applied] as const
        }), retries)))
      letGo(claim)
      told(result, now)
      yield* applied === undefined ? dropPayloads(effects.records(prepared)) : effects.settled(prepared, applied)
      return result
    })

  // The ack of a job not kept is a hot path, like enqueue and claim: plain functions over a few
  // combinators rather than generators (each step through the runtime costs).

  /**
   * The ack of a job not kept: a plain write guarded at commit by the claimed record and the
   * lease token, no transaction needed. A reaper or a cancel racing it conflicts with it, or it
   * finds the record gone.
   */
  const ackAndForget = (claim: ClaimRef) =>
    Effect.suspend(() => {
      const { id, queue } = claim.record
      const claimedKey = Keys.claimed(queue, id)
      const changes = new Changes()
      changes.delete(claimedKey)
      changes.delete(Keys.index(id))
      move(changes, queue, "Claimed", "Done")
      return kv.writeIf(changes, [[claimedKey, true]], {
        guard: () => holdsNow(claim)
      }).pipe(
        Effect.catchTag("WriteConditionFailed", () => Effect.fail(new ClaimLost({ id }))),
        Effect.map(() => {
          letGo(claim)
          complete(id, Option.none())
          events.completed(id, queue)
        }),
        Effect.tap(() => (claim.record.payloadRef === undefined ? Effect.void : dropPayloads([claim.record])))
      )
    })

  /**
   * The ack of a job of a definition with `settings`: the fast path for a job not kept, without a
   * result or effects; else a transaction (`ackSettled`).
   */
  const ack: Core["ack"] = (claim, settings, result, encoded) =>
    result === undefined && encoded === undefined && settings.keepDoneMillis === undefined
      ? ackAndForget(claim)
      : Effect.flatMap(effects.ready(encoded), (prepared) => ackSettled(claim, settings, result, prepared))

  /**
   * The ack of a job kept as done (for `keepDone`, or for its result's retention: `result` is the
   * encoded result), or with effects: a transaction moving its record.
   */
  const ackSettled = (claim: ClaimRef, settings: JobSettings, result: Uint8Array | undefined, prepared: Effects.Prepared) =>
    Effect.gen(function*() {
      const keepFor = keptFor(settings, result !== undefined)
      const done = yield* settle(claim, prepared, (tx, record, now) => {
        move(tx, record.queue, "Claimed", "Done")
        if (keepFor === undefined) {
          tx.delete(Keys.index(record.id))
          return [Option.none<JobRecord>(), true] as const
        }
        const next: JobRecord = {
          ...without(withAttempt(record, "Completed", now), "claimedAt", "lease"),
          status: "Done",
          completedAt: now,
          expiresAt: now + keepFor,
          ...(result === undefined ? {} : { result })
        }
        stage(tx, next)
        return [Option.some(next), true] as const
      }, (done, at) => {
        complete(claim.record.id, done)
        events.completed(claim.record.id, claim.record.queue, at)
      })
      if (Option.isNone(done) && claim.record.payloadRef !== undefined) yield* dropPayloads([claim.record])
    })

  const nack: Core["nack"] = (claim, error, delay, encoded) =>
    Effect.flatMap(effects.ready(encoded), (prepared) => nackSettled(claim, error, delay, prepared))

  /**
   * Retries the job after `delay` ms (0: pending at once), or dead-letters it when its attempts
   * are used up (then the effects apply).
   */
  const nackSettled = (claim: ClaimRef, error: string, delay: number, prepared: Effects.Prepared) =>
    Effect.gen(function*() {
      const outcome = yield* settle(claim, prepared, (tx, record, now): readonly [{ outcome: NackOutcome; record: JobRecord }, boolean] => {
        if (record.attempts >= record.maxAttempts) {
          return [{ outcome: "DeadLettered" as const, record: bury(tx, record, now, error) }, true] as const
        }
        const retried = withAttempt(record, "Retried", now, error)
        const next: JobRecord = delay <= 0
          ? { ...without(retried, "claimedAt", "lease", "runAt"), status: "Pending", lastError: error }
          : { ...without(retried, "claimedAt", "lease"), status: "Scheduled", runAt: now + delay, lastError: error }
        stage(tx, next)
        move(tx, record.queue, "Claimed", next.status)
        return [{ outcome: "Retried" as const, record: next }, false] as const
      }, ({ outcome, record }, at) => {
        // the stored dead record (this attempt's error, failedAt, no claimedAt), not the claimed one
        if (outcome === "DeadLettered") complete(claim.record.id, Option.some(record))
        else if (record.status === "Pending") announce(claim.record.queue)
        events.claimEnded(record, error, at)
      })
      return outcome.outcome
    })

  const release: Core["release"] = (claim) =>
    Effect.gen(function*() {
      yield* settle(claim, Effects.none, (tx, record, now) => {
        const next: JobRecord = {
          ...without(withAttempt(record, "Released", now), "claimedAt", "lease"),
          status: "Pending",
          attempts: Math.max(0, record.attempts - 1)
        }
        stage(tx, next)
        move(tx, record.queue, "Claimed", "Pending")
        return [undefined, false] as const
      }, () => announce(claim.record.queue))
    })

  const discard: Core["discard"] = (claim) =>
    Effect.gen(function*() {
      yield* settle(claim, Effects.none, (tx, record) => {
        tx.delete(Keys.index(record.id))
        move(tx, record.queue, "Claimed", undefined)
        return [undefined, false] as const
      }, (_, at) => {
        complete(claim.record.id, Option.none())
        events.cancelled(claim.record.id, claim.record.queue, at)
      })
      yield* dropPayloads([claim.record])
    })

  const deadLetter: Core["deadLetter"] = (claim, reason, encoded) =>
    Effect.flatMap(effects.ready(encoded), (prepared) => deadLetterSettled(claim, reason, prepared))

  /** Dead-letters the job at once, its attempts not consumed, with its effects. */
  const deadLetterSettled = (claim: ClaimRef, reason: string, prepared: Effects.Prepared) =>
    Effect.gen(function*() {
      // waiters get the stored dead record (no claimedAt, its expiry, a cancel flag set meanwhile)
      yield* settle(claim, prepared, (tx, record, at) => [bury(tx, record, at, reason), true] as const, (dead, at) => {
        complete(claim.record.id, Option.some(dead))
        events.claimEnded(dead, reason, at)
      })
    })

  const extendLease: Core["extendLease"] = (claim, millis) =>
    Effect.gen(function*() {
      yield* live
      const lease = leases.get(claim.record.id)
      if (lease === undefined || lease.token !== claim.token || lease.reaping) {
        return yield* new ClaimLost({ id: claim.record.id })
      }
      if (Deferred.isDoneUnsafe(lease.cancel)) return yield* new CancelRequested({ id: claim.record.id })
      lease.expiresAt = (yield* Clock.currentTimeMillis) + millis
    })

  const cancel: Service["cancel"] = (id) =>
    Effect.gen(function*() {
      let removed: JobRecord | undefined
      const { value: outcome } = yield* kv.transaction((tx) =>
        Effect.map(locate(tx, id), (found) => {
          if (found === undefined) return "NotFound" as const
          const [key, record] = found
          if (record.status === "Pending" || record.status === "Scheduled") {
            tx.delete(key)
            tx.delete(Keys.index(id))
            move(tx, record.queue, record.status, undefined)
            if (record.dedupKey !== undefined) tx.delete(Keys.dedup(record.queue, record.dedupKey))
            removed = record
            return "Removed" as const
          }
          if (record.status === "Claimed") {
            stage(tx, { ...record, cancelRequested: true })
            return "Requested" as const
          }
          return "NotFound" as const
        }), retries)
      if (outcome === "Removed") {
        complete(id, Option.none())
        if (removed !== undefined) {
          const { queue } = removed
          events.cancelled(id, queue)
          yield* dropPayloads([removed])
        }
      }
      if (outcome === "Requested") {
        const lease = leases.get(id)
        if (lease !== undefined) Deferred.doneUnsafe(lease.cancel, Effect.void)
      }
      return outcome
    })

  return { ack, nack, release, discard, deadLetter, extendLease, cancel }
}
