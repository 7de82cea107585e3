/**
 * Workers: a job definition's handler run as supervised fibers over the `JobQueue`, with bounded
 * concurrency, shared permits, a rate limit, per-job timeouts, typed retry decisions, leases
 * renewed while a handler runs, cancellation by interruption and a graceful drain.
 *
 * ```ts
 * const EmailWorker = Worker.layer(Email, (payload, ctx) => send(payload.to), { concurrency: 8 })
 * ```
 *
 * Outcomes: success acks the job; failing with `Job.PermanentFailure` dead-letters it at once; any
 * other failure retries it with the definition's backoff unless `retry` decides otherwise; a
 * timeout fails the attempt; a defect is logged and retried; a payload of an older version is
 * migrated by the queue's claim (the handler gets the current version), and one that does not
 * decode or migrate is dead-lettered by the queue before the handler sees it. A lost lease (the job was requeued
 * meanwhile) or a cancel request interrupts the handler.
 *
 * With a tracer installed, each job's handler and its settlement run in a span `bucketq.handle`
 * (attributes `bucketq.queue`, `bucketq.job.id`, `bucketq.attempt`), a child of the span of the
 * claim that took the job.
 *
 * A worker ends when its queue's writer stops for good (`Fenced`: another process opened the same
 * store; or `Closed`): `run` fails with it, and a `layer` whose writer was fenced interrupts the
 * fiber that built it (under `Layer.launch`, the launch ends, so the process exits and a
 * supervisor can start it again).
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Schema, Scope, type Tracer } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as Rules from "./internal/options.ts"
import { checked } from "./internal/options.ts"
import { makeSignal } from "./internal/signal.ts"
import * as Job from "./Job.ts"
import type { InvalidOption } from "./InvalidOption.ts"
import { type Claim, JobQueue, type ReadError, type SettlementEffects } from "./JobQueue.ts"
import type { CancelRequested, ClaimLost, InvalidQueueName } from "./JobQueueError.ts"
import { isStopError, type StopError } from "./Kv.ts"
import type { Fenced } from "./KvError.ts"
import * as Instrument from "./queue/instrument.ts"
import * as QueueOptions from "./queue/options.ts"

/**
 * What a handler knows about the job it runs.
 *
 * @category models
 * @since 0.1.0
 */
export interface JobContext {
  readonly id: string
  /** 1 for the first claim, 2 for the first retry, ... */
  readonly attempt: number
  readonly headers: Readonly<Record<string, string>>
  readonly enqueuedAt: number
  /**
   * This claim's token: a new one for every claim of the job. A downstream system that stores
   * the highest token it saw per job can refuse the writes of a holder whose lease was taken.
   */
  readonly token: string
  /** Extends the lease now (the worker also renews it on its own while the handler runs). */
  readonly extendLease: (duration: Duration.Input) => Effect.Effect<void, ClaimLost | CancelRequested | InvalidOption | ReadError>
}

/**
 * A job's handler: what it returns is the job's result (for a definition with a `result`
 * schema), or a `Completion` to commit settlement effects with the job's ack.
 *
 * @category models
 * @since 0.1.0
 */
export type Handler<A, E, R, Out = unknown> = (payload: A, context: JobContext) => Effect.Effect<Out | Completion<Out>, E, R>

/**
 * What a handler returns to commit effects with its job's ack (see `complete`).
 *
 * @category models
 * @since 0.3.0
 */
export class Completion<out Out> {
  readonly _tag = "Completion"
  constructor(
    /** Follow-up enqueues and user KV writes, committed with the ack (see `JobQueue.SettlementEffects`). */
    readonly effects: SettlementEffects,
    /** The job's result, for a definition with a `result` schema. */
    readonly result: Out | undefined
  ) {}
}

