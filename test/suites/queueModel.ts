// Model-based randomized schedules of the job queue (JobQueue over Kv over a fault-injecting
// memory store), with crashes and reopens on the same underlying store. One schedule per seed; the
// same seed replays the same schedule.
//
// A schedule is a few incarnations of a queue process. Each one opens the queue on a new
// fault-injecting wrapper of the same raw store (latency, ~5% errors, lost put responses), which
// freezes at a random store operation (the crash: every request from then on hangs, as in a dead
// process), and runs random operations one at a time (and, now and then, a few settlements or
// enqueues at once): enqueues (delayed, deduplicated, with ids of their own, with user KV writes,
// in batches), claims, acks, nacks, dead-letters, releases, discards, cancels, settlements with
// stale claims, settlements carrying effects (a follow-up job, offloaded when large, and a user KV
// write), and time moving on (promotions, lease expiries, retention sweeps); now and then a call is interrupted by its
// caller after a few milliseconds (then what is stored tells whether it landed). The model predicts the outcome of every
// call and the state after it; a call that did not return (the crash) or returned a failure
// that commits nothing changes nothing in the model, or is a "maybe".
//
// Commits are recovered as a prefix of the commit history that holds every acknowledged one, so
// after a crash the queue must be in the state after some operation between the last acknowledged
// one (an enqueue, ack, nack, ... that returned) and the last one issued (claims are not durable,
// and a call cut by the crash may or may not have landed), then reopened: jobs left claimed
// requeued (their attempt counted) or dead-lettered, due jobs promoted, expired ones swept. The
// check after each reopen reads every record, index, dedup and expiry entry in the KV and the
// counters (`stats`) and the user KV namespace, and asks for one such state exactly: every job once,
// in its state, with its attempts, priority, run time, dedup key, cancel flag and last error, exact
// counters, and each settlement's follow-up and KV write there exactly when its settlement is. The
// model then takes on the state found (a "maybe" resolved one way stays that way).
import { Cause, Clock, Context, Duration, Effect, Exit, Layer, Random, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as JobRecordSchema from "../../schema/JobRecord.ts"
import type { JobRecord } from "../../schema/JobRecord.ts"
import * as PayloadObject from "../../schema/PayloadObject.ts"
import * as FaultInjection from "../../src/FaultInjection.ts"
import * as Msgpack from "../../src/internal/msgpack.ts"
import { makePrng, type Prng } from "../../src/internal/prng.ts"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import * as ObjectStore from "../../src/ObjectStore.ts"
import * as Keys from "../../src/queue/keys.ts"
import { layoutChecked } from "../utils/commitLayout.ts"
import { layerOf } from "../utils/stores.ts"

// ---- definitions ---------------------------------------------------------------------------------

const Payload = Schema.Struct({ n: Schema.Number, pad: Schema.optionalKey(Schema.String) })
type Payload = typeof Payload.Type
/** Job n's payload: every third one is large, stored as an object of its own when the schedule offloads. */
const payloadOf = (n: number): Payload => (n % 3 === 0 ? { n, pad: `${n}:${"x".repeat(100)}` } : { n })

// Time scales are kept apart so that the background work is determined by the operations: calls
// take milliseconds; delays and backoffs are 10-20 minutes; leases 30-60 minutes; "a while" is
// 2 hours (everything scheduled is due, every lease expired), "days" 3 days (every done or dead job
// past its retention), and the reaper and scheduler run hourly.
const Kept = Job.define("kept", {
  payload: Payload,
  maxAttempts: 3,
  leaseDuration: "1 hour",
  backoff: Job.Backoff.fixed("10 minutes"),
  keepDone: "1 day",
  deadRetention: "2 days"
})
const Forgotten = Job.define("forgotten", {
  payload: Payload,
  maxAttempts: 2,
  leaseDuration: "1 hour",
  backoff: Job.Backoff.none(),
  deadRetention: "2 days"
})
const definitions = { kept: Kept, forgotten: Forgotten } as const
type QueueName = keyof typeof definitions
const queueNames: ReadonlyArray<QueueName> = ["kept", "forgotten"]
const backoffMillis: Record<QueueName, number> = { kept: 10 * 60_000, forgotten: 0 }
const keepDoneMillis: Record<QueueName, number | undefined> = { kept: 24 * 3600_000, forgotten: undefined }
const deadRetentionMillis = 2 * 24 * 3600_000
const aWhile = 2 * 3600_000
const days = 3 * 24 * 3600_000
const leaseExpired = "lease expired"
const interrupted = "claim interrupted by process exit"

// ---- the model -----------------------------------------------------------------------------------

type Status = JobRecord["status"]

/** A job as the model knows it; jobs are known by their payload's `n`. */
interface MJob {
  readonly n: number
  /** Undefined while unknown: enqueued by a call that did not return. */
  readonly id: string | undefined
  readonly queue: QueueName
  readonly status: Status
  readonly attempts: number
  readonly maxAttempts: number
  readonly priority: number
  /** Of a scheduled job. */
  readonly runAt: number | undefined
  /**
   * How much later than `runAt` the stored one may be: a nack with effects puts its offloaded
   * follow-up's object (with the store's latency) before it reads the clock for its commit.
   */
  readonly runAtLate?: number | undefined
  readonly dedupKey: string | undefined
  readonly cancelRequested: boolean
  readonly lastError: string | undefined
  /** The other last error it may have (dead by a lease expiry that may not have landed). */
  readonly lastErrorAlt: string | undefined
  /** Of a done or dead job: swept from then on. */
  readonly expiresAt: number | undefined
}

interface MState {
  readonly jobs: ReadonlyMap<number, MJob>
  /** The `done` counter of each queue: every ack, kept or not. */
  readonly done: Readonly<Record<QueueName, number>>
  /** The user KV namespace: the writes of settlement effects. */
  readonly kv: ReadonlyMap<string, string>
}

const emptyState: MState = { jobs: new Map(), done: { kept: 0, forgotten: 0 }, kv: new Map() }

const withJobs = (state: MState, f: (jobs: Map<number, MJob>) => void, done = state.done, kv = state.kv): MState => {
  const jobs = new Map(state.jobs)
  f(jobs)
  return { jobs, done, kv }
}

const isLive = (job: MJob) => job.status === "Pending" || job.status === "Scheduled"

const byClaimOrder = (a: MJob, b: MJob) =>
  a.priority !== b.priority ? a.priority - b.priority : a.id! < b.id! ? -1 : a.id! > b.id! ? 1 : 0

const findById = (state: MState, id: string): MJob | undefined => {
  for (const job of state.jobs.values()) if (job.id === id) return job
  return undefined
}

/** A claimed job's end without a settlement: pending again, or dead when its attempts are used up. */
const requeueOrBury = (job: MJob, now: number, reason: string, alt?: string): MJob =>
  job.attempts >= job.maxAttempts
    ? { ...job, status: "Dead", runAt: undefined, lastError: reason, lastErrorAlt: alt, expiresAt: now + deadRetentionMillis }
    : { ...job, status: "Pending", runAt: undefined }

/**
 * What the background work does once time has moved on from `from` to `to`: promotions, lease
 * expiries (a lease expires within an hour, and the hourly reaper finds it within another: the
 * job dead by it is swept `deadRetention` later, within the same move if it is long enough), and
 * sweeps.
 */
const background = (
  state: MState,
  from: number,
  to: number,
  reap: "lease" | "reopen" | "none",
  work: { readonly promote: boolean; readonly sweep: boolean } = { promote: true, sweep: true }
): MState =>
  withJobs(state, (jobs) => {
    for (const [n, before] of jobs) {
      let job = before
      if (job.status === "Scheduled" && job.runAt! <= to) job = work.promote ? { ...job, status: "Pending", runAt: undefined } : job
      else if (job.status === "Claimed" && reap === "lease") job = requeueOrBury(job, from + 2 * 3600_000, leaseExpired, interrupted)
      else if (job.status === "Claimed" && reap === "reopen") job = requeueOrBury(job, to, interrupted)
      if (work.sweep && (job.status === "Done" || job.status === "Dead") && job.expiresAt! <= to) jobs.delete(n)
      else if (job !== before) jobs.set(n, job)
    }
  })

/** The counters `stats` should give for `state`. */
const countersOf = (state: MState, queue: QueueName) => {
  const counts = { pending: 0, scheduled: 0, claimed: 0, done: state.done[queue], dead: 0 }
  for (const job of state.jobs.values()) {
    if (job.queue !== queue) continue
    if (job.status === "Pending") counts.pending++
    if (job.status === "Scheduled") counts.scheduled++
    if (job.status === "Claimed") counts.claimed++
    if (job.status === "Dead") counts.dead++
  }
  return counts
}

const describeJob = (job: MJob) =>
  [
    `n${job.n}`,
    job.id ?? "?",
    job.queue,
    job.status,
    `a${job.attempts}/${job.maxAttempts}`,
    `p${job.priority}`,
    job.status === "Scheduled" ? `at+${job.runAt}` : "",
    job.dedupKey === undefined ? "" : `dedup=${job.dedupKey}`,
    job.cancelRequested ? "cancel-requested" : "",
    job.lastError === undefined ? "" : `error=${JSON.stringify(job.lastError)}`,
    job.lastErrorAlt === undefined ? "" : `(or ${JSON.stringify(job.lastErrorAlt)})`
  ].filter((s) => s !== "").join(" ")

/** Why `found` is not `expected` (undefined when it is). */
const jobMismatch = (expected: MJob, found: MJob): string | undefined => {
  const same = (expected.id === undefined || expected.id === found.id) &&
    expected.queue === found.queue &&
    expected.status === found.status &&
    expected.attempts === found.attempts &&
    expected.maxAttempts === found.maxAttempts &&
    expected.priority === found.priority &&
    (expected.status !== "Scheduled" ||
      (expected.runAt! <= found.runAt! && found.runAt! <= expected.runAt! + (expected.runAtLate ?? 0))) &&
    expected.dedupKey === found.dedupKey &&
    expected.cancelRequested === found.cancelRequested &&
    (expected.lastError === found.lastError || (expected.lastErrorAlt !== undefined && expected.lastErrorAlt === found.lastError))
  return same ? undefined : `expected ${describeJob(expected)}, found ${describeJob(found)}`
}

/** Every difference between a state the model allows and the state found (empty when they are the same). */
const stateMismatch = (expected: MState, found: MState): Array<string> => {
  const out: Array<string> = []
  for (const [n, job] of expected.jobs) {
    const other = found.jobs.get(n)
    if (other === undefined) out.push(`missing: ${describeJob(job)}`)
    else {
      const why = jobMismatch(job, other)
      if (why !== undefined) out.push(why)
    }
  }
  for (const [n, job] of found.jobs) if (!expected.jobs.has(n)) out.push(`unexpected: ${describeJob(job)}`)
  for (const queue of queueNames) {
    if (expected.done[queue] !== found.done[queue]) out.push(`done counter of ${queue}: expected ${expected.done[queue]}, found ${found.done[queue]}`)
  }
  for (const [key, value] of expected.kv) {
    if (found.kv.get(key) !== value) out.push(`user KV ${key}: expected ${value}, found ${found.kv.get(key) ?? "none"}`)
  }
  for (const key of found.kv.keys()) if (!expected.kv.has(key)) out.push(`user KV ${key}: unexpected`)
  return out
}

// ---- operations ----------------------------------------------------------------------------------

/**
 * The effects a settlement carries: a follow-up job n (its id `f<n>`, known before the call) into
 * `queue`, and the user KV write `e/<n>` = `<n>`. They land with the settlement or not at all.
 */
interface FollowUp {
  readonly n: number
  readonly queue: QueueName
}

const followUpId = (n: number) => `f${n}`

const effectsOf = (followUp: FollowUp | undefined): JobQueue.SettlementEffects | undefined =>
  followUp === undefined ? undefined : {
    enqueue: [[definitions[followUp.queue], payloadOf(followUp.n), { id: followUpId(followUp.n) }]],
    kv: { [`e/${followUp.n}`]: new TextEncoder().encode(String(followUp.n)) }
  }

/** A job just enqueued pending with its definition's defaults (`id` undefined: not known yet). */
const pendingJob = (n: number, id: string | undefined, queue: QueueName): MJob => ({
  n,
  id,
  queue,
  status: "Pending",
  attempts: 0,
  maxAttempts: definitions[queue].maxAttempts,
  priority: definitions[queue].priority,
  runAt: undefined,
  dedupKey: undefined,
  cancelRequested: false,
  lastError: undefined,
  lastErrorAlt: undefined,
  expiresAt: undefined
})

/** `state` with the effects of a settlement applied. */
const withEffects = (state: MState, followUp: FollowUp | undefined): MState => {
  if (followUp === undefined) return state
  const job = pendingJob(followUp.n, followUpId(followUp.n), followUp.queue)
  const kv = new Map(state.kv)
  kv.set(`e/${followUp.n}`, String(followUp.n))
  return withJobs(state, (jobs) => void jobs.set(job.n, job), state.done, kv)
}

/** A claim the driver holds, from this process or an earlier one. */
interface Held {
  readonly claim: JobQueue.Claim<Payload>
  readonly n: number
  readonly incarnation: number
}

type Sub =
  | { readonly _tag: "Enqueue"; readonly queue: QueueName; readonly n: number; readonly options: JobQueue.EnqueueOptions }
  | { readonly _tag: "Batch"; readonly queue: QueueName; readonly ns: ReadonlyArray<number> }
  | { readonly _tag: "Claim"; readonly queue: QueueName; readonly max: number; readonly lease: Duration.Input | undefined }
  | { readonly _tag: "Ack"; readonly held: Held; readonly effects?: FollowUp | undefined }
  | {
    readonly _tag: "Nack"
    readonly held: Held
    readonly reason: string
    readonly delay: number | undefined
    readonly effects?: FollowUp | undefined
  }
  | { readonly _tag: "DeadLetter"; readonly held: Held; readonly reason: string; readonly effects?: FollowUp | undefined }
  | { readonly _tag: "Release"; readonly held: Held }
  | { readonly _tag: "Discard"; readonly held: Held }
  | { readonly _tag: "Cancel"; readonly id: string }
  | { readonly _tag: "Advance"; readonly millis: number }

const describeEffects = (followUp: FollowUp | undefined) =>
  followUp === undefined ? "" : ` with effects (follow-up n${followUp.n} into ${followUp.queue}, kv e/${followUp.n})`

const describeSub = (sub: Sub): string => {
  switch (sub._tag) {
    case "Enqueue":
      return `enqueue ${sub.queue} n${sub.n} ${JSON.stringify({ ...sub.options, kv: sub.options.kv === undefined ? undefined : Object.keys(sub.options.kv) })}`
    case "Batch":
      return `enqueueBatch ${sub.queue} ${sub.ns.map((n) => `n${n}`).join(",")}`
    case "Claim":
      return `claim ${sub.queue} max ${sub.max}${sub.lease === undefined ? "" : ` lease ${String(sub.lease)}`}`
    case "Ack":
      return `ack n${sub.held.n} (claim of process ${sub.held.incarnation})${describeEffects(sub.effects)}`
    case "Release":
    case "Discard":
      return `${sub._tag.toLowerCase()} n${sub.held.n} (claim of process ${sub.held.incarnation})`
    case "Nack":
      return `nack n${sub.held.n} (claim of process ${sub.held.incarnation})${sub.delay === undefined ? "" : ` delay ${sub.delay} ms`}${describeEffects(sub.effects)}`
    case "DeadLetter":
      return `deadLetter n${sub.held.n} (claim of process ${sub.held.incarnation})${describeEffects(sub.effects)}`
    case "Cancel":
      return `cancel ${sub.id}`
    case "Advance":
      return `time moves on ${Duration.format(Duration.millis(sub.millis))}`
  }
}

/** Whether a sub-operation with this outcome committed durably before it returned. */
const isDurable = (sub: Sub, outcome: string) => {
  switch (sub._tag) {
    case "Enqueue":
      return outcome.startsWith("created ")
    case "Batch":
      return outcome.startsWith("batch ")
    case "Ack":
    case "DeadLetter":
    case "Release":
    case "Discard":
      return outcome === "ok"
    case "Nack":
      return outcome === "Retried" || outcome === "DeadLettered"
    case "Cancel":
      return outcome === "Removed" || outcome === "Requested"
    case "Advance":
      // its flush returned: the background work it set off is durable
      return outcome === "ok"
    case "Claim":
      return false
  }
}

/** What a sub-operation is expected to answer, and the state after it (with `actual`'s ids once known). */
interface Prediction {
  readonly expected: string
  readonly apply: (state: MState, actual: unknown) => MState
}

const withoutJob = (state: MState, n: number, done = state.done) => withJobs(state, (jobs) => void jobs.delete(n), done)
const withJob = (state: MState, job: MJob, done = state.done) => withJobs(state, (jobs) => void jobs.set(job.n, job), done)

/** The outcome of a call the model predicts (`*` stands for a new id). */
const predict = (state: MState, sub: Sub, now: number, tokens: ReadonlyMap<number, string>): Prediction => {
  const unchanged = (expected: string): Prediction => ({ expected, apply: (s) => s })
  const heldJob = (held: Held): MJob | undefined => {
    const job = state.jobs.get(held.n)
    return job !== undefined && job.status === "Claimed" && tokens.get(held.n) === held.claim.token ? job : undefined
  }
  switch (sub._tag) {
    case "Enqueue": {
      const { options, queue } = sub
      const definition = definitions[queue]
      if (options.dedupKey !== undefined) {
        const holder = [...state.jobs.values()].find((j) => j.queue === queue && isLive(j) && j.dedupKey === options.dedupKey)
        if (holder !== undefined) return unchanged(`existing ${holder.id}`)
      }
      if (options.id !== undefined && findById(state, options.id) !== undefined) return unchanged("DuplicateJobId")
      const runAt = typeof options.runAt === "number"
        ? options.runAt
        : options.delay !== undefined
        ? now + Duration.toMillis(Duration.fromInputUnsafe(options.delay))
        : undefined
      const scheduled = runAt !== undefined && runAt > now
      const job: MJob = {
        n: sub.n,
        id: options.id,
        queue,
        status: scheduled ? "Scheduled" : "Pending",
        attempts: 0,
        maxAttempts: options.maxAttempts ?? definition.maxAttempts,
        priority: options.priority === undefined ? definition.priority : Job.priorityValue(options.priority),
        runAt: scheduled ? runAt : undefined,
        dedupKey: options.dedupKey,
        cancelRequested: false,
        lastError: undefined,
        lastErrorAlt: undefined,
        expiresAt: undefined
      }
      return {
        expected: `created ${options.id ?? "*"}`,
        apply: (s, actual) => {
          const enqueued = withJob(s, { ...job, id: (actual as JobQueue.EnqueueResult | undefined)?.id ?? job.id })
          if (options.kv === undefined) return enqueued
          const kv = new Map(enqueued.kv)
          for (const [key, value] of Object.entries(options.kv)) kv.set(key, new TextDecoder().decode(value))
          return { ...enqueued, kv }
        }
      }
    }
    case "Batch":
      return {
        expected: `batch ${sub.ns.length}`,
        apply: (s, actual) =>
          withJobs(s, (jobs) =>
            sub.ns.forEach((n, i) =>
              jobs.set(n, pendingJob(n, (actual as ReadonlyArray<string> | undefined)?.[i], sub.queue))
            ))
      }
    case "Claim": {
      const pending = [...state.jobs.values()].filter((j) => j.queue === sub.queue && j.status === "Pending")
      const unknown = pending.find((j) => j.id === undefined)
      if (unknown !== undefined) throw new Error(`model: pending n${unknown.n} has no id`)
      const taken = pending.sort(byClaimOrder).slice(0, sub.max)
      return {
        expected: `claimed ${taken.map((j) => `n${j.n}`).join(",")}`,
        apply: (s) =>
          withJobs(s, (jobs) => {
            for (const j of taken) jobs.set(j.n, { ...j, status: "Claimed", attempts: j.attempts + 1, dedupKey: undefined })
          })
      }
    }
    case "Ack": {
      const job = heldJob(sub.held)
      if (job === undefined) return unchanged("ClaimLost")
      const keep = keepDoneMillis[job.queue]
      return {
        expected: "ok",
        apply: (s) => {
          const done = { ...s.done, [job.queue]: s.done[job.queue] + 1 }
          const settled = keep === undefined ? withoutJob(s, job.n, done) : withJob(s, { ...job, status: "Done", expiresAt: now + keep }, done)
          return withEffects(settled, sub.effects)
        }
      }
    }
    case "Nack": {
      const job = heldJob(sub.held)
      if (job === undefined) return unchanged("ClaimLost")
      if (job.attempts >= job.maxAttempts) {
        return {
          expected: "DeadLettered",
          apply: (s) =>
            withEffects(
              withJob(s, { ...job, status: "Dead", lastError: sub.reason, lastErrorAlt: undefined, expiresAt: now + deadRetentionMillis }),
              sub.effects
            )
        }
      }
      const delay = sub.delay ?? backoffMillis[job.queue]
      const next: MJob = delay <= 0
        ? { ...job, status: "Pending", lastError: sub.reason, lastErrorAlt: undefined }
        : {
          ...job,
          status: "Scheduled",
          runAt: now + delay,
          runAtLate: sub.effects === undefined ? undefined : 1000,
          lastError: sub.reason,
          lastErrorAlt: undefined
        }
      return { expected: "Retried", apply: (s) => withJob(s, next) }
    }
    case "DeadLetter": {
      const job = heldJob(sub.held)
      if (job === undefined) return unchanged("ClaimLost")
      return {
        expected: "ok",
        apply: (s) =>
          withEffects(
            withJob(s, { ...job, status: "Dead", lastError: sub.reason, lastErrorAlt: undefined, expiresAt: now + deadRetentionMillis }),
            sub.effects
          )
      }
    }
    case "Release": {
      const job = heldJob(sub.held)
      if (job === undefined) return unchanged("ClaimLost")
      return { expected: "ok", apply: (s) => withJob(s, { ...job, status: "Pending", attempts: Math.max(0, job.attempts - 1) }) }
    }
    case "Discard": {
      const job = heldJob(sub.held)
      if (job === undefined) return unchanged("ClaimLost")
      return { expected: "ok", apply: (s) => withoutJob(s, job.n) }
    }
    case "Cancel": {
      const job = findById(state, sub.id)
      if (job === undefined) return unchanged("NotFound")
      if (isLive(job)) return { expected: "Removed", apply: (s) => withoutJob(s, job.n) }
      if (job.status === "Claimed") return { expected: "Requested", apply: (s) => withJob(s, { ...job, cancelRequested: true }) }
      return unchanged("NotFound")
    }
    case "Advance":
      return { expected: "ok", apply: (s) => background(s, now, now + sub.millis, "lease") }
  }
}

// ---- the system under test -----------------------------------------------------------------------

interface Process {
  readonly queue: JobQueue.Service
  readonly kv: Kv.Service
  readonly control: FaultInjection.Service
  readonly scope: Scope.Closeable
}

const faults: FaultInjection.Faults = {
  put: { latency: { _tag: "Uniform", min: 0, max: 3 }, errorRate: 0.05, lostResponseRate: 0.05 },
  get: { latency: { _tag: "Uniform", min: 0, max: 1 }, errorRate: 0.05 },
  list: { errorRate: 0.05 },
  head: { errorRate: 0.05 },
  delete: { errorRate: 0.05, lostResponseRate: 0.05 }
}

/** A new fault-injecting wrapper of `raw` (one per process), and its control. */
const wrap = (raw: ObjectStore.Service, seed: string, withFaults: boolean) =>
  Effect.map(
    Layer.build(
      FaultInjection.layer({ seed, faults: withFaults ? faults : {}, retry: { base: "1 millis", maxAttempts: 8 } }).pipe(
        Layer.provide(Layer.succeed(ObjectStore.ObjectStore, raw))
      )
    ),
    (context) => ({ store: Context.get(context, ObjectStore.ObjectStore), control: Context.get(context, FaultInjection.FaultInjection) })
  )

/**
 * Runs `effect` while TestClock moves on 1 ms at a time, until it is done or `maxMillis` of
 * virtual time have passed: its exit, or undefined if it was not done by then (it is then
 * interrupted, without waiting). Its fiber is detached: a crashed process's calls may hang in
 * their finalizers for good (deleting a payload object on a frozen store), and nothing waits for them.
 */
const drive = <A, E>(effect: Effect.Effect<A, E>, maxMillis: number) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkDetach(effect)
    yield* Effect.yieldNow
    for (let elapsed = 0; elapsed < maxMillis && fiber.pollUnsafe() === undefined; elapsed++) yield* TestClock.adjust(1)
    const done = fiber.pollUnsafe()
    if (done === undefined) fiber.interruptUnsafe()
    return done
  })

