// What only the S3 backend has: error mapping, aborting on interruption and timeout, credentials
// and config (against the real test server where it matters).
import { createServer, type Server, type Socket } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Fiber, Layer, Redacted } from "effect"
import * as ObjectStore from "../src/ObjectStore.ts"
import { storeError } from "../src/ObjectStore/S3.ts"
import { s3Options } from "./utils/stores.ts"
import { reasonOf } from "./utils/exits.ts"

const sdkError = (name: string, status?: number) =>
  Object.assign(new Error(name), { name, ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }) })


/** A TCP server on 127.0.0.1 that accepts connections, reads requests and never answers. */
const silentServer = Effect.acquireRelease(
  Effect.callback<{ port: number; sockets: Array<Socket>; requests: Array<Socket>; closed: Array<Socket>; server: Server }>((resume) => {
    const sockets: Array<Socket> = []
    const requests: Array<Socket> = []
    const closed: Array<Socket> = []
    const server = createServer((socket) => {
      sockets.push(socket)
      socket.once("data", () => requests.push(socket))
      socket.on("close", () => closed.push(socket))
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resume(Effect.succeed({ port: typeof address === "object" && address ? address.port : 0, sockets, requests, closed, server }))
    })
  }),
  (s) => Effect.sync(() => {
    for (const socket of s.sockets) socket.destroy()
    s.server.close()
  })
)

const store = Effect.map(ObjectStore.ObjectStore, (s) => s)

describe("S3 adapter", () => {
  it("maps HTTP statuses and error names to reasons", () => {
    const cases: Array<[unknown, string]> = [
      [sdkError("PreconditionFailed", 412), "PreconditionFailed"],
      [sdkError("NoSuchKey", 404), "NotFound"],
      [sdkError("NotFound", 404), "NotFound"],
      [sdkError("NoSuchBucket", 404), "Unknown"],
      [sdkError("ConditionalRequestConflict", 409), "Conflict"],
      [sdkError("SlowDown", 503), "Throttled"],
      [sdkError("TooManyRequests", 429), "Throttled"],
      [sdkError("InternalError", 500), "Unavailable"],
      [sdkError("BadGateway", 502), "Unavailable"],
      [sdkError("AccessDenied", 403), "Unknown"],
      [sdkError("InvalidRequest", 400), "Unknown"],
      [Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), "Unavailable"],
      [sdkError("TimeoutError"), "Unavailable"]
    ]
    for (const [cause, reason] of cases) {
      const error = storeError("put", "k", cause)
      assert.strictEqual(error.reason._tag, reason, String(cause))
      assert.deepStrictEqual([error.operation, error.key], ["put", "k"])
    }
  })

  it.live("interruption aborts the request: the connection is closed", () =>
    Effect.gen(function*() {
      const server = yield* silentServer
      const s = yield* Effect.provide(store, ObjectStore.layerS3({ bucket: "b", endpoint: `http://127.0.0.1:${server.port}`, forcePathStyle: true, retry: false, credentials: { accessKeyId: "a", secretAccessKey: Redacted.make("s") } }))
      const fiber = yield* Effect.forkChild(s.get("k"))
      while (server.requests.length === 0) yield* Effect.sleep("5 millis") // the request is in flight
      yield* Fiber.interrupt(fiber)
      for (let i = 0; i < 200 && server.closed.length === 0; i++) yield* Effect.sleep("5 millis")
      assert.strictEqual(server.closed.length, 1)
    }))

  it.live("a request that outlives requestTimeout fails Unavailable and is aborted", () =>
    Effect.gen(function*() {
      const server = yield* silentServer
      const s = yield* Effect.provide(store, ObjectStore.layerS3({ bucket: "b", endpoint: `http://127.0.0.1:${server.port}`, forcePathStyle: true, retry: false, requestTimeout: "200 millis", credentials: { accessKeyId: "a", secretAccessKey: Redacted.make("s") } }))
      assert.strictEqual(reasonOf(yield* Effect.exit(s.put("k", new Uint8Array(1)))), "Unavailable")
      for (let i = 0; i < 200 && server.closed.length === 0; i++) yield* Effect.sleep("5 millis")
      assert.strictEqual(server.closed.length, 1)
    }))

  it.live("a closed port is Unavailable", () =>
    Effect.gen(function*() {
      const s = yield* Effect.provide(store, ObjectStore.layerS3({ bucket: "b", endpoint: "http://127.0.0.1:1", forcePathStyle: true, retry: false, credentials: { accessKeyId: "a", secretAccessKey: Redacted.make("s") } }))
      assert.strictEqual(reasonOf(yield* Effect.exit(s.head("k"))), "Unavailable")
    }))

  it.live("wrong credentials and a missing bucket are Unknown, and not retried", () =>
    Effect.gen(function*() {
      const good = s3Options("adapter/")
      const wrong = yield* Effect.provide(store, ObjectStore.layerS3({ ...good, credentials: { accessKeyId: "nobody", secretAccessKey: Redacted.make("nothing") } }))
      const start = Date.now()
      assert.strictEqual(reasonOf(yield* Effect.exit(wrong.put("k", new Uint8Array(1)))), "Unknown")
      const missing = yield* Effect.provide(store, ObjectStore.layerS3({ ...good, bucket: "no-such-bucket-here" }))
      assert.strictEqual(reasonOf(yield* Effect.exit(missing.get("k"))), "Unknown")
      assert.isBelow(Date.now() - start, 2_000) // no backoff: 6 attempts would take over 1.5 s
    }))

  it.live("layerS3Config reads options from Config, the secret as Redacted", () =>
    Effect.gen(function*() {
      const o = s3Options(`config-${process.pid}/`)
      const layer = ObjectStore.layerS3Config({
        bucket: Config.String("BUCKET"),
        prefix: Config.String("PREFIX"),
        endpoint: Config.String("ENDPOINT"),
        forcePathStyle: Config.succeed(true),
        quoteIfMatch: Config.succeed(o.quoteIfMatch),
        credentials: Config.all({ accessKeyId: Config.String("KEY_ID"), secretAccessKey: Config.Redacted("SECRET") })
      }).pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
        BUCKET: o.bucket,
        PREFIX: o.prefix,
        ENDPOINT: o.endpoint,
        KEY_ID: o.credentials?.accessKeyId,
        SECRET: o.credentials === undefined ? undefined : Redacted.value(o.credentials.secretAccessKey)
      }))))
      const s = yield* Effect.provide(store, layer)
      const etag = yield* s.put("via-config", new TextEncoder().encode("ok"), { ifNoneMatch: "*" })
      yield* s.put("via-config", new TextEncoder().encode("ok2"), { ifMatch: etag })
      assert.strictEqual(new TextDecoder().decode((yield* s.get("via-config")).bytes), "ok2")
      assert.strictEqual(String(Redacted.make("x")), "<redacted>")
    }))
})
