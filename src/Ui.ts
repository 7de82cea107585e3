/**
 * A read-only web page of the queues (what `bucketq serve-ui` serves): every queue with its depth
 * by state, charts of depth and of rates over the last minutes, the dead jobs of a queue with
 * their errors, and one job's record and history. One HTML page with its script and style inline,
 * polling JSON endpoints; nothing on the page or behind it writes to the store.
 *
 * **Details**
 *
 * The page reads through a `Source`: the `JobQueue` of this process or of a running writer
 * reached with `QueueClient` (`layerSourceQueue`: live), any `JobQueue.Reader` (`layerSource`),
 * or a store no writer runs on, opened read-only and read again every `refresh`
 * (`layerSourceReadOnly`: it never writes and never fences a writer that starts meanwhile).
 *
 * Endpoints (GET, JSON; every query parameter at most once):
 * - `/api/queues`: `{ at, snapshotAt, queues }`, the queues with their counters (`snapshotAt`:
 *   when the store was read, for a read-only source; `null` when live).
 * - `/api/series?queue=`: `{ intervalMs, points }`, the chart points of the last minutes of one
 *   queue, or of all queues summed without `queue` (see `Options.window`).
 * - `/api/dead?queue=&after=&limit=`: `{ queue, jobs, next }`, a page of the queue's dead jobs.
 * - `/api/job?id=`: `{ job, history }`, one job's record and its ended attempts.
 *
 * A queue name or job id that breaks the queue's own rules, or a bad `limit`, is refused with
 * 400 and the typed error as the body (`{ _tag: "InvalidQueueName", queue, reason, message }`);
 * a job that does not exist is 404 (`JobNotFound`); a store or writer that cannot be read is 503
 * with its error. Values from the store (payloads, errors, names) reach the page as text only,
 * the JSON escapes `<`, `>` and `&`, and the page allows no script but its own
 * (Content-Security-Policy). Bound to a loopback address (the default), requests must name it
 * in their `Host` header (`127.0.0.1`, `localhost` or `[::1]` with the port), so that no other
 * site can read the page through a DNS name it rebinds to this machine (403 otherwise).
 *
 * The charts come from memory: every `sampleInterval` (Effect's `Clock` and `Schedule`) the
 * counters of every queue are sampled into a ring that keeps `window` of them; rates are the
 * differences between consecutive samples. They start empty when the layer starts.
 *
 * @since 0.3.0
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Clock, Context, Duration, Effect, Layer, Option, Schedule, ScopedRef } from "effect"
import { HttpRouter, HttpServer, type HttpServerError, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { InvalidOption } from "./InvalidOption.ts"
import * as Rules from "./internal/options.ts"
import * as Page from "./internal/ui/page.ts"
import * as Samples from "./internal/ui/samples.ts"
import * as Views from "./internal/ui/views.ts"
import * as JobQueue from "./JobQueue.ts"
import { JobNotFound } from "./JobQueueError.ts"
import * as Kv from "./Kv.ts"
import type { ObjectStore } from "./ObjectStore.ts"
import * as QueueOptions from "./queue/options.ts"

/**
 * Options of `layer`; one that breaks its rule fails the layer with `InvalidOption` before it
 * listens.
 *
 * @category models
 * @since 0.3.0
 */
export interface Options {
  /** The TCP port to listen on: an integer from 0 (any free port: see `Ui.port`) to 65535. */
  readonly port: number
  /** The address to bind (default `"127.0.0.1"`, loopback only): a host name or IP address. */
  readonly host?: string | undefined
  /** How often the queues' counters are sampled for the charts (default 1 second): at least 100 ms. */
  readonly sampleInterval?: Duration.Input | undefined
  /**
   * How far back the charts go (default 10 minutes): at least one `sampleInterval`, and at most
   * 100,000 samples' worth.
   */
  readonly window?: Duration.Input | undefined
}

/**
 * The running page: where a browser reaches it.
 *
 * @category models
 * @since 0.3.0
 */
export interface Info {
  /** The page's URL (`http://host:port/`). */
  readonly url: string
  /** The port listened on (the one chosen when `port` was 0). */
  readonly port: number
}

/**
 * The running page of the layer.
 *
 * @category services
 * @since 0.3.0
 */
export class Ui extends Context.Service<Ui, Info>()("bucketq/Ui") {}

/**
 * What the page reads at one moment: the reader, and when the store was read (`Some` for a
 * read-only snapshot, `None` when the reader is live).
 *
 * @category models
 * @since 0.3.0
 */
