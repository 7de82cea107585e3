/**
 * Serves the `JobQueue` of the writer process to other processes (see `QueueClient`), over Effect
 * RPC on a WebSocket, for as long as the layer lives.
 *
 * **Details**
 *
 * One WebSocket per client carries every call, and the streams (`events`, completion waits)
 * as chunks on it: no request per poll, and a dropped connection is seen at once by both ends.
 * Messages are serialized with Effect's binary schema codec (`RpcSerialization.layerSchemaBinary`:
 * bytes such as payloads cross as bytes, not base64).
 *
 * Every request must carry the server's token (a shared secret, `Bearer <token>` in the
 * `authorization` header of the WebSocket handshake). The `Authorized` middleware compares it in
 * constant time before the handler runs; a request without it, or with another, fails with
 * `Unauthorized` and never reaches the queue. The token is held as a `Redacted` and appears in no
 * log and no error.
 *
 * Every operation of the queue is served: the ones that take no definition as they are, and the
 * ones that carry one (enqueue, claim, settlements, schedule) as the queue's core takes them, a
 * definition's settings and encoded payloads, checked here at the edge (see
 * `src/remote/serveCore.ts`).
 *
 * @since 0.3.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { RpcSerialization, RpcServer } from "effect/rpc"
import { InvalidOption } from "./InvalidOption.ts"
import * as Rules from "./internal/options.ts"
import { JobQueue } from "./JobQueue.ts"
import { Unauthorized } from "./JobQueueError.ts"
import * as Core from "./queue/core.ts"
import { Authorized, maxMessageBytes, QueueRpcs, resolveToken, tokenHeader } from "./remote/protocol.ts"
import * as ServeCore from "./remote/serveCore.ts"

/**
 * Options of `layer`; one that breaks its rule fails the layer with `InvalidOption` before it
 * listens.
 *
 * @category models
 * @since 0.3.0
 */
export interface Options {
  /** The TCP port to listen on: an integer from 0 (any free port: see `QueueServer.url`) to 65535. */
  readonly port: number
  /** The address to bind (default `"127.0.0.1"`, loopback only): a host name or IP address. */
  readonly host?: string | undefined
  /**
   * The URL clients reach the server at, recorded in the writer record for `QueueClient.layerDiscover`
   * (default `ws://<host>:<port>/rpc`; give it when clients reach the server by another name, such
   * as behind a proxy or when binding `0.0.0.0`): a `ws://` or `wss://` URL.
   */
  readonly advertise?: string | undefined
  /**
   * The shared token clients must present: a non-empty string, as a `Redacted` or a `Config` of
   * one (`Config.Redacted("BUCKETQ_TOKEN")`).
   */
  readonly token: Redacted.Redacted<string> | Config.Config<Redacted.Redacted<string>>
}

/**
 * The running server: where clients reach it.
 *
 * @category models
 * @since 0.3.0
 */
export interface Info {
  /** The WebSocket URL to give `QueueClient` (`ws://host:port/rpc`). */
  readonly url: string
  /** The port listened on (the one chosen when `port` was 0). */
  readonly port: number
}

/**
 * The running server of the layer.
 *
 * @category services
 * @since 0.3.0
 */
export class QueueServer extends Context.Service<QueueServer, Info>()("bucketq/QueueServer") {}

/** The path the RPC WebSocket is served at. */
export const path = "/rpc"

const defaultHost = "127.0.0.1"