/**
 * Whether the background work due at `now` is done: no scheduled job due, no done or dead job past
 * its retention and, with `leasesExpired`, no claimed job. Its commits may wait a while for room
 * among the unflushed bytes (a small `maxUnflushedBytes`).
 */
const backgroundDone = (kv: Kv.Service, now: number, leasesExpired: boolean) =>
  Effect.gen(function*() {
    const due = (prefix: string) => kv.scan({ start: Keys.toBytes(prefix), end: Keys.toBytes(Keys.timeBound(prefix, now)) }, { limit: 1 })
    if ((yield* due(Keys.scheduledPrefix)).length > 0 || (yield* due(Keys.expiryPrefix)).length > 0) return false
    return !leasesExpired || (yield* kv.scan({ prefix: Keys.toBytes(Keys.claimedAll) }, { limit: 1 })).length === 0
  })

/** Lets the background work due at `now` run (for up to 2 s of virtual time; a check then tells what it did). */
const settleBackground = (kv: Kv.Service, now: number, leasesExpired: boolean) =>
  drive(
    Effect.gen(function*() {
      do yield* Effect.sleep("2 millis")
      while (!(yield* backgroundDone(kv, now, leasesExpired)))
    }),
    2_000
  )

/** The jobs, counters and secondary entries in the KV; fails (as a defect) on any inconsistency among them. */
const observe = (process: Process, raw: ObjectStore.Service, where: string) =>
  Effect.gen(function*() {
    const { kv, queue } = process
    const scan = (prefix: string) => kv.scan({ prefix: Keys.toBytes(prefix) })
    const problems: Array<string> = []
    const jobs = new Map<number, MJob>()
    const records: Array<readonly [string, JobRecord]> = []
    for (const prefix of Keys.recordPrefixes) {
      for (const entry of yield* scan(prefix)) records.push([Keys.fromBytes(entry.key), JobRecordSchema.decode(entry.value)])
    }
    const recordKeys = new Map<string, string>()
    for (const [key, record] of records) {
      let payload: Payload | undefined
      if (record.payloadRef === undefined) payload = Msgpack.decode(record.payload) as Payload
      else {
        const object = yield* Effect.exit(raw.get(record.payloadRef))
        if (Exit.isSuccess(object)) payload = Msgpack.decode(PayloadObject.decode(object.value.bytes)) as Payload
        else problems.push(`the payload object ${record.payloadRef} of ${record.id} (${record.status}) cannot be read: ${Cause.pretty(object.cause)}`)
      }
      if (payload === undefined) continue
      const { n } = payload
      if (JSON.stringify(payload) !== JSON.stringify(payloadOf(n))) problems.push(`n${n} (${record.id}) has payload ${JSON.stringify(payload)}`)
      const expectedKey = record.status === "Pending"
        ? Keys.pending(record.queue, record.priority, record.id)
        : record.status === "Scheduled"
        ? Keys.scheduled(record.runAt ?? -1, record.queue, record.id)
        : record.status === "Claimed"
        ? Keys.claimed(record.queue, record.id)
        : record.status === "Done"
        ? Keys.done(record.completedAt ?? -1, record.queue, record.id)
        : Keys.dead(record.queue, record.id)
      if (key !== expectedKey) problems.push(`n${n} (${record.id}, ${record.status}) is stored under the key of another state`)
      if (jobs.has(n)) problems.push(`n${n} is stored twice: ${jobs.get(n)!.id} ${jobs.get(n)!.status} and ${record.id} ${record.status}`)
      if (recordKeys.has(record.id)) problems.push(`id ${record.id} has two records`)
      recordKeys.set(record.id, key)
      if (!(record.queue in definitions)) problems.push(`n${n} is in an unknown queue ${record.queue}`)
      jobs.set(n, {
        n,
        id: record.id,
        queue: record.queue as QueueName,
        status: record.status,
        attempts: record.attempts,
        maxAttempts: record.maxAttempts,
        priority: record.priority,
        runAt: record.runAt,
        dedupKey: record.dedupKey,
        cancelRequested: record.cancelRequested === true,
        lastError: record.lastError,
        lastErrorAlt: undefined,
        expiresAt: record.expiresAt
      })
      if ((record.status === "Done" || record.status === "Dead") !== (record.expiresAt !== undefined)) {
        problems.push(`n${n} is ${record.status} with expiresAt ${record.expiresAt}`)
      }
    }
    // the index: one entry per record, pointing to it
    const index = yield* scan(Keys.indexPrefix)
    for (const entry of index) {
      const id = Keys.idOfIndex(Keys.fromBytes(entry.key))
      if (recordKeys.get(id) !== Keys.fromBytes(entry.value)) problems.push(`index entry of ${id} points to no record of it`)
    }
    if (index.length !== records.length) problems.push(`${index.length} index entries for ${records.length} records`)
    // dedup entries: exactly the pending or scheduled jobs with a dedup key
    const dedup = yield* scan(Keys.dedupPrefix)
    const holders = [...jobs.values()].filter((j) => isLive(j) && j.dedupKey !== undefined)
    for (const entry of dedup) {
      const id = Keys.fromBytes(entry.value)
      const holder = holders.find((j) => j.id === id && Keys.dedup(j.queue, j.dedupKey!) === Keys.fromBytes(entry.key))
      if (holder === undefined) problems.push(`a dedup entry points to ${id}, which does not hold it`)
    }
    if (dedup.length !== holders.length) problems.push(`${dedup.length} dedup entries for ${holders.length} jobs holding a key`)
    // expiry entries: exactly the done and dead jobs
    const expiry = yield* scan(Keys.expiryPrefix)
    const ending = records.filter(([, r]) => r.status === "Done" || r.status === "Dead")
    for (const entry of expiry) {
      const key = Keys.fromBytes(entry.value)
      if (!ending.some(([k]) => k === key)) problems.push(`an expiry entry points to no done or dead record`)
    }
    if (expiry.length !== ending.length) problems.push(`${expiry.length} expiry entries for ${ending.length} done or dead records`)
    // counters
    const done = { kept: 0, forgotten: 0 }
    for (const name of queueNames) {
      const stats = yield* queue.stats(name)
      done[name] = stats.done
      const counted = countersOf({ jobs, done, kv: new Map() }, name)
      for (const field of ["pending", "scheduled", "claimed", "dead"] as const) {
        if (stats[field] !== counted[field]) problems.push(`stats(${name}).${field} is ${stats[field]}, the records say ${counted[field]}`)
      }
    }
    if (problems.length > 0) return yield* Effect.die(new Error(`${where}: the stored state is inconsistent:\n  ${problems.join("\n  ")}`))
    const userKv = new Map((yield* queue.kv.scan("")).map((entry) => [entry.key, new TextDecoder().decode(entry.value)] as const))
    return { jobs, done, kv: userKv } satisfies MState
  })