export interface View {
  readonly reader: JobQueue.Reader
  readonly snapshotAt: Option.Option<number>
}

/**
 * Where the page reads the queues: `current` is the reader to use now (a read-only source
 * swaps it as it reads the store again).
 *
 * @category services
 * @since 0.3.0
 */
export class Source extends Context.Service<Source, { readonly current: Effect.Effect<View> }>()("bucketq/Ui/Source") {}

/**
 * A live source over a reader: a `JobQueue.Service` (this process's queue, or a `QueueClient`'s),
 * or any `JobQueue.Reader`.
 *
 * @category constructors
 * @since 0.3.0
 */
export const sourceOf = (reader: JobQueue.Reader): Source["Service"] =>
  Source.of({ current: Effect.succeed({ reader, snapshotAt: Option.none() }) })

/**
 * The `Source` of `sourceOf(reader)`.
 *
 * @category layers
 * @since 0.3.0
 */
export const layerSource = (reader: JobQueue.Reader): Layer.Layer<Source> => Layer.succeed(Source, sourceOf(reader))

/**
 * A live source over the `JobQueue` in context: the queue of this process, or a running
 * writer's through `QueueClient.layer`.
 *
 * @category layers
 * @since 0.3.0
 */
export const layerSourceQueue: Layer.Layer<Source, never, JobQueue.JobQueue> = Layer.effect(
  Source,
  Effect.map(JobQueue.JobQueue, sourceOf)
)

/**
 * Options of `layerSourceReadOnly`.
 *
 * @category models
 * @since 0.3.0
 */
export interface ReadOnlyOptions {
  /** How often the store is read again (default 1 second): at least 100 ms. */
  readonly refresh?: Duration.Input | undefined
}

/**
 * A source over the `ObjectStore` in context with no writer: the store opened read-only
 * (`Kv.makeReadOnly`, `JobQueue.makeReadOnly`: nothing is written, no writer is fenced) and read
 * again every `refresh`, each read a snapshot that replaces the one before. The layer fails when
 * the first read does; a later read that fails keeps the last snapshot (logged once until a read
 * succeeds again), and the page shows when it was read.
 *
 * @category layers
 * @since 0.3.0
 */
export const layerSourceReadOnly = (
  options?: ReadOnlyOptions
): Layer.Layer<Source, Kv.ReadOnlyOpenError | InvalidOption, ObjectStore> =>
  Layer.effect(
    Source,
    Effect.gen(function*() {
      yield* Rules.checked(Rules.optional(options, (o) => Rules.record("options", o)) ?? intervalError("refresh", options?.refresh))
      const refresh = Duration.fromInputUnsafe(options?.refresh ?? "1 second")
      const open = Effect.gen(function*() {
        const snapshotAt = yield* Clock.currentTimeMillis
        return { reader: yield* JobQueue.openReadOnly, snapshotAt: Option.some(snapshotAt) }
      })
      const ref = yield* ScopedRef.fromAcquire(open)
      const reopen = ScopedRef.set(ref, open)
      yield* Effect.forkScoped(
        Effect.repeat(onFailureLoggedOnce(reopen, "reading the store again failed; the page shows the last snapshot"), Schedule.spaced(refresh)).pipe(
          Effect.delay(refresh)
        )
      )
      return Source.of({ current: ScopedRef.get(ref) })
    })
  )

/** `effect` with its failures logged (the first of a run of them only) and swallowed. */
const onFailureLoggedOnce = <E, R>(effect: Effect.Effect<unknown, E, R>, what: string): Effect.Effect<void, never, R> => {
  let failing = false
  return effect.pipe(
    Effect.matchCauseEffect({
      onSuccess: () => Effect.sync(() => void (failing = false)),
      onFailure: (cause) => {
        if (failing) return Effect.void
        failing = true
        return Effect.logWarning(`bucketq page: ${what}`, cause)
      }
    })
  )
}

const defaultHost = "127.0.0.1"
const maxSamples = 100_000

const intervalError = (option: string, value: unknown): InvalidOption | undefined =>
  Rules.optional(value, (v) =>
    Rules.duration(option, v, { positive: true }) ??
      (Duration.toMillis(Duration.fromInputUnsafe(v as Duration.Input)) < 100 ? Rules.invalid(option, v, "must be at least 100 ms") : undefined))

