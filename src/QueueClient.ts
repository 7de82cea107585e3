/**
 * The queue of a writer in another process (see `QueueServer`), reached over Effect RPC on one
 * WebSocket: the `JobQueue` operations with the same arguments, results and errors as locally,
 * plus `WriterUnavailable` when the writer cannot be reached and `Unauthorized` when the token is
 * not the server's.
 *
 * **Details**
 *
 * Arguments are checked here with the queue's own rules (a bad one fails with the same
 * `InvalidOption` as locally, and nothing is sent), and again by the writer's queue.
 *
 * The connection is opened in the background and reopened after it drops. An operation made
 * while it is down waits for it with a bounded backoff (`retry`, default 6 attempts from 100 ms,
 * doubling, capped at 1 s: about 2.5 s in all) and then fails with `WriterUnavailable`
 * (`"Unreachable"`). An operation the connection drops under is sent again when it is a read or
 * a write that repeating cannot change (`pause`, `resume`, `kv.put`, `kv.delete`); any other
 * (`cancel`, `wake`, `requeueDead`, `purgeDead`, `compareAndSet`, `unschedule`) fails at once
 * with `WriterUnavailable` (`"Dropped"`): it may or may not have been applied. `events` fails
 * with `"Dropped"` when the connection drops under it.
 *
 * `layer` provides `JobQueue` itself, so Workers and user code run unchanged on a remote queue.
 * The operations that carry a definition run the same codec as a local queue (`src/queue/codec.ts`)
 * in this process: payloads, results and follow-ups are encoded here with the definition's
 * Schemas, claims decoded here (old payload versions through its migrations; a payload that does
 * not decode is dead-lettered from here, never handed over), a retry's delay chosen here by its
 * backoff; the writer receives the definition's settings and encoded bytes and checks them again.
 * A claim's cancel request is seen at its next lease renewal (`extendLease` fails with
 * `CancelRequested`, which a Worker acts on), not at once.
 *
 * Enqueues and acks made in the same moment, from any fibers, cross in one request each with its
 * own outcome (`batched`); messages stay under `maxMessageBytes` (see `remote/protocol.ts`).
 * `layerSharded` spreads queues over several writers, one prefix each.
 *
 * @since 0.3.0
 */