/**
 * Completes the job with settlement effects: the worker acks it with `effects` (follow-up
 * enqueues, user KV writes and deletes) in the same commit, and with `result` as its result when
 * the definition has a `result` schema. The idempotent-handler pattern of the README, in a Worker:
 * a stale claim applies none of the effects (`ClaimLost`), and effects that do not check (a
 * follow-up's payload its schema refuses, a bad key, a value over 256 KiB) fail the attempt,
 * which is retried with why, like a result the schema refuses.
 *
 * @example
 * ```ts
 * Worker.layer(Order, (order) =>
 *   Effect.as(chargeCard(order), Worker.complete({
 *     enqueue: [[Receipt, { to: order.email }]],
 *     kv: { [`charged/${order.id}`]: new Uint8Array([1]) }
 *   })))
 * ```
 *
 * @category constructors
 * @since 0.3.0
 */
export const complete = <Out = never>(effects: SettlementEffects, ...result: [] | [result: Out]): Completion<Out> =>
  new Completion(effects, result[0])

/**
 * What to do with a failed attempt (see `Options.retry`).
 *
 * @category models
 * @since 0.1.0
 */
export type RetryDecision =
  | { readonly _tag: "Retry"; readonly delay: Option.Option<Duration.Duration> }
  | { readonly _tag: "DeadLetter" }
  | { readonly _tag: "Cancel" }

/**
 * Retry the job, after `delay` or the definition's backoff (dead-lettered if its attempts are used up).
 *
 * **Gotchas**
 *
 * Throws `InvalidOption` (option `delay`) when `delay` is not a finite, non-negative duration.
 *
 * @category constructors
 * @since 0.1.0
 */
export const Retry = (delay?: Duration.Input): RetryDecision => {
  const invalid = QueueOptions.retryDecisionError(delay)
  if (invalid !== undefined) throw invalid
  return { _tag: "Retry", delay: delay === undefined ? Option.none() : Option.some(Duration.fromInputUnsafe(delay)) }
}

/**
 * Dead-letter the job at once.
 *
 * @category constructors
 * @since 0.1.0
 */
export const DeadLetter: RetryDecision = { _tag: "DeadLetter" }

/**
 * Remove the job without an outcome.
 *
 * @category constructors
 * @since 0.1.0
 */
export const Cancel: RetryDecision = { _tag: "Cancel" }

/**
 * A limit shared by every worker it is given to: at most `size` jobs run under it at once, across
 * workers and queues (a global limit, one per queue, one per handler: as many as needed).
 *
 * @category models
 * @since 0.1.0
 */