const optionsError = (options: Options): InvalidOption | undefined =>
  Rules.record("options", options) ??
    Rules.integer("port", options.port, 0, 65535) ??
    Rules.optional(options.host, (host) => Rules.string("host", host, 1, 253)) ??
    intervalError("sampleInterval", options.sampleInterval) ??
    Rules.optional(options.window, (w) => Rules.duration("window", w, { positive: true })) ??
    samplesError(options)

const samplesOf = (options: Options): number =>
  Math.ceil(
    Duration.toMillis(Duration.fromInputUnsafe(options.window ?? "10 minutes")) /
      Duration.toMillis(Duration.fromInputUnsafe(options.sampleInterval ?? "1 second"))
  ) + 1

const samplesError = (options: Options): InvalidOption | undefined =>
  samplesOf(options) > maxSamples + 1
    ? Rules.invalid("window", options.window, `must be at most ${maxSamples} sample intervals`)
    : undefined

// ---- responses ------------------------------------------------------------------------------

const commonHeaders = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

const json = (body: unknown, status = 200) =>
  HttpServerResponse.text(Views.safeJson(body), { status, contentType: "application/json; charset=utf-8", headers: commonHeaders })

const page = HttpServerResponse.text(Page.html, {
  contentType: "text/html; charset=utf-8",
  headers: { ...commonHeaders, "content-security-policy": Page.contentSecurityPolicy, "x-frame-options": "DENY" }
})

const noIcon = HttpServerResponse.empty({ status: 204, headers: commonHeaders })

/** The status of an error: the caller's input (400), a job that does not exist (404), the store or writer (503). */
const statusOf = (tag: string): number =>
  tag === "InvalidQueueName" || tag === "InvalidJobId" || tag === "InvalidOption" ? 400 : tag === "JobNotFound" ? 404 : 503

/** Runs a handler: its value as JSON, a typed error as its body with its status, a defect as 500 (logged). */
const respond = <A>(
  handler: Effect.Effect<A, { readonly _tag: string; readonly message: string }>
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  handler.pipe(
    Effect.matchCauseEffect({
      onSuccess: (body) => Effect.succeed(json(body)),
      onFailure: (cause) => {
        const error = cause.reasons.find((r) => r._tag === "Fail")
        if (error !== undefined && error._tag === "Fail") return Effect.succeed(json(Views.errorBody(error.error), statusOf(error.error._tag)))
        return Effect.as(Effect.logError("bucketq page: a request failed", cause), json({ _tag: "Defect", message: "internal error" }, 500))
      }
    })
  )

// ---- query parameters -----------------------------------------------------------------------

/** A request's query parameters; a parameter given twice is refused. */
const paramsOf = (request: HttpServerRequest.HttpServerRequest) => {
  const params = new URL(request.url, "http://page").searchParams
  return (name: string): Effect.Effect<string | undefined, InvalidOption> => {
    const values = params.getAll(name)
    return values.length > 1
      ? Effect.fail(Rules.invalid(name, values, "must be given at most once"))
      : Effect.succeed(values[0])
  }
}

const required = (name: string, value: string | undefined): Effect.Effect<string, InvalidOption> =>
  value === undefined ? Effect.fail(Rules.invalid(name, value, "is required")) : Effect.succeed(value)

const checkedQueue = (queue: string) => Effect.as(Rules.checked(QueueOptions.queueNameError(queue)), queue)
const checkedId = (id: string) => Effect.as(Rules.checked(QueueOptions.idArgumentError(id)), id)

const limitOf = (text: string | undefined): Effect.Effect<number, InvalidOption> => {
  if (text === undefined) return Effect.succeed(QueueOptions.defaultListLimit)
  const n = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN
  return Effect.as(Rules.checked(Rules.integer("limit", Number.isNaN(n) ? text : n, 1, QueueOptions.maxListLimit)), n)
}

// ---- the endpoints --------------------------------------------------------------------------

const handlers = (source: Source["Service"], ring: Samples.Ring<Samples.Sample>, intervalMs: number) => {
  const reader = Effect.map(source.current, (view) => view.reader)
  return {
    queues: Effect.gen(function*() {
      const view = yield* source.current
      const queues = yield* view.reader.queues()
      return { at: yield* Clock.currentTimeMillis, snapshotAt: Option.getOrNull(view.snapshotAt), queues }
    }),
    series: (param: ReturnType<typeof paramsOf>) =>
      Effect.gen(function*() {
        const queue = yield* param("queue")
        if (queue !== undefined) yield* checkedQueue(queue)
        return { intervalMs, points: Samples.series(ring.items(), queue) }
      }),
    dead: (param: ReturnType<typeof paramsOf>) =>
      Effect.gen(function*() {
        const queue = yield* Effect.flatMap(Effect.flatMap(param("queue"), (q) => required("queue", q)), checkedQueue)
        const after = yield* param("after")
        if (after !== undefined) yield* checkedId(after)
        const limit = yield* Effect.flatMap(param("limit"), limitOf)
        const jobs = yield* Effect.flatMap(reader, (r) => r.deadJobs(queue, { after, limit }))
        return { queue, jobs: jobs.map(Views.jobView), next: jobs.length === limit ? jobs[jobs.length - 1]!.id : null }
      }),
    job: (param: ReturnType<typeof paramsOf>) =>
      Effect.gen(function*() {
        const id = yield* Effect.flatMap(Effect.flatMap(param("id"), (i) => required("id", i)), checkedId)
        const r = yield* reader
        const record = yield* r.get(id)
        if (Option.isNone(record)) return yield* new JobNotFound({ id })
        return Views.jobDetail(record.value, yield* r.history(id))
      })
  }
}

const loopbacks = new Set(["127.0.0.1", "localhost", "::1", "[::1]"])

/** The `Host` headers a request to a page bound to a loopback address may carry; undefined: any. */
const allowedHosts = (host: string, port: number): ReadonlySet<string> | undefined =>
  loopbacks.has(host) ? new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) : undefined

