/**
 * Spans and timings of a queue's public operations (see DESIGN.md §6c), put over a whole
 * `Service` once it is built: a queue of this process (`JobQueue.make`) and one reached over a
 * connection (`QueueClient`) get the same.
 *
 * - Every operation runs in a span `bucketq.<operation>` (`bucketq.kv.<operation>` for the user
 *   KV), with the queue's name (`bucketq.queue`) and the job's id (`bucketq.job.id`) as attributes
 *   where the call names them; enqueue and claim add the ids they return (`bucketq.jobs` counts a
 *   batch). A claim's span is kept with each claim it returns (`claimSpan`): a Worker runs the
 *   job's handler in a child span of it.
 * - Every operation's duration goes to `bucketq_operation_seconds{operation}`, a histogram, in the
 *   registry of the context the queue was built in.
 *
 * Spans are made only when a tracer is installed (`Effect.withTracer`, an OpenTelemetry layer):
 * Effect's built-in one exports nothing, so without another no span is made at all. Cost per call:
 * two clock reads and a histogram update (a registry lookup; the histograms are built once, per
 * operation), and with a tracer one span and one attribute object. Arguments are read
 * defensively: they are checked inside the operation, which fails with its typed error.
 *
 * @internal
 */
import { Clock, Context, Effect, Metric, Tracer } from "effect"
import type { Claim, Service } from "../JobQueue.ts"

/** The buckets of `bucketq_operation_seconds`: 0.5 ms doubling up to about 16 s. */
const boundaries = Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 16 })

const histogram = (operation: string) =>
  Metric.histogram("bucketq_operation_seconds", {
    description: "Duration of the queue's public operations, by operation",
    boundaries,
    attributes: { operation }
  })

const claimSpanKey = Symbol.for("bucketq/queue/claimSpan")

/** The span of the claim that returned `claim` (undefined for a claim of a queue not instrumented). */
export const claimSpan = (claim: Claim<any>): Tracer.Span | undefined =>
  (claim as { readonly [claimSpanKey]?: Tracer.Span })[claimSpanKey]

type Attributes = Record<string, unknown>

/**
 * `f` in a new span named `name` when a tracer is installed, else `f` without one: Effect's
 * built-in tracer exports nothing, so its spans would only cost.
 */