export interface Permits {
  /** Permits are always taken in the order of creation, so two workers can never deadlock. */
  readonly order: number
  readonly size: number
  /** Jobs running under it now. */
  readonly inUse: () => number
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

let permitsCreated = 0

/**
 * A new limit of `size` jobs at once, to give to the workers that share it.
 *
 * **Gotchas**
 *
 * Throws `InvalidOption` (option `size`) unless `size` is an integer from 1 to 2^31 − 1: permits
 * are made once, beside the definitions, so a bad size fails the program where it is written.
 *
 * @category constructors
 * @since 0.1.0
 */
export const makePermits = (size: number): Permits => {
  const invalid = QueueOptions.permitsSizeError(size)
  if (invalid !== undefined) throw invalid
  const order = permitsCreated++
  let inUse = 0
  const waiting: Array<() => void> = []
  const acquire = Effect.callback<void>((resume) => {
    if (inUse < size) {
      inUse++
      return resume(Effect.void)
    }
    const wake = () => {
      inUse++
      resume(Effect.void)
    }
    waiting.push(wake)
    return Effect.sync(() => {
      const i = waiting.indexOf(wake)
      if (i >= 0) waiting.splice(i, 1)
    })
  })
  const release = Effect.sync(() => {
    inUse--
    waiting.shift()?.()
  })
  return {
    order,
    size,
    inUse: () => inUse,
    withPermit: (effect) => Effect.acquireUseRelease(acquire, () => effect, () => release)
  }
}

/**
 * The attempt took longer than the worker's `timeout`; its fiber was interrupted.
 *
 * @category errors
 * @since 0.1.0
 */
export class JobTimeout extends Schema.TaggedError<JobTimeout>()("JobTimeout", {
  after: Schema.String
}) {
  override get message(): string {
    return `the attempt timed out after ${this.after}`
  }
}

/**
 * Options of `run` and `layer`. Rules (else `InvalidOption` before anything runs): `concurrency`
 * and `batch` integers from 1 to 2^31 − 1; `rateLimit.limit` an integer from 1 and
 * `rateLimit.window` a finite duration above zero; `timeout` above zero (`Infinity`: none);
 * `drainTimeout` non-negative (`Infinity`: wait for every job); `lease` finite and non-negative;
 * `renewEvery` and `idleWait` finite and above zero; `permits` made by `makePermits`; `retry` a
 * function and `errorSchema` a Schema.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<E> {
  /** Jobs in flight at most (default 1). */
  readonly concurrency?: number | undefined
  /** Limits shared with other workers; each job takes one permit of each while it runs. */
  readonly permits?: ReadonlyArray<Permits> | undefined
  /**
   * Jobs started per `window` at most, through Effect's `RateLimiter` (the one in context if
   * any, so workers sharing it share the limit; else this worker's own), keyed by the queue.
   */
  readonly rateLimit?: { readonly limit: number; readonly window: Duration.Input } | undefined
  /** An attempt running longer is interrupted and fails with `JobTimeout`. */
  readonly timeout?: Duration.Input | undefined
  /** At shutdown, how long jobs in flight may finish before they are interrupted (default 30 s). */
  readonly drainTimeout?: Duration.Input | undefined
  /** Most jobs claimed at once (default: as many as there are free slots). */
  readonly batch?: number | undefined
  /** The lease of each claim (default: the definition's). */
  readonly lease?: Duration.Input | undefined
  /** How often a running job's lease is renewed (default: a third of the lease). */
  readonly renewEvery?: Duration.Input | undefined
  /** How long a claim waits for a job to arrive before it asks again (default 5 s). */
  readonly idleWait?: Duration.Input | undefined
  /**
   * Decides on a failed attempt by its typed error; undefined: retry with the backoff. A decision
   * that throws, or returns something that is not a `RetryDecision`, retries the job with the
   * backoff too, why stored with the job's error (and logged).
   */
  readonly retry?: ((error: E, context: JobContext) => RetryDecision | undefined) | undefined
  /** A schema of the handler's error: failures are stored as its JSON encoding. */
  readonly errorSchema?: Schema.Codec<E, any, never, never> | undefined
}

/**
 * Why a job's handler was stopped before it ended: its lease was lost, its job was cancelled, or
 * the queue's writer stopped for good (then the claim can be neither settled nor given back).
 */
type Stop = "LeaseLost" | "Cancelled" | "WriterStopped"


/** Logs a settlement that failed (the claim was lost, the store failed): the job's lease runs out. */
const logUnsettled = (id: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.asVoid,
    Effect.catchCause((cause) => Effect.logWarning(`job ${id}: its outcome was not recorded`, cause))
  )

/** The text stored as the job's last error. */
const describe = <E>(error: E, schema: Schema.Codec<E, any, never, never> | undefined): string => {
  if (schema !== undefined) {
    const encoded = Schema.encodeUnknownExit(schema)(error)
    if (Exit.isSuccess(encoded)) return JSON.stringify(encoded.value)
  }
  if (error instanceof Error) return error.message === "" ? error.name : `${error.name}: ${error.message}`
  if (typeof error === "object" && error !== null && "_tag" in error) return JSON.stringify(error)
  return String(error)
}

/**
 * Runs `handler` over the jobs of `definition` until interrupted. Interrupting it stops the
 * claims, lets jobs in flight finish for up to `drainTimeout`, then interrupts the rest and gives
 * their claims back (pending again, the attempt not counted). A failing claim loop is logged and
 * restarted with a backoff. It fails at its start with `InvalidOption` or `InvalidQueueName` when
 * an option (or the definition) breaks its rule; later only when the queue's writer stops for
 * good, with why (`Fenced`, `Closed`): it then stops claiming and interrupts the handlers in
 * flight at once, without a drain (their outcomes could not be recorded; the writer that took
 * over hands their jobs out again). It finds out within the KV's `fenceCheckInterval`
 * (10 s), plus half a lease when every slot is busy.
 *
 * @category running
 * @since 0.1.0
 */