import { NodeWS } from "@effect/platform-node"
import {
  Config,
  Context,
  Data,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Random,
  Redacted,
  Request,
  RequestResolver,
  Schedule,
  Stream
} from "effect"
import { type RpcClientError, RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket"
import type { JobRecord, JobStatus } from "../schema/JobRecord.ts"
import { checkOneEffect } from "./internal/effectCopy.ts"
import { InvalidOption } from "./InvalidOption.ts"
import * as Rules from "./internal/options.ts"
import { JobQueue, type Service } from "./JobQueue.ts"
import type * as Queue from "./JobQueue.ts"
import { type InvalidJobId, type InvalidQueueName, type InvalidState, type JobNotFound, type Unauthorized, WriterUnavailable } from "./JobQueueError.ts"
import * as Job from "./Job.ts"
import * as ObjectStore from "./ObjectStore.ts"
import { backoff, type RetryOptions } from "./ObjectStore/Retry.ts"
import * as Codec from "./queue/codec.ts"
import * as Codecs from "./queue/codecs.ts"
import * as Instrument from "./queue/instrument.ts"
import type * as Core from "./queue/core.ts"
import type * as Effects from "./queue/effects.ts"
import { defaultMaxPayload } from "./queue/context.ts"
import * as QueueOptions from "./queue/options.ts"
import * as Sharded from "./queue/sharded.ts"
import * as Convert from "./remote/convert.ts"
import * as WriterRecord from "./WriterRecord.ts"
import type * as Protocol from "./remote/protocol.ts"
import { maxMessageBytes, QueueRpcs, resolveToken, tokenHeader } from "./remote/protocol.ts"
import type { JobSettings } from "./queue/wire.ts"

/**
 * Options of `make` and `layer`; one that breaks its rule fails with `InvalidOption` before
 * anything connects.
 *
 * @category models
 * @since 0.3.0
 */
export interface Options {
  /** The server's WebSocket URL, as `QueueServer` tells it (`ws://127.0.0.1:7450/rpc`). */
  readonly url: string
  /** The server's token: a `Redacted` non-empty string, or a `Config` of one. */
  readonly token: Redacted.Redacted<string> | Config.Config<Redacted.Redacted<string>>
  /**
   * How long an operation waits for the connection before `WriterUnavailable`: attempts in all
   * (default 6, at most 100), the first delay (default 100 ms, doubling) and the longest (default 1 s).
   */
  readonly retry?: RetryOptions | undefined
  /**
   * How long the connection may stay silent before it is taken as dead and dropped (default 30 s,
   * from 1 s to 1 hour). The client pings the server every 5 s (or every third of this, if
   * shorter) and any message from the server counts as life. A ping waits behind the messages
   * sent before it, so a payload of tens of MiB leaves the connection silent for as long as the
   * server takes to read, store and answer it: a bound of a few seconds would drop a healthy
   * connection under load.
   */
  readonly pingTimeout?: Duration.Input | undefined
}

/**
 * Errors every remote operation can add to its local ones.
 *
 * @category errors
 * @since 0.3.0
 */
export type RemoteError = WriterUnavailable | Unauthorized

type Remoted<F> = F extends (...args: infer A) => Effect.Effect<infer X, infer E, infer R>
  ? (...args: A) => Effect.Effect<X, E | RemoteError, R>
  : never

/**
 * The user KV namespace of the remote queue (see `JobQueue.QueueKv`).
 *
 * @category models
 * @since 0.3.0
 */
export interface RemoteKv {
  readonly get: Remoted<Queue.QueueKv["get"]>
  readonly put: Remoted<Queue.QueueKv["put"]>
  readonly delete: Remoted<Queue.QueueKv["delete"]>
  readonly compareAndSet: Remoted<Queue.QueueKv["compareAndSet"]>
  readonly scan: Remoted<Queue.QueueKv["scan"]>
}

/**
 * The operations of `JobQueue.Service` that take no job definition, on the writer's queue: same
 * arguments and results, errors plus `RemoteError`.
 *
 * @category models
 * @since 0.3.0
 */
export interface RemoteService {
  /** The record as stored (see `JobQueue.Service["get"]` with an id). */
  readonly get: (id: string) => Effect.Effect<Option.Option<JobRecord>, Queue.PayloadStoreError | Queue.ReadError>
  readonly history: Remoted<Service["history"]>
  readonly kv: RemoteKv
  /** The writer's events (see `JobQueue.Service["events"]`); fails with `WriterUnavailable` when the connection drops. */
  readonly events: Stream.Stream<Queue.JobEvent, RemoteError>
  readonly stats: Remoted<Service["stats"]>
  readonly cancel: Remoted<Service["cancel"]>
  /** Waits for the job to end (see `JobQueue.Service["awaitCompletion"]` with an id). */
  readonly awaitCompletion: (
    id: string,
    options?: Queue.AwaitOptions
  ) => Effect.Effect<Queue.CompletionOutcome, InvalidOption | Queue.ReadError>
  /** A page of the jobs of a queue in one state, payloads encoded (see `JobQueue.Service["list"]` with a queue name). */
  readonly list: (
    queue: string,
    state: JobStatus,
    options?: Queue.ListOptions
  ) => Effect.Effect<
    Queue.JobPage<Queue.ListedRecord>,
    InvalidQueueName | InvalidOption | Queue.PayloadStoreError | Queue.ReadError
  >
  readonly queues: Remoted<Service["queues"]>
  readonly deadJobs: Remoted<Service["deadJobs"]>
  readonly requeueDead: {
    (id: string): Effect.Effect<void, Queue.QueueError | InvalidJobId | JobNotFound | InvalidState | Queue.ReadError>
    (queue: string, options: { readonly all: true }): Effect.Effect<number, Queue.QueueError | InvalidQueueName | InvalidOption | RemoteError>
  }
  readonly purgeDead: Remoted<Service["purgeDead"]>
  readonly wake: Remoted<Service["wake"]>
  readonly pause: Remoted<Service["pause"]>
  readonly resume: Remoted<Service["resume"]>
  readonly unschedule: Remoted<Service["unschedule"]>
  readonly schedules: Remoted<Service["schedules"]>
  // The operations that take a definition are `JobQueue.Service`'s, which `layer` provides too.
}

/**
 * The remote queue of `layer`.
 *
 * @category services
 * @since 0.3.0
 */
export class Remote extends Context.Service<Remote, RemoteService>()("bucketq/QueueClient/Remote") {}

const defaultRetry = { maxAttempts: 6, base: "100 millis", max: "1 second" } as const

// How often the connection is tried again in the background while it is down.
const reconnect = Schedule.min([Schedule.exponential("100 millis", 1.5), Schedule.spaced("1 second")])

/** The connection was down when the operation was to be sent: sending it again is safe. */
class NotConnected extends Data.TaggedError("NotConnected")<{ readonly detail: string }> {}
/** The connection dropped under the operation: whether the writer applied it is unknown. */
class Dropped extends Data.TaggedError("Dropped")<{ readonly detail: string }> {}

const optionsError = (options: Options): InvalidOption | undefined =>
  Rules.record("options", options) ??
    Rules.string("url", options.url, 1, 2048) ??
    (/^wss?:\/\//.test(options.url) ? undefined : Rules.invalid("url", options.url, "must be a ws:// or wss:// URL")) ??
    (Redacted.isRedacted(options.token) || Config.isConfig(options.token)
      ? undefined
      : Rules.invalid("token", "<not shown>", "must be a Redacted string or a Config of one")) ??
    Rules.optional(options.retry, (retry) =>
      Rules.record("retry", retry) ??
        Rules.optional(retry.maxAttempts, (n) => Rules.integer("retry.maxAttempts", n, 1, 100)) ??
        Rules.optional(retry.base, (d) => Rules.duration("retry.base", d)) ??
        Rules.optional(retry.max, (d) => Rules.duration("retry.max", d))) ??
    Rules.optional(options.pingTimeout, (d) => pingTimeoutError(d))

const defaultPingTimeout = Duration.seconds(30)
const maxPingInterval = Duration.seconds(5)

const pingTimeoutError = (timeout: Duration.Input): InvalidOption | undefined =>
  Rules.duration("pingTimeout", timeout) ??
    (Duration.between(Duration.fromInputUnsafe(timeout), { minimum: Duration.seconds(1), maximum: Duration.hours(1) })
      ? undefined
      : Rules.invalid("pingTimeout", timeout, "must be from 1 second to 1 hour"))

/** The ping interval and timeout of the connection: pings at least three times per timeout. */
const pinging = (options: DiscoverOptions) => {
  const pingTimeout = options.pingTimeout === undefined ? defaultPingTimeout : Duration.fromInputUnsafe(options.pingTimeout)
  return { pingTimeout, pingInterval: Duration.min(maxPingInterval, Duration.divideUnsafe(pingTimeout, 3)) }
}

/** The kind of a connection failure, and its cause's message when it has one ("SocketReadError: ping timeout"). */
const describe = (error: RpcClientError.RpcClientError): string => {
  const cause = (error.reason as { readonly cause?: unknown }).cause
  return cause instanceof Error && cause.message !== "" ? `${error.reason._tag}: ${cause.message}` : error.reason._tag
}

/**
 * Connects to the writer at `url` with `token` (the connection lives in the scope) and returns
 * the remote queue. Fails with `InvalidOption` for a bad option or an empty token, or with the
 * `Config` error of a token that cannot be read; an unreachable writer is not an error here,
 * only for the operations made while it stays unreachable.
 *
 * @category constructors
 * @since 0.3.0
 */
export const make = (options: Options) =>
  Effect.andThen(Rules.checked(optionsError(options)), connect(options.url, () => options.url, options))

/**
 * Options of `makeDiscover` and `layerDiscover`: `Options` without the URL, which the writer
 * record gives.
 *
 * @category models
 * @since 0.3.0
 */
export type DiscoverOptions = Omit<Options, "url">

/**
 * Connects to the writer of the store in context wherever it serves: the address its
 * `QueueServer` recorded in the writer record (see `WriterRecord`), read again at every
 * (re)connection, so the client waits for a writer started after it and follows a takeover (a
 * standby that took over, a writer restarted elsewhere) to its new address. While no writer has
 * recorded one, operations wait with the bounded backoff and then fail with `WriterUnavailable`.
 *
 * @category constructors
 * @since 0.3.0
 */
export const makeDiscover = (options: DiscoverOptions) =>
  Effect.gen(function*() {
    yield* Rules.checked(optionsError({ ...options, url: "ws://discovered" }))
    const store = yield* ObjectStore.ObjectStore
    let last = "ws://writer-not-found.invalid/rpc"
    const resolve = Effect.map(Effect.option(WriterRecord.read(store)), (found) => {
      const address = Option.flatMap(Option.flatten(found), (record) => record.address)
      if (Option.isSome(address)) last = address.value
      return last
    })
    return yield* connect(resolve, () => last, options)
  })

/** The connection and the queue over it; `url` is read at every (re)connection, `label` names it in errors. */
const connect = (url: string | Effect.Effect<string>, label: () => string, options: DiscoverOptions) =>
  Effect.gen(function*() {
    yield* checkOneEffect
    const value = Redacted.value(yield* resolveToken(options.token))
    let connected = false
    let lastError = "not connected yet"
    const hooks = Layer.succeed(RpcClient.ConnectionHooks)({
      onConnect: Effect.sync(() => {
        connected = true
      }),
      onDisconnect: Effect.sync(() => {
        connected = false
      })
    })
    const protocol = RpcClient.layerProtocolSocket({ retryPolicy: reconnect, ...pinging(options) }).pipe(
      Layer.provide([
        Layer.effect(Socket.Socket)(Socket.makeWebSocket(url, { headers: { [tokenHeader]: `Bearer ${value}` } })).pipe(
          Layer.provide(NodeWS.layerWebSocketConstructor)
        ),
        RpcSerialization.layerSchemaBinary({ maxFrameSize: maxMessageBytes }),
        hooks
      ])
    )
    // built in the caller's scope: the connection lives as long as it (not only while `make` runs)
    const client = yield* RpcClient.make(QueueRpcs).pipe(Effect.provide(yield* Layer.build(protocol)))
    const schedule = backoff({ ...defaultRetry, ...options.retry })

    /** Sends once connected (waiting with the backoff); again after a drop only when `repeatable`. */
    const call = <A, E>(
      repeatable: boolean,
      send: () => Effect.Effect<A, E | RpcClientError.RpcClientError>
    ): Effect.Effect<A, Exclude<E, RpcClientError.RpcClientError> | WriterUnavailable> => {
      let attempts = 0
      const attempt = Effect.suspend((): Effect.Effect<A, unknown> => {
        attempts++
        if (!connected) return Effect.fail(new NotConnected({ detail: lastError }))
        return send().pipe(Effect.catchIf(
          (e): e is RpcClientError.RpcClientError => (e as { _tag?: unknown })?._tag === "RpcClientError",
          (e) => {
            lastError = describe(e)
            return Effect.fail(new Dropped({ detail: lastError }))
          }
        ))
      })
      return attempt.pipe(
        Effect.retry({
          schedule,
          while: (e: unknown) => e instanceof NotConnected || (repeatable && e instanceof Dropped)
        }),
        Effect.mapError((e: unknown) =>
          e instanceof NotConnected
            ? new WriterUnavailable({ url: label(), reason: "Unreachable", attempts, detail: e.detail })
            : e instanceof Dropped
            ? new WriterUnavailable({ url: label(), reason: repeatable ? "Unreachable" : "Dropped", attempts, detail: e.detail })
            : e
        )
      ) as never
    }
    const read = <A, E>(send: () => Effect.Effect<A, E | RpcClientError.RpcClientError>) => call(true, send)
    const write = <A, E>(send: () => Effect.Effect<A, E | RpcClientError.RpcClientError>) => call(false, send)
    const checked = <E, A, E2>(error: E | undefined, effect: () => Effect.Effect<A, E2>): Effect.Effect<A, E | E2> =>
      error === undefined ? effect() : Effect.fail(error)

    const kv: RemoteKv = {
      get: (key) => checked(QueueOptions.userKeyError("key", key), () => read(() => client.KvGet({ key }))),
      put: (key, value) =>
        checked(
          QueueOptions.userKeyError("key", key) ?? QueueOptions.userValueError("value", value),
          () => read(() => client.KvPut({ key, value }))
        ),
      delete: (key) => checked(QueueOptions.userKeyError("key", key), () => read(() => client.KvDelete({ key }))),
      compareAndSet: (key, expected, next) => {
        const bytes = (v: Option.Option<Uint8Array> | Uint8Array) => (Option.isOption(v) ? Option.getOrUndefined(v) : v)
        const [e, n] = [bytes(expected), bytes(next)]
        return checked(
          QueueOptions.userKeyError("key", key) ??
            Rules.optional(e, (v) => QueueOptions.userValueError("expected", v)) ??
            Rules.optional(n, (v) => QueueOptions.userValueError("next", v)),
          () =>
            write(() =>
              client.KvCompareAndSet({ key, ...(e === undefined ? {} : { expected: e }), ...(n === undefined ? {} : { next: n }) })
            )
        )
      },
      scan: (prefix, scanOptions) =>
        checked(QueueOptions.userScanError(prefix, scanOptions), () => read(() => client.KvScan({ prefix, ...Convert.definedOnly(scanOptions) })))
    }

    const requeueDead = ((target: string, requeueOptions?: { readonly all: true }): Effect.Effect<unknown, unknown> =>
      checked<unknown, unknown, unknown>(
        QueueOptions.requeueDeadError(target, requeueOptions),
        () =>
          requeueOptions === undefined
            ? write(() => client.RequeueDead({ id: target }))
            : write(() => client.RequeueAllDead({ queue: target }))
      )) as RemoteService["requeueDead"]

    const service: RemoteService = {
      get: (id) => read(() => client.Get({ id })),
      history: (id) => read(() => client.History({ id })),
      kv,
      events: Stream.unwrap(read(() => Effect.succeed(client.Events()))).pipe(
        Stream.catchIf(
          (e): e is RpcClientError.RpcClientError => (e as { _tag?: unknown })?._tag === "RpcClientError",
          (e) => Stream.fail(new WriterUnavailable({ url: label(), reason: "Dropped", attempts: 1, detail: describe(e) }))
        )
      ) as Stream.Stream<Queue.JobEvent, RemoteError>,
      stats: (queue) => read(() => client.Stats({ queue })),
      cancel: (id) => write(() => client.Cancel({ id })),
      awaitCompletion: (id, awaitOptions) =>
        checked(QueueOptions.awaitCompletionError(awaitOptions), () => {
          const timeout = awaitOptions?.timeout
          const millis = timeout === undefined ? Infinity : Duration.toMillis(timeout)
          return read(() => client.AwaitCompletion({ id, ...(millis === Infinity ? {} : { timeoutMillis: millis }) }))
        }),
      list: (queue, state, listOptions) =>
        checked(QueueOptions.listError(queue, state, listOptions), () => read(() => client.List({ queue, state, ...Convert.definedOnly(listOptions) }))),
      queues: () => read(() => client.Queues()),
      deadJobs: (queue, deadOptions) =>
        checked(QueueOptions.deadJobsError(queue, deadOptions), () => read(() => client.DeadJobs({ queue, ...Convert.definedOnly(deadOptions) }))),
      requeueDead,
      purgeDead: (queue) => write(() => client.PurgeDead({ queue })),
      wake: (id) => write(() => client.Wake({ id })),
      pause: (queue) => read(() => client.Pause({ queue })),
      resume: (queue) => read(() => client.Resume({ queue })),
      unschedule: (key) => write(() => client.Unschedule({ key })),
      schedules: () => read(() => client.Schedules())
    }
    const random = yield* Random.Random
    const core = remoteCore(client, read, write)
    // the client encodes up to the default limit; the writer checks its own limit again
    const codecs = Codecs.make(defaultMaxPayload)
    const reads = { getRecord: service.get, awaitEncoded: service.awaitCompletion, listEncoded: service.list }
    const codec = Codec.make(core, codecs, reads, () => random.nextDoubleUnsafe())
    // spans and timings on every operation, as a queue of this process has them
    return yield* Instrument.instrumented({ ...service, ...codec })
  })

type Client = RpcClient.FromGroup<typeof QueueRpcs, RpcClientError.RpcClientError>
type Send = <A, E>(send: () => Effect.Effect<A, E | RpcClientError.RpcClientError>) => Effect.Effect<A, Exclude<E, RpcClientError.RpcClientError> | WriterUnavailable>

/** One operation of a batch (see `Protocol.Batch`): its definition's settings and the rest of its item. */
interface BatchedCall<I, A, E> extends Request.Request<A, E | RemoteError> {
  readonly settings: JobSettings
  readonly item: I
}

// Bounds on a batch, so that one request stays a reasonable message: a call whose bytes reach
// the bound goes alone (a payload may be tens of MiB; the server takes messages up to 100 MiB).
const maxBatch = 256
const maxBatchBytes = 4 * 1024 * 1024

/**
 * An operation sent in batches: the calls made in the same moment, from any fibers, go in one
 * request (`RequestResolver` collects them until the callers yield), each with its outcome.
 * When the request fails (`WriterUnavailable`, `Unauthorized`), every call of the batch fails with it.
 */
const batched = <I extends { readonly settings: number }, A, E>(
  send: (batch: { readonly settings: ReadonlyArray<JobSettings>; readonly items: ReadonlyArray<I> }) => Effect.Effect<
    ReadonlyArray<{ readonly _tag: "Ok"; readonly value: A } | { readonly _tag: "Failed"; readonly error: E }>,
    RemoteError
  >,
  /** The bytes an item carries (payloads, results). */
  sizeOf: (item: Omit<I, "settings">) => number
) => {
  type Call = BatchedCall<Omit<I, "settings">, A, E>
  const bytesOf = (entries: ReadonlySet<Request.Entry<Call>>) => {
    let bytes = 0
    for (const entry of entries) bytes += sizeOf(entry.request.item)
    return bytes
  }
  const resolver = RequestResolver.makeWith<Call>({
    batchKey: () => undefined,
    delay: Effect.yieldNow,
    collectWhile: (entries) => entries.size < maxBatch && bytesOf(entries) < maxBatchBytes,
    runAll: (entries) => {
      // each definition's settings once: the items name them by index
      const settings: Array<JobSettings> = []
      const indexes = new Map<JobSettings, number>()
      const items = entries.map(({ request }) => {
        let index = indexes.get(request.settings)
        if (index === undefined) {
          index = settings.push(request.settings) - 1
          indexes.set(request.settings, index)
        }
        return { ...request.item, settings: index } as unknown as I
      })
      return Effect.map(send({ settings, items }), (outcomes) => {
        entries.forEach((entry, i) => {
          const outcome = outcomes[i]
          entry.completeUnsafe(
            outcome === undefined
              ? Exit.die(new Error(`the writer answered ${outcomes.length} outcomes for a batch of ${entries.length}`))
              : outcome._tag === "Ok"
              ? Exit.succeed(outcome.value)
              : Exit.fail(outcome.error)
          )
        })
      })
    }
  })
  const call = Request.of<Call>()
  return (settings: JobSettings, item: Omit<I, "settings">): Effect.Effect<A, E | RemoteError> =>
    Effect.request(call({ settings, item }), resolver)
}

/**
 * The writer's queue core over the connection (see `src/queue/core.ts`): the client's codec
 * encodes and decodes, the writer stores. A claim, an enqueue and a settlement the connection
 * drops under are not sent again (`WriterUnavailable`, `"Dropped"`): the writer may have applied
 * them (a claim taken so is requeued when its lease expires); a lease renewal is.
 */
const remoteCore = (client: Client, read: Send, write: Send): Core.Core => {
  const refOf = (claim: { readonly record: JobRecord; readonly token: string }) => ({ id: claim.record.id, token: claim.token })
  const effectsOf = (effects: Effects.Encoded | undefined) => (effects === undefined ? {} : { effects: Convert.toWireEffects(effects) })
  const enqueue = batched((batch: typeof Protocol.EnqueueBatch.Type) => write(() => client.Enqueue(batch)), (item) => item.payload.length)
  const ack = batched(
    (batch: typeof Protocol.AckBatch.Type) => write(() => client.Ack(batch)),
    (item) => (item.result?.length ?? 0) + (item.effects?.enqueue.reduce((sum, followUp) => sum + followUp.payload.length, 0) ?? 0)
  )
  return {
    enqueue: (settings, payload, options) => enqueue(settings, { payload, options: Convert.toWireOptions(options) }),
    enqueueBatch: (settings, payloads) => write(() => client.EnqueueBatch({ settings, payloads })),
    claim: (queue, max, leaseMillis, waitMillis, until) => {
      const claim = Effect.map(
        write(() => client.Claim({ queue, max, leaseMillis, ...(waitMillis === Infinity ? {} : { waitMillis }) })),
        (held) => held.map(Convert.fromWireHeld)
      )
      // `until` interrupts the request: jobs the writer took meanwhile come back when their leases expire
      return until === undefined ? claim : Effect.raceFirst(claim, Effect.as(until, []))
    },
    ack: (claim, settings, result, effects) =>
      ack(settings, { claim: refOf(claim), ...(result === undefined ? {} : { result }), ...effectsOf(effects) }),
    nack: (claim, error, delayMillis, effects) => write(() => client.Nack({ claim: refOf(claim), error, delayMillis, ...effectsOf(effects) })),
    deadLetter: (claim, reason, effects) => write(() => client.DeadLetter({ claim: refOf(claim), reason, ...effectsOf(effects) })),
    release: (claim) => write(() => client.Release({ claim: refOf(claim) })),
    discard: (claim) => write(() => client.Discard({ claim: refOf(claim) })),
    extendLease: (claim, millis) => read(() => client.ExtendLease({ claim: refOf(claim), millis })),
    schedule: (settings, payload, { priority, ...options }) =>
      write(() =>
        client.Schedule({
          settings,
          payload,
          options: { ...Convert.definedOnly(options), ...(priority === undefined ? {} : { priority: Job.priorityValue(priority) }) }
        })
      )
  }
}

/**
 * The remote queue (`Remote`) of the writer at `url`, connected for the layer's life.
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { QueueClient } from "bucketq"
 *
 * const program = Effect.gen(function*() {
 *   const queue = yield* QueueClient.Remote
 *   return yield* queue.stats("emails")
 * }).pipe(Effect.provide(QueueClient.layer({ url: "ws://127.0.0.1:7450/rpc", token: Config.Redacted("BUCKETQ_TOKEN") })))
 * ```
 *
 * @category layers
 * @since 0.3.0
 */
export const layer = (options: Options): Layer.Layer<JobQueue | Remote, InvalidOption | Config.ConfigError> =>
  Layer.effectContext(Effect.map(make(options), contextOf))

/** The context a client provides: its queue as `JobQueue`, and as `Remote`. */
const contextOf = (queue: Service) => Context.make(JobQueue, queue).pipe(Context.add(Remote, queue))

/**
 * The queue of the writer of the store named by `BUCKETQ_URL` (see `ObjectStore.layerConfig`),
 * wherever it serves: see `makeDiscover`.
 *
 * @example
 * ```ts
 * import { Config, Layer } from "effect"
 * import { QueueClient, Worker } from "bucketq"
 *
 * // Email: a Job.define(...) definition
 * // Worker.layer(Email, handler).pipe(Layer.provide(QueueClient.layerDiscover({ token: Config.Redacted("BUCKETQ_TOKEN") })))
 * ```
 *
 * @category layers
 * @since 0.3.0
 */
export const layerDiscover = (options: DiscoverOptions) =>
  Layer.effectContext(Effect.map(makeDiscover(options), contextOf)).pipe(Layer.provide(ObjectStore.layerConfig))


/**
 * Options of `makeSharded` and `layerSharded`; one that breaks its rule fails with
 * `InvalidOption` (`InvalidQueueName` for a bad queue name) before anything connects.
 *
 * @category models
 * @since 0.3.0
 */
export interface ShardedOptions {
  /** The shards by name: each a prefix of its own with its own writer, reached as `layer` reaches one. */
  readonly shards: Readonly<Record<string, Options>>
  /** The shard of every queue not in `queues`, and of the user KV (`kv`). */
  readonly home: string
  /** Queues that live elsewhere than `home`: queue name to shard name. */
  readonly queues?: Readonly<Record<string, string>> | undefined
}

const shardedError = (options: ShardedOptions): InvalidOption | InvalidQueueName | undefined => {
  const shape = Rules.record("options", options) ?? Rules.record("shards", options.shards)
  if (shape !== undefined) return shape
  const names = Object.keys(options.shards)
  const isShard = (name: unknown) => typeof name === "string" && Object.hasOwn(options.shards, name)
  /** A shard's bad option, named by where it is (`shards.media.url`). */
  const shardError = (name: string) => {
    const error = optionsError(options.shards[name]!)
    return error && new InvalidOption({ option: `shards.${name}.${error.option}`, value: error.value, reason: error.reason })
  }
  return (names.length > 0 ? undefined : Rules.invalid("shards", options.shards, "must name at least one shard")) ??
    names.reduce<InvalidOption | undefined>((error, name) => error ?? shardError(name), undefined) ??
    (isShard(options.home) ? undefined : Rules.invalid("home", options.home, "must be the name of one of the shards")) ??
    Rules.optional(options.queues, (queues) =>
      Rules.record("queues", queues) ??
        Object.entries(queues).reduce<InvalidOption | InvalidQueueName | undefined>(
          (error, [queue, shard]) =>
            error ?? QueueOptions.queueNameError(queue) ??
              (isShard(shard) ? undefined : Rules.invalid(`queues.${queue}`, shard, "must be the name of one of the shards")),
          undefined
        ))
}

/**
 * Connects to every shard's writer (the connections live in the scope) and returns one queue
 * that sends each operation where its queue lives: a definition's or a queue name's to the
 * queue's shard, a claim's settlements to the shard it came from, the operations that take only
 * a job id to the shard that has the job (asked in turn), `queues`, `schedules` and `events`
 * gathered from all, `kv` the home shard's. Each shard keeps its own guarantees; nothing spans
 * two shards in one commit (a settlement's follow-up enqueues go to the settled job's shard,
 * whatever their definitions' queues).
 *
 * @category constructors
 * @since 0.3.0
 */
export const makeSharded = (options: ShardedOptions) =>
  Effect.gen(function*() {
    yield* Rules.checked(shardedError(options))
    const byName = new Map<string, Service>()
    for (const [name, shard] of Object.entries(options.shards)) byName.set(name, yield* make(shard))
    const home = byName.get(options.home)!
    const routes = new Map(Object.entries(options.queues ?? {}).map(([queue, shard]) => [queue, byName.get(shard)!]))
    const others = [...byName.values()].filter((shard) => shard !== home)
    return Sharded.make({ all: [home, ...others], of: (queue) => routes.get(queue) ?? home })
  })

/**
 * One queue over several writers, each serving a prefix of its own (see `makeSharded`): for the
 * users whose load outgrows one writer. Workers and producers run on it unchanged.
 *
 * @example
 * ```ts
 * import { Config, Layer } from "effect"
 * import { QueueClient, Worker } from "bucketq"
 *
 * const token = Config.Redacted("BUCKETQ_TOKEN")
 * const Queues = QueueClient.layerSharded({
 *   shards: {
 *     main: { url: "ws://10.0.0.1:7450/rpc", token }, // the writer of s3://jobs/main
 *     media: { url: "ws://10.0.0.2:7450/rpc", token } // the writer of s3://jobs/media
 *   },
 *   home: "main",
 *   queues: { thumbnails: "media", transcodes: "media" } // every other queue lives in main
 * })
 * // Worker.layer(Thumbnail, handler).pipe(Layer.provide(Queues))
 * ```
 *
 * @category layers
 * @since 0.3.0
 */
export const layerSharded = (options: ShardedOptions): Layer.Layer<JobQueue | Remote, InvalidOption | InvalidQueueName | Config.ConfigError> =>
  Layer.effectContext(Effect.map(makeSharded(options), contextOf))