const optionsError = (options: Options): InvalidOption | undefined =>
  Rules.record("options", options) ??
    Rules.integer("port", options.port, 0, 65535) ??
    Rules.optional(options.host, (host) => Rules.string("host", host, 1, 253)) ??
    Rules.optional(options.advertise, (url) =>
      Rules.string("advertise", url, 1, 1024) ?? (/^wss?:\/\//.test(url) ? undefined : Rules.invalid("advertise", url, "must be a ws:// or wss:// URL"))) ??
    (Redacted.isRedacted(options.token) || Config.isConfig(options.token)
      ? undefined
      : new InvalidOption({ option: "token", value: "<not shown>", reason: "must be a Redacted string or a Config of one" }))

// Hashing both sides gives equal lengths, so the comparison takes the same time whatever the
// presented value is (its length included).
const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/** The middleware that refuses requests without the token, before their handler runs. */
const authorizedLayer = (token: Redacted.Redacted<string>) => {
  const expected = digest(`Bearer ${Redacted.value(token)}`)
  return Layer.succeed(Authorized)((effect, { headers }) => {
    const presented = headers[tokenHeader]
    if (presented === undefined || presented === "") return Effect.fail(new Unauthorized({ reason: "MissingToken" }))
    return timingSafeEqual(digest(presented), expected) ? effect : Effect.fail(new Unauthorized({ reason: "WrongToken" }))
  })
}

/** The handlers: each calls the queue in context with the same arguments a local caller gives. */
const handlersLayer = QueueRpcs.toLayer(Effect.gen(function*() {
  const queue = yield* JobQueue
  const served = Core.servedOf(queue)
  if (served === undefined) {
    return yield* Effect.die(new Error("QueueServer serves the queue of this process (JobQueue.layer), not a QueueClient's"))
  }
  return QueueRpcs.of({
    ...ServeCore.make(served),
    Get: ({ id }) => queue.get(id),
    History: ({ id }) => queue.history(id),
    Stats: ({ queue: name }) => queue.stats(name),
    Queues: () => queue.queues(),
    List: ({ queue: name, state, ...options }) => queue.list(name, state as never, options),
    DeadJobs: ({ queue: name, ...options }) => queue.deadJobs(name, options),
    RequeueDead: ({ id }) => queue.requeueDead(id),
    RequeueAllDead: ({ queue: name }) => queue.requeueDead(name, { all: true }),
    PurgeDead: ({ queue: name }) => queue.purgeDead(name),
    Wake: ({ id }) => queue.wake(id),
    Pause: ({ queue: name }) => queue.pause(name),
    Resume: ({ queue: name }) => queue.resume(name),
    Cancel: ({ id }) => queue.cancel(id),
    AwaitCompletion: ({ id, timeoutMillis }) =>
      queue.awaitCompletion(id, timeoutMillis === undefined ? {} : { timeout: Duration.millis(timeoutMillis) }),
    KvGet: ({ key }) => queue.kv.get(key),
    KvPut: ({ key, value }) => queue.kv.put(key, value),
    KvDelete: ({ key }) => queue.kv.delete(key),
    KvCompareAndSet: ({ expected, key, next }) =>
      queue.kv.compareAndSet(key, Option.fromUndefinedOr(expected), Option.fromUndefinedOr(next)),
    KvScan: ({ prefix, ...options }) => queue.kv.scan(prefix, options),
    Schedules: () => queue.schedules(),
    Unschedule: ({ key }) => queue.unschedule(key),
    Events: () => queue.events
  })
}))

/**
 * Serves the `JobQueue` in context on `ws://host:port/rpc` until the layer's scope closes (then
 * the connections close and clients see `WriterUnavailable`). Provides the server's address
 * (`QueueServer`). Fails with `InvalidOption` for a bad option or an empty token, with the
 * `Config` error of a token that cannot be read, or with the HTTP server's error when it cannot
 * listen (the port is taken).
 *
 * @example
 * ```ts
 * import { Config, Layer } from "effect"
 * import { QueueServer } from "bucketq"
 *
 * // QueueLive: the queue over its store (JobQueue.layer(...) with its KV and store layers)
 * const Writer = QueueServer.layer({ port: 7450, token: Config.Redacted("BUCKETQ_TOKEN") })
 * // Layer.launch(Writer.pipe(Layer.provide(QueueLive)))
 * ```
 *
 * @category layers
 * @since 0.3.0
 */
export const layer = (options: Options) =>
  Layer.unwrap(Effect.gen(function*() {
    yield* Rules.checked(optionsError(options))
    const token = yield* resolveToken(options.token)
    const host = options.host ?? defaultHost
    const rpc = RpcServer.layerHttp({ group: QueueRpcs, path, protocol: "websocket" }).pipe(
      Layer.provide([handlersLayer, authorizedLayer(token), RpcSerialization.layerSchemaBinary({ maxFrameSize: maxMessageBytes })])
    )
    const info = Layer.effect(QueueServer)(Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const address = server.address
      const port = address._tag === "UnixPathAddress" ? options.port : address.port
      const url = options.advertise ?? `ws://${host.includes(":") ? `[${host}]` : host}:${port}${path}`
      // clients that discover the writer (`QueueClient.layerDiscover`) read it in the writer record
      const served = Core.servedOf(yield* JobQueue)
      if (served !== undefined) yield* served.publish(url)
      return { url, port }
    }))
    // The request logger is off: nothing of a request (its headers hold the token) is logged.
    return Layer.mergeAll(HttpRouter.serve(rpc, { disableLogger: true, disableListenLog: true }), info).pipe(
      Layer.provide(NodeHttpServer.layer(createServer, { port: options.port, host }))
    )
  }))