const outcomeOf = (sub: Sub, exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isFailure(exit)) {
    const failure = exit.cause.reasons.find(Cause.isFailReason)
    if (failure === undefined) return `defect: ${Cause.pretty(exit.cause)}`
    const error = failure.error as { readonly _tag?: string }
    return error._tag ?? String(error)
  }
  const value = exit.value
  switch (sub._tag) {
    case "Enqueue": {
      const result = value as JobQueue.EnqueueResult
      return `${result.created ? "created" : "existing"} ${result.id}`
    }
    case "Batch":
      return `batch ${(value as ReadonlyArray<string>).length}`
    case "Claim":
      return `claimed ${(value as ReadonlyArray<JobQueue.Claim<Payload>>).map((c) => `n${c.job.payload.n}`).join(",")}`
    case "Nack":
    case "Cancel":
      return String(value)
    default:
      return "ok"
  }
}

const matches = (expected: string, actual: string) =>
  expected.endsWith("*") ? actual.startsWith(expected.slice(0, -1)) && actual.length > expected.length - 1 : expected === actual

const runSub = (queue: JobQueue.Service, sub: Sub): Effect.Effect<unknown, unknown> => {
  switch (sub._tag) {
    case "Enqueue":
      return queue.enqueue(definitions[sub.queue], payloadOf(sub.n), sub.options)
    case "Batch":
      return queue.enqueueBatch(definitions[sub.queue], sub.ns.map(payloadOf))
    case "Claim":
      return queue.claim(definitions[sub.queue], { max: sub.max, ...(sub.lease === undefined ? {} : { lease: sub.lease }) })
    case "Ack":
      return queue.ack(sub.held.claim, effectsOf(sub.effects))
    case "Nack": {
      const effects = effectsOf(sub.effects)
      return queue.nack(sub.held.claim, sub.reason, {
        ...(sub.delay === undefined ? {} : { delay: Duration.millis(sub.delay) }),
        ...(effects === undefined ? {} : { effects })
      })
    }
    case "DeadLetter":
      return queue.deadLetter(sub.held.claim, sub.reason, sub.effects === undefined ? undefined : { effects: effectsOf(sub.effects) })
    case "Release":
      return queue.release(sub.held.claim)
    case "Discard":
      return queue.discard(sub.held.claim)
    case "Cancel":
      return queue.cancel(sub.id)
    case "Advance":
      // run by `step` itself: the clock moves, then a flush
      return Effect.void
  }
}