export const spanIfTraced = <A, E, R>(
  name: string,
  options: Tracer.SpanOptionsNoTrace | (() => Tracer.SpanOptionsNoTrace),
  f: (span: Tracer.Span | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
      ? f(undefined)
      : Effect.useSpan(name, typeof options === "function" ? options() : options, f)
  )

/** The queue of a definition given as an argument, if it is one. */
const queueOf = (definition: unknown): string | undefined =>
  typeof definition === "object" && definition !== null && typeof (definition as { queue?: unknown }).queue === "string"
    ? (definition as { queue: string }).queue
    : undefined

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

/** The attributes of an operation on a claim: its job's queue and id. */
const ofClaim = (claim: unknown): Attributes => {
  const record = typeof claim === "object" && claim !== null ? (claim as Partial<Claim<unknown>>).record : undefined
  return { "bucketq.queue": text(record?.queue), "bucketq.job.id": text(record?.id) }
}

/** The attributes of a call naming a job first: by id, or by definition then id. */
const ofJob = (first: unknown, second: unknown): Attributes =>
  typeof first === "string" ? { "bucketq.job.id": first } : { "bucketq.queue": queueOf(first), "bucketq.job.id": text(second) }

/** The attributes of a call naming a queue first: by name, or by definition. */
const ofQueue = (target: unknown): Attributes => ({ "bucketq.queue": typeof target === "string" ? target : queueOf(target) })

const none = (): Attributes => ({})

/** The service with every operation in a span and timed (see the module's header). */
export const instrumented = (service: Service): Effect.Effect<Service> =>
  Effect.map(Effect.context<never>(), (context) => {
    const clock = Context.get(context, Clock.Clock)

    /**
     * `f` in a span named `bucketq.<name>` with the attributes `attributes` reads off its
     * arguments, timed; `done` annotates the span with the result.
     */
    const traced = <F extends (...args: ReadonlyArray<any>) => Effect.Effect<any, any, any>>(
      name: string,
      f: F,
      attributes: (...args: Parameters<F>) => Attributes,
      done?: (span: Tracer.Span, result: Effect.Success<ReturnType<F>>) => void
    ): F => {
      const timing = histogram(name)
      const spanName = `bucketq.${name}`
      const timed = <A, E, R>(run: Effect.Effect<A, E, R>) => {
        const start = clock.currentTimeNanosUnsafe()
        // recorded as the operation exits, in the exit step itself
        return Effect.onExit(run, () => {
          timing.updateUnsafe(Number(clock.currentTimeNanosUnsafe() - start) / 1e9, context)
          return Effect.void
        })
      }
      return ((...args: Parameters<F>) =>
        spanIfTraced(spanName, () => ({ attributes: attributes(...args) }), (span) => {
          if (span === undefined) return timed(f(...args))
          const run = done === undefined ? f(...args) : Effect.tap(f(...args), (result) => Effect.sync(() => done(span, result)))
          // the span as the parent of what the operation does (without `withParentSpan`'s stack frame)
          return timed(Effect.provideService(run, Tracer.ParentSpan, span))
        })) as F
    }

    const onClaims = (span: Tracer.Span, claims: ReadonlyArray<Claim<unknown>>) => {
      span.attribute("bucketq.jobs", claims.length)
      if (claims.length === 1) span.attribute("bucketq.job.id", claims[0]!.record.id)
      for (const claim of claims) Object.defineProperty(claim, claimSpanKey, { value: span })
    }

    const kv = service.kv
    return {
      ...service,
      enqueue: traced("enqueue", service.enqueue, ofQueue, (span, result) => span.attribute("bucketq.job.id", result.id)),
      enqueueBatch: traced("enqueueBatch", service.enqueueBatch, ofQueue, (span, ids) => span.attribute("bucketq.jobs", ids.length)),
      claim: traced("claim", service.claim, ofQueue, onClaims),
      ack: traced("ack", service.ack, ofClaim),
      nack: traced("nack", service.nack, ofClaim, (span, outcome) => span.attribute("bucketq.outcome", outcome)),
      deadLetter: traced("deadLetter", service.deadLetter, ofClaim),
      release: traced("release", service.release, ofClaim),
      discard: traced("discard", service.discard, ofClaim),
      extendLease: traced("extendLease", service.extendLease, ofClaim),
      get: traced("get", service.get, ofJob),
      awaitCompletion: traced("awaitCompletion", service.awaitCompletion, ofJob),
      list: traced("list", service.list, ofQueue),
      schedule: traced("schedule", service.schedule, ofQueue),
      history: traced("history", service.history, (id) => ({ "bucketq.job.id": text(id) })),
      stats: traced("stats", service.stats, ofQueue),
      cancel: traced("cancel", service.cancel, (id) => ({ "bucketq.job.id": text(id) })),
      queues: traced("queues", service.queues, none),
      deadJobs: traced("deadJobs", service.deadJobs, ofQueue),
      requeueDead: traced("requeueDead", service.requeueDead, (target: unknown, options?: unknown) =>
        options === undefined ? { "bucketq.job.id": text(target) } : ofQueue(target)),
      purgeDead: traced("purgeDead", service.purgeDead, ofQueue),
      wake: traced("wake", service.wake, (id) => ({ "bucketq.job.id": text(id) })),
      pause: traced("pause", service.pause, ofQueue),
      resume: traced("resume", service.resume, ofQueue),
      unschedule: traced("unschedule", service.unschedule, none),
      schedules: traced("schedules", service.schedules, none),
      kv: {
        get: traced("kv.get", kv.get, none),
        put: traced("kv.put", kv.put, none),
        delete: traced("kv.delete", kv.delete, none),
        compareAndSet: traced("kv.compareAndSet", kv.compareAndSet, none),
        scan: traced("kv.scan", kv.scan, none)
      }
    }
  })
