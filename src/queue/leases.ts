/**
 * The queue's in-memory bookkeeping of one process: the leases of the jobs it has claimed (token,
 * expiry, cancel signal), a claim lock per queue, and the waiters woken by arrivals (claims
 * waiting for an enqueue) and by completions (`awaitCompletion`). None of it is stored: a lease
 * lost with the process is found at the next open by the requeue of claimed jobs. Callers wake
 * waiters only once what they were waiting for is durable.
 *
 * @internal
 */
import { Deferred, Effect, type Option, Semaphore } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import { ClaimLost } from "../JobQueueError.ts"

/** What identifies a claim: its job's record and its token (a `Claim` is one). */
export interface ClaimRef {
  readonly record: JobRecord
  readonly token: string
}

/** The lease of a job claimed by this process. */
export interface Lease {
  /** The claimed record the lease was taken with. */
  readonly record: JobRecord
  readonly token: string
  expiresAt: number
  readonly queue: string
  /** Taken by the reaper: no more renewals. */
  reaping: boolean
  /** Fired by `cancel`. */
  readonly cancel: Deferred.Deferred<void>
}

/** A record just claimed, with the token and cancel signal of the lease held for it. */
export interface Held {
  readonly record: JobRecord
  readonly token: string
  readonly cancelled: Effect.Effect<void>
}

/** The bookkeeping of one queue (see the module's header). */
export interface Bookkeeping {
  /** Leases by job id. */
  readonly leases: Map<string, Lease>
  /** The lock serializing the claims of `queue`. */
  readonly lockOf: (queue: string) => Semaphore.Semaphore
  /** Wakes every claim waiting on `queue`. */
  readonly announce: (queue: string) => void
  /** What a claim waiting on `queue` awaits: completed by the next `announce`. */
  readonly arrival: (queue: string) => Deferred.Deferred<void>
  /** Wakes everyone awaiting the completion of `id`. */
  readonly complete: (id: string, record: Option.Option<JobRecord>) => void
  /** A new waiter for the completion of `id`, and the effect that forgets it. */
  readonly awaitEnd: (id: string) => {
    readonly waiter: Deferred.Deferred<Option.Option<JobRecord>>
    readonly forget: Effect.Effect<void>
  }
  /** Holds a lease on a record just claimed, its token from `nextId(now)`. */
  /** Holds the lease of a record just claimed (or kept at open), with a new token unless `token` is given. */
  readonly holdLease: (record: JobRecord, now: number, expiresAt: number, token?: string) => Held
  /** Checks that `claim` still holds its lease: the token matches. */
  readonly holds: (claim: ClaimRef) => Effect.Effect<void, ClaimLost>
  /** Whether `claim` still holds its lease (synchronous, for commit-time guards). */
  readonly holdsNow: (claim: ClaimRef) => boolean
  /** Forgets the lease of `claim` once settled, unless it was taken meanwhile. */
  readonly letGo: (claim: ClaimRef) => void
}

/** The bookkeeping of a new queue; lease tokens come from `nextId`, the generator of job ids. */
export const make = (nextId: (now: number) => string): Bookkeeping => {
  const leases = new Map<string, Lease>()
  const claimLocks = new Map<string, Semaphore.Semaphore>()
  const arrivals = new Map<string, Deferred.Deferred<void>>()
  const completions = new Map<string, Array<Deferred.Deferred<Option.Option<JobRecord>>>>()

  const lockOf = (queue: string) => {
    let lock = claimLocks.get(queue)
    if (lock === undefined) {
      lock = Semaphore.makeUnsafe(1)
      claimLocks.set(queue, lock)
    }
    return lock
  }

  /** Wakes every claim waiting on `queue`. */
  const announce = (queue: string) => {
    const waiting = arrivals.get(queue)
    if (waiting === undefined) return
    arrivals.delete(queue)
    Deferred.doneUnsafe(waiting, Effect.void)
  }
  const arrival = (queue: string) => {
    let waiting = arrivals.get(queue)
    if (waiting === undefined) {
      waiting = Deferred.makeUnsafe<void>()
      arrivals.set(queue, waiting)
    }
    return waiting
  }

  /** Wakes everyone awaiting the completion of `id`. */
  const complete = (id: string, record: Option.Option<JobRecord>) => {
    const waiting = completions.get(id)
    if (waiting === undefined) return
    completions.delete(id)
    for (const d of waiting) Deferred.doneUnsafe(d, Effect.succeed(record))
  }
  const awaitEnd = (id: string) => {
    const waiter = Deferred.makeUnsafe<Option.Option<JobRecord>>()
    const list = completions.get(id) ?? []
    list.push(waiter)
    completions.set(id, list)
    const forget = Effect.sync(() => {
      const rest = (completions.get(id) ?? []).filter((d) => d !== waiter)
      if (rest.length === 0) completions.delete(id)
      else completions.set(id, rest)
    })
    return { waiter, forget }
  }

  /**
   * Holds the lease of a record just claimed, before anything that can fail (reading its
   * payload): a claim call that fails then leaves it to the reaper, never claimed for good.
   */
  const holdLease = (record: JobRecord, now: number, expiresAt: number, given?: string): Held => {
    const token = given ?? nextId(now)
    const cancel = Deferred.makeUnsafe<void>()
    if (record.cancelRequested === true) Deferred.doneUnsafe(cancel, Effect.void)
    leases.set(record.id, { record, token, expiresAt, queue: record.queue, reaping: false, cancel })
    return { record, token, cancelled: Deferred.await(cancel) }
  }

  const holds = (claim: ClaimRef) =>
    Effect.suspend(() => {
      const lease = leases.get(claim.record.id)
      return lease !== undefined && lease.token === claim.token
        ? Effect.void
        : Effect.fail(new ClaimLost({ id: claim.record.id }))
    })

  const holdsNow = (claim: ClaimRef) => leases.get(claim.record.id)?.token === claim.token

  const letGo = (claim: ClaimRef) => {
    if (holdsNow(claim)) leases.delete(claim.record.id)
  }

  return { leases, lockOf, announce, arrival, complete, awaitEnd, holdLease, holds, holdsNow, letGo }
}