/** Every subset of `items`. */
const subsets = <A>(items: ReadonlyArray<A>): Array<Array<A>> =>
  items.reduce<Array<Array<A>>>((acc, item) => [...acc, ...acc.map((s) => [...s, item])], [[]])

// ---- one schedule --------------------------------------------------------------------------------

export interface QueueScheduleReport {
  readonly seed: number
  readonly operations: number
  readonly processes: number
  /** Processes that crashed (the store froze under them), during their work or their opening. */
  readonly crashes: number
  /** Reopens that found the state after the last acknowledged operation, not after a later one. */
  readonly lostUnacknowledged: number
  /** Calls cut by a crash whose effect was found after the reopen. */
  readonly landedUncertain: number
  /** Calls interrupted by their caller (not by a crash) whose effect was not found, or found. */
  readonly interruptedNotLanded: number
  readonly interruptedLanded: number
  /** Settlements carrying effects (a follow-up and a KV write) that committed them, and those cut by a crash. */
  readonly effectsCommitted: number
  readonly effectsCut: number
  readonly jobs: number
}

/** One randomized schedule; fails (as a defect) with a description when an invariant breaks. */
export const runQueueSchedule = (
  seed: number,
  options?: {
    readonly opsPerProcess?: number | undefined
  }
) =>
  Effect.gen(function*() {
    const prng: Prng = makePrng(`queue-model-${seed}`)
    // each schedule starts on a fresh 115-day slot of virtual time, so that a seed replays alone
    const slot = 1e10
    yield* TestClock.setTime((Math.floor((yield* Clock.currentTimeMillis) / slot) + 1) * slot)
    const raw = yield* Effect.provide(Effect.map(ObjectStore.ObjectStore, (s) => s), ObjectStore.layerMemory({ retry: false }))
    const kvOptions: Kv.Options = {
      runFlushSegments: 1 + prng.int(0, 6),
      maxRuns: 1 + prng.int(0, 3),
      gcMinAge: 0,
      keepManifests: 1 + prng.int(0, 2),
      maxWalPutsInFlight: 1 + prng.int(0, 4),
      ...(prng.next() < 0.2 ? { maxUnflushedBytes: 300 } : {})
    }
    // a third of the schedules store large payloads as objects of their own
    const offload = prng.next() < 0.33
    const queueOptions: JobQueue.Options = { reaperInterval: "1 hour", schedulerInterval: "1 hour", ...(offload ? { offloadThreshold: 64 } : {}) }
    const opsPerProcess = options?.opsPerProcess ?? 24
    const processes = 2 + prng.int(0, 3)
    const log: Array<string> = [`seed ${seed}, kv ${JSON.stringify(kvOptions)}, queue ${JSON.stringify(queueOptions)}`]
    const fail = (what: string) => Effect.die(new Error(`seed ${seed}: ${what}\n--- schedule:\n${log.slice(-80).join("\n")}`))

    let model: MState = emptyState
    // the states the store may be in after a crash: after the last acknowledged operation, and
    // after each one since
    let candidates: Array<MState> = [model]
    let nextN = 0
    let customIds = 0
    const held: Array<Held> = []
    let tokens = new Map<number, string>()
    let operations = 0
    let crashes = 0
    let lostUnacknowledged = 0
    let landedUncertain = 0
    let effectsCommitted = 0
    let effectsCut = 0
    let uncertainCut: ReadonlyArray<Sub> = []
    let shortAdvances = 0
    let current = 0
    const interrupted = { notLanded: 0, landed: 0 } // calls interrupted by their caller

    /** Opens a process on a new wrapper of the raw store; undefined if it crashed while opening. */
    const open = (incarnation: number, last: boolean) =>
      Effect.gen(function*() {
        const { control, store } = yield* wrap(raw, `${seed}-${incarnation}`, !last)
        const planned = last ? Number.POSITIVE_INFINITY : prng.int(0, 3 * opsPerProcess + 40)
        const applyFirst = prng.next() < 0.5
        yield* control.freezeAt(planned, { applyFirst })
        log.push(`-- process ${incarnation} opens; its store freezes at operation ${planned}${applyFirst ? " (applied first)" : ""}`)
        const scope = yield* Scope.make()
        const built = yield* drive(
          Layer.buildWithScope(
            JobQueue.layer(queueOptions).pipe(
              // every commit the queue makes is checked against the record layout before it lands
              Layer.provideMerge(Layer.effect(Kv.Kv, Effect.map(Kv.make(kvOptions), layoutChecked))),
              Layer.provide(layerOf(store))
            ),
            scope
          ),
          10_000
        )
        if (built === undefined || Exit.isFailure(built)) {
          if (!(yield* control.frozen)) {
            return yield* fail(`process ${incarnation} did not open: ${built === undefined ? "still opening after 10 s" : Cause.pretty(built.cause)}`)
          }
          log.push(`   crashed while opening`)
          yield* control.freeze
          yield* Effect.forkDetach(Scope.close(scope, Exit.void))
          return undefined
        }
        const process: Process = {
          queue: Context.get(built.value, JobQueue.JobQueue),
          kv: Context.get(built.value, Kv.Kv),
          control,
          scope
        }
        return process
      })

    /** The check after an open: the state found must be one the model allows, reopened. */
    const checkReopened = (process: Process, incarnation: number) =>
      Effect.gen(function*() {
        // the first runs of the reaper and the scheduler at open
        if (!(yield* process.control.frozen)) yield* settleBackground(process.kv, yield* Clock.currentTimeMillis, false)
        const now = yield* Clock.currentTimeMillis
        const found = yield* observe(process, raw, `seed ${seed}, process ${incarnation}`)
        // the promotions and sweeps of the first background runs are commits of their own: when the
        // store froze already (the process crashed while opening), they may wait for good for room
        // among the unflushed bytes (maxUnflushedBytes), and not be there
        const frozen = yield* process.control.frozen
        const works = frozen
          ? [{ promote: true, sweep: true }, { promote: false, sweep: true }, { promote: true, sweep: false }, { promote: false, sweep: false }]
          : [{ promote: true, sweep: true }]
        const allowed = candidates.flatMap((c) => works.map((work) => background(c, now, now, "reopen", work)))
        let chosen = -1
        for (let i = allowed.length - 1; i >= 0 && chosen < 0; i--) {
          if (stateMismatch(allowed[i]!, found).length === 0) chosen = i
        }
        if (chosen < 0) {
          const first = stateMismatch(allowed[0]!, found)
          const lastOne = stateMismatch(allowed[(candidates.length - 1) * works.length]!, found)
          return yield* fail(
            `after reopen ${incarnation}, the state is none of the ${allowed.length} the model allows` +
              `\n  against the state after the last acknowledged operation:\n    ${first.join("\n    ")}` +
              (candidates.length > 1 ? `\n  against the state after the last operation issued:\n    ${lastOne.join("\n    ")}` : "")
          )
        }
        const after = Math.floor(chosen / works.length) // the operation whose state was found
        if (after < candidates.length - 1) lostUnacknowledged++
        if (uncertainCut.length > 0 && after === candidates.length - 1) landedUncertain++
        uncertainCut = []
        // the model takes on what was found: ids of calls that did not return, exact expiry times
        const adopted = withJobs(allowed[chosen]!, (jobs) => {
          for (const [n, job] of jobs) {
            const seen = found.jobs.get(n)!
            jobs.set(n, {
              ...job,
              id: seen.id,
              runAt: seen.runAt,
              runAtLate: undefined,
              expiresAt: seen.expiresAt,
              lastError: seen.lastError,
              lastErrorAlt: undefined
            })
          }
        })
        log.push(`   reopened: ${found.jobs.size} jobs, the state after operation ${after} of the ${candidates.length - 1} since the last acknowledged one${frozen ? " (its store froze while opening)" : ""}`)
        model = adopted
        candidates = [model]
      })

    const pickHeld = (): Held | undefined => {
      if (held.length === 0) return undefined
      const valid = held.filter((h) => tokens.get(h.n) === h.claim.token)
      if (valid.length > 0 && prng.next() < 0.85) return valid[prng.int(0, valid.length)]
      return held[prng.int(0, held.length)]
    }

    const newEnqueue = (plain: boolean): Sub => {
      const queue = queueNames[prng.int(0, 2)]!
      const n = nextN++
      const options: {
        -readonly [K in keyof JobQueue.EnqueueOptions]: JobQueue.EnqueueOptions[K]
      } = {}
      const roll = () => prng.next()
      if (roll() < 0.3) options.priority = (["high", "normal", "low", 5, 100] as const)[prng.int(0, 5)]!
      if (roll() < 0.2) options.maxAttempts = 1 + prng.int(0, 3)
      if (!plain) {
        const when = roll()
        if (when < 0.15) options.delay = `${10 + prng.int(0, 10)} minutes`
        else if (when < 0.2) options.runAt = Number.NaN // replaced below with a time relative to now
        if (roll() < 0.25) options.dedupKey = `d${prng.int(0, 4)}`
        if (roll() < 0.2) {
          const reuse = customIds > 0 && roll() < 0.25
          options.id = `c${reuse ? prng.int(0, customIds) : customIds++}`
        }
        // a user KV write committed with the job (none on a dedup hit or a duplicate id)
        if (roll() < 0.2) options.kv = { [`q/${n}`]: new TextEncoder().encode(String(n)) }
      }
      return { _tag: "Enqueue", queue, n, options }
    }

    /** A settlement's effects, now and then: a follow-up job (a new n) and a user KV write. */
    const maybeEffects = (): FollowUp | undefined =>
      prng.next() < 0.3 ? { n: nextN++, queue: queueNames[prng.int(0, 2)]! } : undefined

    const nextSub = (now: number): Array<Sub> => {
      const roll = prng.next()
      const claimSub = (): Sub => ({
        _tag: "Claim",
        queue: queueNames[prng.int(0, 2)]!,
        max: 1 + prng.int(0, 3),
        lease: prng.next() < 0.3 ? "30 minutes" : undefined
      })
      if (roll < 0.28) {
        const sub = newEnqueue(false)
        if (sub._tag === "Enqueue" && Number.isNaN(sub.options.runAt)) {
          // a run time in the past (pending at once) or 15 minutes ahead
          return [{ ...sub, options: { ...sub.options, runAt: prng.next() < 0.5 ? now - 1000 : now + 15 * 60_000 } }]
        }
        return [sub]
      }
      if (roll < 0.33) {
        return [{ _tag: "Batch", queue: queueNames[prng.int(0, 2)]!, ns: Array.from({ length: 1 + prng.int(0, 4) }, () => nextN++) }]
      }
      if (roll < 0.53) return [claimSub()]
      if (roll < 0.58) {
        // a few at once: plain enqueues and settlements of distinct claims
        const subs: Array<Sub> = []
        const used = new Set<number>()
        for (let i = 0, k = 2 + prng.int(0, 2); i < k; i++) {
          const h = pickHeld()
          if (h !== undefined && !used.has(h.n) && prng.next() < 0.6) {
            used.add(h.n)
            const kind = prng.int(0, 4)
            subs.push(
              kind === 0
                ? { _tag: "Ack", held: h, effects: maybeEffects() }
                : kind === 1
                ? { _tag: "Nack", held: h, reason: `failed ${i}`, delay: undefined, effects: maybeEffects() }
                : kind === 2
                ? { _tag: "DeadLetter", held: h, reason: `bad ${i}`, effects: maybeEffects() }
                : { _tag: "Release", held: h }
            )
          } else subs.push(newEnqueue(true))
        }
        return subs
      }
      if (roll < 0.9) {
        const h = pickHeld()
        if (h === undefined) return [claimSub()]
        const kind = prng.next()
        if (kind < 0.4) return [{ _tag: "Ack", held: h, effects: maybeEffects() }]
        if (kind < 0.65) {
          const delays = [undefined, undefined, 0, 20 * 60_000] as const
          return [{ _tag: "Nack", held: h, reason: `attempt failed at ${operations}`, delay: delays[prng.int(0, 4)], effects: maybeEffects() }]
        }
        if (kind < 0.77) return [{ _tag: "DeadLetter", held: h, reason: `permanent failure at ${operations}`, effects: maybeEffects() }]
        if (kind < 0.92) return [{ _tag: "Release", held: h }]
        return [{ _tag: "Discard", held: h }]
      }
      if (roll < 0.96) {
        const known = [...model.jobs.values()].filter((j) => j.id !== undefined)
        const id = known.length > 0 && prng.next() < 0.85 ? known[prng.int(0, known.length)]!.id! : `gone${prng.int(0, 100)}`
        return [{ _tag: "Cancel", id }]
      }
      // time moves on: a while (at most 5 times in a row, so no kept job expires but by "days"), or days
      const long = shortAdvances >= 5 || prng.next() < 0.2
      shortAdvances = long ? 0 : shortAdvances + 1
      return [{ _tag: "Advance", millis: long ? days : aWhile }]
    }

    /** Runs one operation (one or more sub-operations at once) and checks it against the model. */
    const step = (process: Process) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const subs = nextSub(now)
        const index = operations++
        const predictions = subs.map((sub) => predict(model, sub, now, tokens))
        const advance = subs[0]!._tag === "Advance" ? subs[0] as Extract<Sub, { _tag: "Advance" }> : undefined
        const exits: Array<Exit.Exit<unknown, unknown> | undefined> = subs.map(() => undefined)
        let done: Exit.Exit<unknown, unknown> | undefined
        if (advance !== undefined) {
          yield* TestClock.adjust(advance.millis)
          // the background work runs at the ticks the adjustment passed; then a flush makes it durable
          const settled = yield* settleBackground(process.kv, now + advance.millis, true)
          done = yield* drive(process.kv.flush, 3_000)
          // background work that waits on the frozen store (a read of a block not cached, a
          // commit held up by a flush) was cut by the crash: the flush proves nothing about it
          const cut = settled === undefined && (yield* process.control.frozen)
          exits[0] = cut || done === undefined || Exit.isFailure(done) ? undefined : Exit.void
        } else {
          // now and then the caller gives up on a call after a few milliseconds (a timeout, a shutdown)
          const interruptAfter = subs.length === 1 && subs[0]!._tag !== "Claim" && prng.next() < 0.08
            ? prng.int(0, 4)
            : undefined
          done = yield* drive(
            Effect.forEach(subs, (sub, i) => Effect.tap(Effect.exit(runSub(process.queue, sub)), (exit) => Effect.sync(() => void (exits[i] = exit))), {
              concurrency: "unbounded",
              discard: true
            }),
            interruptAfter ?? 3_000
          )
          if (interruptAfter !== undefined && exits[0] === undefined && !(yield* process.control.frozen)) {
            // it landed or not: what is stored tells, once everything committed is durable
            log.push(`#${index} ${describeSub(subs[0]!)} -> interrupted by its caller after ${interruptAfter} ms`)
            const flushed = yield* drive(process.kv.flush, 3_000)
            if (flushed !== undefined && Exit.isSuccess(flushed)) {
              const found = yield* observe(process, raw, `seed ${seed}, after operation ${index} was interrupted`)
              const before = model
              const after = predictions[0]!.apply(model, undefined)
              const landed = stateMismatch(after, found).length === 0
              if (!landed && stateMismatch(before, found).length > 0) {
                return yield* fail(
                  `operation ${index} was interrupted: the state is neither the one before it nor the one after it` +
                    `\n  against the state after it:\n    ${stateMismatch(after, found).join("\n    ")}` +
                    `\n  against the state before it:\n    ${stateMismatch(before, found).join("\n    ")}`
                )
              }
              log.push(`   it ${landed ? "landed" : "did not land"}`)
              if (landed) interrupted.landed++
              else interrupted.notLanded++
              model = withJobs(landed ? after : before, (jobs) => {
                for (const [n, job] of jobs) jobs.set(n, { ...job, id: found.jobs.get(n)!.id, runAt: found.jobs.get(n)!.runAt, runAtLate: undefined })
              })
              candidates = [model]
              return "done" as const
            }
            // the store froze meanwhile: a crash, with the call cut by it
          }
        }
        const outcomes = exits.map((exit, i) => (exit === undefined ? undefined : outcomeOf(subs[i]!, exit)))
        log.push(`#${index} ${subs.map((sub, i) => `${describeSub(sub)} -> ${outcomes[i] ?? "(no answer)"}`).join(" | ")}`)
        // every answer given is the one predicted
        for (let i = 0; i < subs.length; i++) {
          const outcome = outcomes[i]
          if (outcome !== undefined && !matches(predictions[i]!.expected, outcome)) {
            return yield* fail(`operation ${index}: ${describeSub(subs[i]!)} answered ${outcome}, the model says ${predictions[i]!.expected}`)
          }
        }
        const answered = subs.map((_, i) => i).filter((i) => outcomes[i] !== undefined)
        const cut = subs.map((_, i) => i).filter((i) => outcomes[i] === undefined)
        const base = answered.reduce((s, i) => predictions[i]!.apply(s, (exits[i] as Exit.Exit<unknown>)._tag === "Success" ? (exits[i] as Exit.Success<unknown>).value : undefined), model)
        // the states a crash may leave: the calls cut by it landed or not, in any combination
        const possible = subsets(cut).map((landed) => landed.reduce((s, i) => predictions[i]!.apply(s, undefined), base))
        const acknowledged = answered.some((i) => isDurable(subs[i]!, outcomes[i]!))
        for (const [i, sub] of subs.entries()) {
          if (!("effects" in sub) || sub.effects === undefined) continue
          if (outcomes[i] === undefined) effectsCut++
          else if (outcomes[i] === "ok" || outcomes[i] === "DeadLettered") effectsCommitted++
        }
        candidates = acknowledged ? possible : [...candidates, ...possible]
        model = base
        // claims taken or given up
        for (const i of answered) {
          const sub = subs[i]!
          const exit = exits[i]!
          if (sub._tag === "Claim" && Exit.isSuccess(exit)) {
            for (const claim of exit.value as ReadonlyArray<JobQueue.Claim<Payload>>) {
              const job = model.jobs.get(claim.job.payload.n)!
              if (claim.job.id !== job.id || claim.job.attempts !== job.attempts || JSON.stringify(claim.job.payload) !== JSON.stringify(payloadOf(job.n))) {
                return yield* fail(`operation ${index}: claimed ${claim.job.id} attempt ${claim.job.attempts}, the model has ${describeJob(job)}`)
              }
              tokens.set(job.n, claim.token)
              held.push({ claim, n: job.n, incarnation: current })
            }
          }
          if ("held" in sub && outcomes[i] !== "ClaimLost" && tokens.get(sub.held.n) === sub.held.claim.token) tokens.delete(sub.held.n)
        }
        if (advance !== undefined && outcomes[0] !== undefined) tokens = new Map()
        if (cut.length > 0) {
          uncertainCut = cut.map((i) => subs[i]!)
          return "cut" as const
        }
        // the counters, after every operation
        for (const name of queueNames) {
          const stats = yield* process.queue.stats(name)
          const expected = countersOf(model, name)
          const fields = ["pending", "scheduled", "claimed", "done", "dead"] as const
          if (fields.some((field) => stats[field] !== expected[field])) {
            return yield* fail(`operation ${index}: stats(${name}) is ${JSON.stringify(stats)}, the model says ${JSON.stringify(expected)}`)
          }
        }
        if (held.length > 40) held.splice(0, held.length - 40)
        return "done" as const
      })

    for (let incarnation = 0; incarnation <= processes; incarnation++) {
      const last = incarnation === processes
      current = incarnation
      const process = yield* open(incarnation, last)
      if (process === undefined) {
        crashes++
        continue
      }
      yield* checkReopened(process, incarnation)
      tokens = new Map()
      if (last) {
        yield* driveOrFail(Scope.close(process.scope, Exit.void), `closing process ${incarnation}`, fail)
        break
      }
      let crashed = false
      const planned = Math.max(2, Math.round(opsPerProcess * (0.5 + prng.next())))
      for (let i = 0; i < planned && !crashed; i++) {
        const result = yield* step(process)
        const frozen = yield* process.control.frozen
        if (result === "cut" && !frozen) return yield* fail(`operation ${operations - 1} got no answer in 3 s while the store works`)
        crashed = frozen
      }
      if (!crashed && prng.next() < 0.4) {
        // a clean shutdown: everything committed is made durable
        const closed = yield* drive(Scope.close(process.scope, Exit.void), 3_000)
        if (closed !== undefined && !(yield* process.control.frozen)) {
          log.push(`-- process ${incarnation} shut down cleanly`)
          candidates = [model]
          continue
        }
        log.push(`-- process ${incarnation} crashed while shutting down`)
      } else log.push(`-- process ${incarnation} crashed`)
      crashes++
      // the crash: the store stops; the process's background fibers are stopped (its scope's
      // closing hangs in the KV's final flush, and is left so)
      yield* process.control.freeze
      yield* Effect.forkDetach(Scope.close(process.scope, Exit.void))
    }
    return {
      seed,
      operations,
      processes: processes + 1,
      crashes,
      lostUnacknowledged,
      landedUncertain,
      interruptedNotLanded: interrupted.notLanded,
      interruptedLanded: interrupted.landed,
      jobs: model.jobs.size,
      effectsCommitted,
      effectsCut
    } satisfies QueueScheduleReport
  }).pipe(Random.withSeed(seed))

const driveOrFail = <A, E>(effect: Effect.Effect<A, E>, what: string, fail: (what: string) => Effect.Effect<never>) =>
  Effect.flatMap(drive(effect, 10_000), (done) => {
    if (done === undefined) return fail(`${what}: not done after 10 s`)
    if (Exit.isFailure(done)) return fail(`${what} failed: ${Cause.pretty(done.cause)}`)
    return Effect.succeed(done.value)
  })