export const run = <A, I, Out, E, R>(
  definition: Job.Definition<A, I, Out>,
  handler: Handler<A, E, R, Out>,
  options?: Options<E>
): Effect.Effect<never, InvalidOption | InvalidQueueName | StopError, JobQueue | R> =>
  Effect.gen(function*() {
    yield* checkOptions(definition, handler, options)
    const queue = yield* JobQueue
    const context = yield* Effect.context<R>()
    const concurrency = Math.max(1, Math.floor(options?.concurrency ?? 1))
    const batch = Math.max(1, Math.floor(options?.batch ?? concurrency))
    const lease = options?.lease === undefined ? definition.leaseDuration : Duration.fromInputUnsafe(options.lease)
    const renewEvery = options?.renewEvery === undefined
      ? Duration.millis(Math.max(1, Duration.toMillis(lease) / 3))
      : Duration.fromInputUnsafe(options.renewEvery)
    const idleWait = Duration.fromInputUnsafe(options?.idleWait ?? "5 seconds")
    const timeout = options?.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout)
    const drainTimeout = Duration.fromInputUnsafe(options?.drainTimeout ?? "30 seconds")
    const limiter = options?.rateLimit === undefined ? undefined : yield* rateLimiterOf()

    const scope = yield* Scope.make()
    /** A job in flight: its claim, its fiber, and why it was stopped (if it was). */
    interface Running {
      readonly claim: Claim<A>
      fiber: Fiber.Fiber<void> | undefined
      stop: Stop | undefined
      /** Its handler ended: the settlement is under way and is not interrupted any more. */
      settling: boolean
      /** When its lease was last renewed (or taken). */
      renewedAt: number
      /** Its slot was given back when its handler ended, before its settlement (see `handlerEnded`). */
      slotReleased: boolean
    }
    const running = new Set<Running>()
    const stopping = Deferred.makeUnsafe<void>()
    // failed with why, once the queue's writer stopped for good: the worker ends
    const writerStopped = Deferred.makeUnsafe<never, StopError>()

    /** Whether `cause` says that the queue's writer stopped for good; if so, the worker ends with it. */
    const endsWorker = (cause: Cause.Cause<unknown>): boolean => {
      const error = cause.reasons.find(Cause.isFailReason)?.error
      if (!isStopError(error)) return false
      Deferred.doneUnsafe(writerStopped, Effect.fail(error))
      return true
    }
    const slotFreed = makeSignal()
    let free = concurrency
    // settlements under way whose jobs gave their slots back already
    let settlingFree = 0

    // taken in creation order (the innermost last): a fixed order across workers, so no deadlock
    const permits = [...(options?.permits ?? [])].sort((a, b) => b.order - a.order)
    const withPermits = (effect: Effect.Effect<Out | Completion<Out>, E | JobTimeout, R>) =>
      permits.reduce((inner, p) => p.withPermit(inner), effect)

    /** Stops a job's handler: its fiber is interrupted and settles by `why`. */
    const stopJob = (job: Running, why: Stop) => {
      if (job.settling || job.stop !== undefined) return
      job.stop = why
      job.fiber?.interruptUnsafe()
    }

    /**
     * One fiber renews the leases of the jobs in flight, looking every half renewal period, so
     * each is renewed between one and one and a half periods after the last time; a renewal
     * that finds the claim lost, or its job asked to cancel, stops the job.
     */
    const renewLeases = Effect.gen(function*() {
      const every = Duration.toMillis(renewEvery)
      while (true) {
        yield* Effect.sleep(Duration.millis(Math.max(1, every / 2)))
        const now = yield* Clock.currentTimeMillis
        for (const job of running) {
          if (job.settling || job.stop !== undefined || now - job.renewedAt < every) continue
          job.renewedAt = now
          const renewed = yield* Effect.exit(queue.extendLease(job.claim, lease))
          if (Exit.isFailure(renewed) && !endsWorker(renewed.cause)) {
            const error = renewed.cause.reasons.find(Cause.isFailReason)?.error
            stopJob(job, error?._tag === "CancelRequested" ? "Cancelled" : "LeaseLost")
          }
        }
      }
    })

    /**
     * The ack of a handler that succeeded, with its value as the job's result when the
     * definition has a result schema. A value the schema refuses (or over the result's size
     * limit) is a failed attempt: retried, with why, like any other failure.
     */
    const ack = (claim: Claim<A>, value: Out | Completion<Out>) => {
      const completion = value instanceof Completion ? value : undefined
      if (completion === undefined && definition.result === undefined) return queue.ack(claim)
      const result = completion === undefined ? value : completion.result
      const options = { ...completion?.effects, ...(definition.result === undefined ? {} : { result }) }
      const refused = (error: { readonly message: string }) =>
        queue.nack(claim, `the handler's ${completion === undefined ? "result" : "completion"} was refused: ${error.message}`)
      return queue.ack(claim, options).pipe(
        Effect.catchTags({
          InvalidOption: refused,
          InvalidPayload: refused,
          InvalidQueueName: refused,
          InvalidJobId: refused,
          DuplicateJobId: refused,
          ValueTooLarge: refused,
          PayloadTooLarge: refused
        })
      )
    }

    /**
     * What `options.retry` decides for a typed failure (the backoff without it), or why it could
     * not decide: it threw, or returned something that is not a `RetryDecision`.
     */
    const decide = (error: E, ctx: JobContext): RetryDecision | string => {
      if (options?.retry === undefined) return Retry()
      try {
        const decision: unknown = options.retry(error, ctx)
        if (decision === undefined) return Retry()
        const tag = (decision as { readonly _tag?: unknown } | null)?._tag
        return tag === "Retry" || tag === "DeadLetter" || tag === "Cancel"
          ? decision as RetryDecision
          : `the retry decision is not one (${Rules.render(decision)})`
      } catch (thrown) {
        return `the retry decision threw: ${thrown instanceof Error ? thrown.message : Rules.render(thrown)}`
      }
    }

    /** Settles the claim by how its handler ended. */
    const settle = (claim: Claim<A>, ctx: JobContext, exit: Exit.Exit<Out | Completion<Out>, E | JobTimeout>) =>
      Effect.gen(function*() {
        if (Exit.isSuccess(exit)) return yield* ack(claim, exit.value)
        const failure = exit.cause.reasons.find(Cause.isFailReason)?.error
        if (failure === undefined) {
          yield* Effect.logError(`job ${ctx.id}: the handler died`, exit.cause)
          return yield* queue.nack(claim, `defect: ${Cause.pretty(exit.cause)}`)
        }
        if (failure instanceof Job.PermanentFailure) return yield* queue.deadLetter(claim, failure.reason)
        if (failure instanceof JobTimeout) return yield* queue.nack(claim, `timed out after ${failure.after}`)
        const error = failure as E
        const reason = describe(error, options?.errorSchema)
        const decided = decide(error, ctx)
        if (typeof decided === "string") {
          // the decision itself failed: retried with the backoff, and why is stored with the job
          yield* Effect.logWarning(`job ${ctx.id}: ${decided}; retried with the backoff`)
          return yield* queue.nack(claim, `${reason} (${decided})`)
        }
        const decision = decided
        switch (decision._tag) {
          case "Retry":
            return yield* queue.nack(claim, reason, Option.isSome(decision.delay) ? { delay: decision.delay.value } : undefined)
          case "DeadLetter":
            return yield* queue.deadLetter(claim, reason)
          case "Cancel":
            return yield* queue.discard(claim)
        }
      }).pipe(Effect.tapCause((cause) => Effect.sync(() => endsWorker(cause))), logUnsettled(ctx.id))

    /** A job whose fiber was interrupted: cancelled (removed), lease lost (nothing to do), or shut down (given back). */
    const settleStopped = (job: Running, ctx: JobContext) => {
      switch (job.stop) {
        case "Cancelled":
          return queue.discard(job.claim).pipe(logUnsettled(ctx.id))
        case "LeaseLost":
          return Effect.logWarning(`job ${ctx.id}: its lease was lost; the handler was interrupted`)
        case "WriterStopped":
          return Effect.logWarning(`job ${ctx.id}: the queue's writer stopped; the handler was interrupted`)
        case undefined:
          return Effect.ignore(queue.release(job.claim))
      }
    }

    const runJob = (job: Running): Effect.Effect<void> => {
      const claim = job.claim
      const ctx: JobContext = {
        id: claim.job.id,
        attempt: claim.job.attempts,
        headers: claim.job.headers,
        enqueuedAt: claim.job.enqueuedAt,
        token: claim.token,
        extendLease: (duration) => queue.extendLease(claim, duration)
      }
      const handled = timeout === undefined
        ? handler(claim.job.payload, ctx)
        : Effect.timeoutOrElse(handler(claim.job.payload, ctx), {
          duration: timeout,
          orElse: () => Effect.fail(new JobTimeout({ after: Duration.format(timeout) }))
        })
      // the handler and the settlement in a span, a child of the claim's: the context the worker
      // was started in is provided first, so that its own span does not take that place
      const inSpan = (span: Tracer.Span | undefined) => {
        const within = <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => (span === undefined ? effect : Effect.withParentSpan(effect, span))
        return Effect.exit(within(withPermits(handled)).pipe(Effect.provideContext(context))).pipe(
          Effect.flatMap((exit) => {
            job.settling = true
            handlerEnded(job)
            if (Exit.isFailure(exit)) span?.attribute("bucketq.handler.failed", true)
            return within(settle(claim, ctx, exit))
          })
        )
      }
      const spanOptions = () => {
        const parent = Instrument.claimSpan(claim)
        const attributes = { "bucketq.queue": claim.record.queue, "bucketq.job.id": claim.record.id, "bucketq.attempt": claim.record.attempts }
        return parent === undefined ? { attributes } : { attributes, parent }
      }
      return Instrument.spanIfTraced("bucketq.handle", spanOptions, inSpan).pipe(
        Effect.onInterrupt(() => settleStopped(job, ctx)),
        Effect.ensuring(Effect.sync(() => {
          running.delete(job)
          if (job.slotReleased) settlingFree--
          else releaseSlot()
        }))
      )
    }

    const releaseSlot = () => {
      free++
      slotFreed.notify()
    }

    /**
     * A handler ended: its slot goes back at once, so that the next claim overlaps the
     * settlement (an ack waits for a durable commit, over a connection for a remote queue)
     * instead of following it. Handlers stay within `concurrency`; settlements under way beyond
     * another `concurrency` keep their slots until they end, so they never pile up.
     */
    const handlerEnded = (job: Running) => {
      if (settlingFree >= concurrency) return
      settlingFree++
      job.slotReleased = true
      releaseSlot()
    }

    const start = (claim: Claim<A>) =>
      Effect.gen(function*() {
        const job: Running = {
          claim,
          fiber: undefined,
          stop: undefined,
          settling: false,
          renewedAt: yield* Clock.currentTimeMillis,
          slotReleased: false
        }
        running.add(job)
        job.fiber = yield* Effect.forkIn(runJob(job), scope, { startImmediately: true })
        // an in-process cancel stops the job at once, not at the next renewal
        const watch = yield* Effect.forkIn(Effect.andThen(claim.cancelled, Effect.sync(() => stopJob(job, "Cancelled"))), scope)
        job.fiber.addObserver(() => watch.interruptUnsafe())
      })

    /** Claims as many jobs as there are free slots (up to `batch`), and starts them. */
    const claimStep = Effect.gen(function*() {
      while (free === 0 && !Deferred.isDoneUnsafe(stopping)) yield* slotFreed.wait
      if (Deferred.isDoneUnsafe(stopping)) return
      // let the other jobs that end in this same turn free their slots too: one claim for all
      yield* Effect.yieldNow
      const max = Math.min(free, batch)
      if (limiter !== undefined) {
        const limited = RateLimiter.sleep(limiter, {
          key: `bucketq/${definition.queue}`,
          limit: options!.rateLimit!.limit,
          window: options!.rateLimit!.window,
          algorithm: "token-bucket"
        })
        yield* Effect.raceFirst(Effect.asVoid(limited), Deferred.await(stopping))
        if (Deferred.isDoneUnsafe(stopping)) return
      }
      const claims = yield* queue.claim(definition, {
        max: limiter === undefined ? max : 1,
        lease,
        wait: idleWait,
        until: Deferred.await(stopping)
      })
      free -= claims.length
      for (const claim of claims) yield* start(claim)
    })

    // A failing claim (store unavailable) is logged and tried again after a backoff that grows
    // while the failures go on: the loop never spins, and ends only when the writer stopped.
    const claimLoop = Effect.gen(function*() {
      let failures = 0
      while (!Deferred.isDoneUnsafe(stopping)) {
        const exit = yield* Effect.exit(claimStep)
        if (Exit.isSuccess(exit)) {
          failures = 0
          continue
        }
        if (Cause.hasInterruptsOnly(exit.cause) || endsWorker(exit.cause)) return
        failures++
        const delay = Duration.millis(Math.min(100 * 2 ** Math.min(failures - 1, 20), 30_000))
        yield* Effect.logError(`worker of ${definition.queue}: claiming failed (${failures} in a row); again in ${Duration.format(delay)}`, exit.cause)
        yield* Effect.raceFirst(Effect.sleep(delay), Deferred.await(stopping))
      }
    })

    const fibers = () => [...running].flatMap((job) => (job.fiber === undefined ? [] : [job.fiber]))
    const shutdown = Effect.gen(function*() {
      yield* Deferred.succeed(stopping, undefined)
      slotFreed.notify() // a claim loop waiting for a free slot
      yield* Fiber.join(loop)
      // the drain ends early when the writer stops meanwhile: nothing could be settled any more
      const drain = Effect.raceFirst(Effect.asVoid(Fiber.awaitAll(fibers())), Effect.ignore(Deferred.await(writerStopped)))
      const drained = yield* Effect.timeoutOption(drain, drainTimeout)
      if (Deferred.isDoneUnsafe(writerStopped)) for (const job of running) stopJob(job, "WriterStopped")
      if (Option.isNone(drained) || Deferred.isDoneUnsafe(writerStopped)) yield* Fiber.interruptAll(fibers())
      yield* Scope.close(scope, Exit.void)
    })

    /** Ends the worker at once, the writer having stopped: no more claims, handlers interrupted. */
    const halt = (error: StopError) =>
      Effect.gen(function*() {
        yield* Effect.logError(`worker of ${definition.queue} stops: ${error.message}`)
        yield* Deferred.succeed(stopping, undefined)
        slotFreed.notify()
        for (const job of running) stopJob(job, "WriterStopped")
        yield* Scope.close(scope, Exit.void) // interrupts the claim loop and the renewals, and waits for the jobs
      })

    yield* Effect.forkIn(renewLeases, scope)
    const loop = yield* Effect.forkIn(claimLoop, scope)
    return yield* Deferred.await(writerStopped).pipe(
      Effect.onInterrupt(() => shutdown),
      Effect.tapError(halt)
    )
  })