const forbiddenHost = json({ _tag: "ForbiddenHost", message: "this page answers only to its loopback address" }, 403)

/** The routes, and the sampler forked in the layer's scope. */
const app = (options: Options, host: string) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    const source = yield* Source
    const address = (yield* HttpServer.HttpServer).address
    const hosts = address._tag === "UnixPathAddress" ? undefined : allowedHosts(host, address.port)
    const interval = Duration.fromInputUnsafe(options.sampleInterval ?? "1 second")
    const ring = Samples.makeRing<Samples.Sample>(samplesOf(options))
    const sample = Effect.gen(function*() {
      const queues = yield* Effect.flatMap(source.current, (view) => view.reader.queues())
      const at = yield* Clock.currentTimeMillis
      ring.push(Samples.sampleOf(at, queues))
    })
    yield* Effect.forkScoped(Effect.repeat(onFailureLoggedOnce(sample, "sampling the queues failed"), Schedule.spaced(interval)))
    const h = handlers(source, ring, Duration.toMillis(interval))
    const route = (path: `/${string}`, handler: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse>) =>
      router.add("GET", path, (request) =>
        hosts !== undefined && !hosts.has(request.headers["host"] ?? "") ? Effect.succeed(forbiddenHost) : handler(request))
    yield* route("/", () => Effect.succeed(page))
    yield* route("/favicon.ico", () => Effect.succeed(noIcon))
    yield* route("/api/queues", () => respond(h.queues))
    yield* route("/api/series", (request) => respond(h.series(paramsOf(request))))
    yield* route("/api/dead", (request) => respond(h.dead(paramsOf(request))))
    yield* route("/api/job", (request) => respond(h.job(paramsOf(request))))
  }))

/**
 * Serves the page over the `Source` in context on `http://host:port/` until the layer's scope
 * closes, and provides where it listens (`Ui`). Fails with `InvalidOption` for a bad option, or
 * with the HTTP server's error when it cannot listen (the port is taken).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ObjectStore, Ui } from "bucketq"
 *
 * // a store no writer runs on, read again every second
 * const Page = Ui.layer({ port: 7451 }).pipe(
 *   Layer.provide(Ui.layerSourceReadOnly()),
 *   Layer.provide(ObjectStore.layerFileSystem({ directory: ".bucketq" }))
 * )
 * // Layer.launch(Page)
 * ```
 *
 * @category layers
 * @since 0.3.0
 */
export const layer = (options: Options): Layer.Layer<Ui, InvalidOption | HttpServerError.ServeError, Source> =>
  Layer.unwrap(Effect.gen(function*() {
    yield* Rules.checked(optionsError(options))
    const host = options.host ?? defaultHost
    const info = Layer.effect(Ui)(Effect.gen(function*() {
      const address = (yield* HttpServer.HttpServer).address
      const port = address._tag === "UnixPathAddress" ? options.port : address.port
      return { port, url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/` }
    }))
    return Layer.mergeAll(HttpRouter.serve(app(options, host), { disableLogger: true, disableListenLog: true }), info).pipe(
      Layer.provide(NodeHttpServer.layer(createServer, { port: options.port, host }))
    )
  }))