/** The `RateLimiter` in context, or a new in-memory one. */
const rateLimiterOf = () =>
  Effect.flatMap(Effect.serviceOption(RateLimiter.RateLimiter), (found) =>
    Option.isSome(found)
      ? Effect.succeed(found.value)
      : RateLimiter.make.pipe(Effect.provide(RateLimiter.layerStoreMemory)))

/** Fails with the first rule the definition, the handler or an option breaks. */
const checkOptions = (definition: Job.Definition<any, any>, handler: unknown, options: unknown) =>
  Effect.suspend(() => checked(QueueOptions.workerError(definition, handler, options)))

/**
 * Runs a layer's worker; if the queue's writer was fenced (`Fenced`: another process opened the
 * same store), it interrupts `builder`, the fiber that built the layer: a layer cannot fail once
 * built, and under `Layer.launch` that fiber is the launch, which then ends (`NodeRuntime.runMain`
 * exits with code 130) so that a supervisor can start the process again. A `Closed` writer (its
 * layer was closed, or it failed) ends the worker only.
 */
const interruptingBuilderWhenFenced = <R>(
  worker: Effect.Effect<never, InvalidOption | InvalidQueueName | StopError, R>,
  builder: Fiber.Fiber<unknown, unknown>
) =>
  Effect.tapError(worker, (error) =>
    Effect.flatMap(Effect.serviceOption(Launched), (launched) =>
      Effect.sync(() => {
        if (error._tag !== "Fenced") return
        // under `launch`, the launch fails with it; else the fiber that built the layer ends
        if (Option.isSome(launched)) Deferred.doneUnsafe(launched.value, Exit.fail(error))
        else builder.interruptUnsafe()
      })))

/** Where the workers of a `launch` tell it that their writer was fenced. */
class Launched extends Context.Service<Launched, Deferred.Deferred<never, Fenced>>()("bucketq/Worker/Launched") {}

/**
 * Builds `layer` (workers, and whatever else it provides) and runs it until one of its workers'
 * queue writer is fenced (another process opened the same store): then it fails with that
 * `Fenced`, closing the layer, so that the process can exit for a supervisor to restart it. It
 * fails with the layer's error if the layer cannot be built, and runs forever otherwise. Unlike
 * `Layer.launch`, it ends for workers of layers merged with `Layer.mergeAll` too, whose building
 * fibers end with the build.
 *
 * @example
 * ```ts
 * Worker.launch(Layer.mergeAll(EmailWorker, ReportWorker).pipe(Layer.provide(QueueLive))).pipe(NodeRuntime.runMain)
 * ```
 *
 * @category running
 * @since 0.3.0
 */
export const launch = <E, R>(layer: Layer.Layer<never, E, R>): Effect.Effect<never, E | Fenced, Exclude<R, Launched>> =>
  Effect.scoped(Effect.gen(function*() {
    const fenced = yield* Deferred.make<never, Fenced>()
    yield* Layer.build(layer.pipe(Layer.provide(Layer.succeed(Launched, fenced))))
    return yield* Deferred.await(fenced)
  })) as Effect.Effect<never, E | Fenced, Exclude<R, Launched>>

/**
 * `run` as a layer: its scope owns the worker, which drains when the scope closes. The options
 * are checked when the layer is built, which fails with `InvalidOption` or `InvalidQueueName`.
 * When the queue's writer is fenced the worker stops and interrupts the fiber that built the
 * layer (with `Layer.launch(Worker.layer(...).pipe(Layer.provide(QueueLive)))`, the launch). Layers
 * merged with `Layer.mergeAll` are built on fibers of their own, which end with the build: launch
 * several workers with `launch`, which fails with `Fenced` whatever the layers' shape (or chain
 * them with `Layer.provideMerge`, or run them with `Worker.run` under `Effect.all`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <A, I, Out, E, R>(
  definition: Job.Definition<A, I, Out>,
  handler: Handler<A, E, R, Out>,
  options?: Options<E>
): Layer.Layer<never, InvalidOption | InvalidQueueName, JobQueue | R> =>
  Layer.effectDiscard(Effect.andThen(
    checkOptions(definition, handler, options),
    Effect.withFiber((builder) => Effect.forkScoped(interruptingBuilderWhenFenced(run(definition, handler, options), builder)))
  ))
