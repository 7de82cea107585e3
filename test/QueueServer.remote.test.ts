// The queue of a writer process served over Effect RPC (QueueServer) and used from this process
// (QueueClient): a real child process on the directory backend (test/fixtures/queueServer.ts),
// the test as the client, in live time.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { NodeWS } from "@effect/platform-node"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Context, Effect, Fiber, Layer, Option, Redacted, Schedule, Schema, Stream } from "effect"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket"
import { QueueTest } from "../layers/QueueTest.ts"
import { InvalidOption } from "../src/InvalidOption.ts"
import * as Job from "../src/Job.ts"
import * as JobQueueError from "../src/JobQueueError.ts"
import * as KvError from "../src/KvError.ts"
import * as ObjectStoreError from "../src/ObjectStoreError.ts"
import * as QueueServer from "../src/QueueServer.ts"
import * as QueueClient from "../src/QueueClient.ts"
import { QueueRpcs } from "../src/remote/protocol.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { type Child, startChild } from "./utils/child.ts"
import { openQueue } from "./utils/queue.ts"

const token = "s3cret-token-for-tests"
// the writer's definition (test/fixtures/queueServer.ts), for the local queue compared with
const Task = Job.define("tasks", { payload: Schema.Struct({ n: Schema.Number }), keepDone: "1 day" })

interface Writer {
  readonly child: Child
  readonly url: string
  readonly port: number
  /** Sends a command and waits for the line that says it was done. */
  readonly run: (command: string, done: string) => Promise<void>
}

const startWriter = async (directory: string, port = 0): Promise<Writer> => {
  const child = startChild("queueServer.ts", [directory, String(port), token])
  child.process.setMaxListeners(0) // every command waits on "exit"
  const line = await child.waitForLine((l) => l.startsWith("listening "))
  const listening = Number(line.split(" ")[1])
  return {
    child,
    port: listening,
    url: `ws://127.0.0.1:${listening}/rpc`,
    run: async (command, done) => {
      const before = child.lines.filter((l) => l === done).length
      child.process.stdin.write(`${command}\n`)
      await child.waitForLines((l) => l === done || l.startsWith("failed"), before + 1)
      const failed = child.lines.find((l) => l.startsWith("failed"))
      if (failed !== undefined) throw new Error(failed)
    }
  }
}

const connect = (url: string, options?: Partial<QueueClient.Options>) =>
  QueueClient.make({ url, token: Redacted.make(token), ...options })

const memoryStore = Effect.map(Layer.build(ObjectStore.layerMemory()), (context) => Context.get(context, ObjectStore.ObjectStore))

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

describe("QueueServer and QueueClient across processes", () => {
  let directory: string
  let writer: Writer

  beforeAll(async () => {
    directory = mkdtempSync(path.join(tmpdir(), "bucketq-remote-"))
    writer = await startWriter(directory)
  }, 30_000)

  afterAll(async () => {
    writer.child.process.kill("SIGKILL")
    await writer.child.exited
    rmSync(directory, { recursive: true, force: true })
  })

  it.live("every operation without a definition round-trips with the result a local queue gives", () =>
    Effect.gen(function*() {
      const remote = yield* connect(writer.url)
      const local = yield* openQueue(yield* memoryStore)
      yield* promise(() => writer.run("enq a1", "enq a1"))
      yield* promise(() => writer.run("enq a2 3600000", "enq a2"))
      yield* local.enqueue(Task, { n: 1 }, { id: "a1" })

      // get: the record as stored, its payload the bytes a local queue stores
      const got = Option.getOrThrow(yield* remote.get("a1"))
      const mine = Option.getOrThrow(yield* local.get("a1"))
      assert.deepStrictEqual([got.id, got.queue, got.status, got.attempts, got.priority], ["a1", "tasks", "Pending", 0, mine.priority])
      assert.deepStrictEqual(Array.from(got.payload), Array.from(mine.payload))
      assert.isTrue(Option.isNone(yield* remote.get("nope")))
      assert.deepStrictEqual(yield* remote.history("a1"), yield* local.history("a1"))

      // stats, queues, listings
      assert.deepStrictEqual(yield* remote.stats("tasks"), { queue: "tasks", pending: 1, scheduled: 1, claimed: 0, done: 0, dead: 0 })
      assert.deepStrictEqual(yield* remote.stats("unused"), yield* local.stats("unused"))
      assert.deepStrictEqual((yield* remote.queues()).map((q) => [q.queue, q.paused, q.pending]), [["tasks", false, 1]])
      const pending = yield* remote.list("tasks", "Pending")
      assert.deepStrictEqual([pending.jobs.map((j) => j.id), Option.isNone(pending.cursor)], [["a1"], true])
      assert.deepStrictEqual(Array.from(pending.jobs[0]!.payload), Array.from(mine.payload))
      const scheduled = yield* remote.list("tasks", "Scheduled", { limit: 10 })
      assert.deepStrictEqual(scheduled.jobs.map((j) => j.id), ["a2"])

      // wake, pause and resume
      assert.strictEqual(yield* remote.wake("a2"), "Woken")
      assert.strictEqual(yield* remote.wake("a2"), "NotScheduled")
      assert.strictEqual(yield* remote.wake("nope"), "NotFound")
      yield* remote.pause("tasks")
      assert.deepStrictEqual((yield* remote.queues()).map((q) => q.paused), [true])
      yield* remote.resume("tasks")
      assert.deepStrictEqual((yield* remote.queues()).map((q) => q.paused), [false])

      // dead jobs: listed, requeued one and all, purged
      yield* promise(() => writer.run("dead", "dead a1"))
      yield* promise(() => writer.run("dead", "dead a2"))
      assert.deepStrictEqual((yield* remote.deadJobs("tasks")).map((j) => [j.id, j.lastError]), [["a1", "boom"], ["a2", "boom"]])
      assert.deepStrictEqual((yield* remote.deadJobs("tasks", { after: "a1", limit: 5 })).map((j) => j.id), ["a2"])
      yield* remote.requeueDead("a1")
      assert.deepStrictEqual((yield* remote.history("a1")).map((a) => a.outcome), ["DeadLettered", "Requeued"])
      assert.strictEqual(yield* remote.requeueDead("tasks", { all: true }), 1)
      yield* promise(() => writer.run("dead", "dead a1"))
      assert.strictEqual(yield* remote.purgeDead("tasks"), 1)
      assert.strictEqual(yield* remote.purgeDead("tasks"), yield* local.purgeDead("tasks"))

      // cancel
      assert.strictEqual(yield* remote.cancel("a2"), "Removed")
      assert.strictEqual(yield* remote.cancel("a2"), yield* local.cancel("a2"))
      assert.deepStrictEqual(yield* remote.stats("tasks"), { queue: "tasks", pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0 })

      // the user KV
      const bytes = new Uint8Array([1, 2, 3])
      assert.isTrue(Option.isNone(yield* remote.kv.get("k/1")))
      yield* remote.kv.put("k/1", bytes)
      yield* remote.kv.put("k/2", new Uint8Array([4]))
      assert.deepStrictEqual(Array.from(Option.getOrThrow(yield* remote.kv.get("k/1"))), [1, 2, 3])
      assert.isFalse(yield* remote.kv.compareAndSet("k/1", Option.none(), new Uint8Array([9])))
      assert.isTrue(yield* remote.kv.compareAndSet("k/1", bytes, new Uint8Array([9])))
      assert.isTrue(yield* remote.kv.compareAndSet("k/3", Option.none(), new Uint8Array([7])))
      assert.isTrue(yield* remote.kv.compareAndSet("k/3", new Uint8Array([7]), Option.none()))
      const scan = yield* remote.kv.scan("k/", { limit: 10 })
      assert.deepStrictEqual(scan.map((e) => [e.key, Array.from(e.value)]), [["k/1", [9]], ["k/2", [4]]])
      assert.deepStrictEqual((yield* remote.kv.scan("k/", { after: "k/1" })).map((e) => e.key), ["k/2"])
      yield* remote.kv.delete("k/2")
      assert.deepStrictEqual((yield* remote.kv.scan("")).map((e) => e.key), ["k/1"])

      // schedules
      yield* promise(() => writer.run("schedule yearly", "scheduled yearly"))
      const schedules = yield* remote.schedules()
      assert.deepStrictEqual(schedules.map((s) => [s.key, s.queue, s.cron, s.timezone, s.missed, Option.isSome(s.nextSlot)]), [
        ["yearly", "tasks", "0 0 1 1 *", "UTC", "latest", true]
      ])
      assert.strictEqual(yield* remote.unschedule("yearly"), "Removed")
      assert.strictEqual(yield* remote.unschedule("yearly"), yield* local.unschedule("yearly"))
    }), 30_000)

  it.live("the queue's errors arrive typed, as a local queue fails with them", () =>
    Effect.gen(function*() {
      const remote = yield* connect(writer.url)
      const local = yield* openQueue(yield* memoryStore)
      yield* promise(() => writer.run("enq e1", "enq e1"))
      // from the writer's queue
      const notFound = yield* Effect.flip(remote.history("nope"))
      assert.deepStrictEqual([notFound._tag, notFound.message], ["JobNotFound", (yield* Effect.flip(local.history("nope"))).message])
      const invalidState = yield* Effect.flip(remote.requeueDead("e1"))
      assert.strictEqual(invalidState._tag, "InvalidState")
      assert.strictEqual(invalidState.message, "job e1 is Pending, not Dead")
      const badQueue = yield* Effect.flip(remote.stats("../x"))
      assert.deepStrictEqual([badQueue._tag, badQueue.message], ["InvalidQueueName", (yield* Effect.flip(local.stats("../x"))).message])
      const badId = yield* Effect.flip(remote.wake("no spaces"))
      assert.deepStrictEqual([badId._tag, badId.message], ["InvalidJobId", (yield* Effect.flip(local.wake("no spaces"))).message])
      const badKey = yield* Effect.flip(remote.unschedule(""))
      assert.deepStrictEqual([badKey._tag, badKey.message], ["InvalidOption", (yield* Effect.flip(local.unschedule(""))).message])
      const tooLarge = yield* Effect.flip(remote.kv.put("big", new Uint8Array(300 * 1024)))
      assert.deepStrictEqual([tooLarge._tag, tooLarge.message], ["ValueTooLarge", (yield* Effect.flip(local.kv.put("big", new Uint8Array(300 * 1024)))).message])
      // checked before sending, with the queue's own rules
      const badState = yield* Effect.flip(remote.list("tasks", "Bogus" as never))
      assert.deepStrictEqual([badState._tag, badState.message], ["InvalidOption", (yield* Effect.flip(local.list("tasks", "Bogus" as never))).message])
      const badLimit = yield* Effect.flip(remote.deadJobs("tasks", { limit: 0 }))
      assert.strictEqual(badLimit.message, (yield* Effect.flip(local.deadJobs("tasks", { limit: 0 }))).message)
      const badTimeout = yield* Effect.flip(remote.awaitCompletion("e1", { timeout: -1 }))
      assert.strictEqual(badTimeout.message, (yield* Effect.flip(local.awaitCompletion("e1", { timeout: -1 }))).message)
      assert.isTrue(Option.isSome(yield* remote.get("e1")))
      assert.strictEqual(yield* remote.cancel("e1"), "Removed") // nothing left pending for the next test
    }), 30_000)

  it.live("awaitCompletion and events stream across the connection", () =>
    Effect.gen(function*() {
      const remote = yield* connect(writer.url)
      const events = yield* remote.events.pipe(
        Stream.filter((e) => e.id.startsWith("w")),
        Stream.take(5),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Effect.sleep("200 millis") // the subscription is on the writer
      yield* promise(() => writer.run("enq w1", "enq w1"))
      const done = yield* Effect.forkChild(remote.awaitCompletion("w1"))
      const timedOut = yield* remote.awaitCompletion("w1", { timeout: "50 millis" })
      assert.strictEqual(timedOut._tag, "TimedOut")
      yield* promise(() => writer.run("ack", "acked w1"))
      const outcome = yield* Fiber.join(done)
      assert.strictEqual(outcome._tag, "Completed")
      if (outcome._tag === "Completed") assert.strictEqual(Option.getOrThrow(outcome.job).status, "Done")
      assert.strictEqual((yield* remote.awaitCompletion("nope"))._tag, "NotFound")

      // a change made through another call: a cancel
      yield* promise(() => writer.run("enq w2", "enq w2"))
      const cancelled = yield* Effect.forkChild(remote.awaitCompletion("w2", { timeout: "10 seconds" }))
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* remote.cancel("w2"), "Removed")
      assert.deepStrictEqual(yield* Fiber.join(cancelled), { _tag: "Completed", job: Option.none() })

      const seen = Array.from(yield* Fiber.join(events)).map((e) => `${e._tag} ${e.id}`)
      assert.deepStrictEqual(seen, ["Enqueued w1", "Claimed w1", "Completed w1", "Enqueued w2", "Cancelled w2"])
    }), 30_000)

  it.live("a request without the right token is refused, typed, and changes nothing", () =>
    Effect.gen(function*() {
      const remote = yield* connect(writer.url)
      yield* remote.kv.put("guarded", new Uint8Array([1]))
      const before = [yield* remote.stats("tasks"), yield* remote.queues()]

      const wrongToken = "not-the-token"
      const wrong = yield* QueueClient.make({ url: writer.url, token: Redacted.make(wrongToken) })
      const refusals = [
        yield* Effect.flip(wrong.kv.put("guarded", new Uint8Array([2]))),
        yield* Effect.flip(wrong.kv.delete("guarded")),
        yield* Effect.flip(wrong.pause("tasks")),
        yield* Effect.flip(wrong.stats("tasks"))
      ]
      for (const error of refusals) {
        assert.deepStrictEqual([error._tag, (error as { reason?: unknown }).reason], ["Unauthorized", "WrongToken"])
        assert.notInclude(`${error.message} ${JSON.stringify(error)}`, wrongToken)
        assert.notInclude(`${error.message} ${JSON.stringify(error)}`, token)
      }
      const wrongEvents = yield* Effect.flip(Stream.runCollect(Stream.take(wrong.events, 1)))
      assert.strictEqual(wrongEvents._tag, "Unauthorized")

      // no token at all: a bare RPC client without the handshake header
      const bare = yield* RpcClient.make(QueueRpcs).pipe(Effect.provide(
        yield* Layer.build(RpcClient.layerProtocolSocket().pipe(Layer.provide([
          Layer.effect(Socket.Socket)(Socket.makeWebSocket(writer.url)).pipe(Layer.provide(NodeWS.layerWebSocketConstructor)),
          RpcSerialization.layerSchemaBinary()
        ])))
      ))
      const missing = yield* Effect.flip(bare.KvDelete({ key: "guarded" }))
      assert.deepStrictEqual([missing._tag, (missing as { reason?: unknown }).reason], ["Unauthorized", "MissingToken"])
      const missingPurge = yield* Effect.flip(bare.PurgeDead({ queue: "tasks" }))
      assert.strictEqual(missingPurge._tag, "Unauthorized")

      assert.deepStrictEqual([yield* remote.stats("tasks"), yield* remote.queues()], before)
      assert.deepStrictEqual(Array.from(Option.getOrThrow(yield* remote.kv.get("guarded"))), [1])
    }), 30_000)

  it.live("a small call's round trip on loopback", () =>
    Effect.gen(function*() {
      const remote = yield* connect(writer.url)
      yield* remote.stats("tasks")
      const n = 200
      const start = performance.now()
      for (let i = 0; i < n; i++) yield* remote.stats("tasks")
      const perCall = (performance.now() - start) / n
      console.log(`QueueClient round trip (stats, loopback): ${perCall.toFixed(3)} ms per call`)
      assert.isBelow(perCall, 50)
    }), 30_000)
})

describe("QueueClient when the writer dies", () => {
  it.live("after kill -9 of the writer, calls fail with WriterUnavailable within the bounded retry; a writer restarted on the same port serves them again", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(path.join(tmpdir(), "bucketq-remote-kill-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const first = yield* promise(() => startWriter(directory))
      const remote = yield* connect(first.url)
      yield* remote.kv.put("before", new Uint8Array([1]))
      yield* promise(() => first.run("enq k1", "enq k1"))
      const watching = yield* Effect.forkChild(Effect.flip(remote.awaitCompletion("k1")))
      const events = yield* Effect.forkChild(Effect.flip(Stream.runDrain(remote.events)))
      yield* Effect.sleep("200 millis")

      first.child.process.kill("SIGKILL")
      yield* promise(() => first.child.exited)
      const started = performance.now()
      const failed = yield* Effect.flip(remote.stats("tasks"))
      const elapsed = performance.now() - started
      console.log(`QueueClient: WriterUnavailable ${elapsed.toFixed(0)} ms after the writer was killed (${failed.message})`)
      assert.strictEqual(failed._tag, "WriterUnavailable")
      if (failed._tag === "WriterUnavailable") assert.deepStrictEqual([failed.reason, failed.attempts], ["Unreachable", 6])
      // 100 + 200 + 400 + 800 + 1000 ms, each jittered by ×[0.8, 1.2], plus the attempts
      assert.isAbove(elapsed, 1500)
      assert.isBelow(elapsed, 5000)
      const dropped = yield* Fiber.join(events)
      assert.deepStrictEqual([dropped._tag, (dropped as { reason?: unknown }).reason], ["WriterUnavailable", "Dropped"])
      assert.strictEqual((yield* Fiber.join(watching))._tag, "WriterUnavailable")
      const cancel = yield* Effect.flip(remote.cancel("k1"))
      assert.strictEqual(cancel._tag, "WriterUnavailable")

      const second = yield* promise(() => startWriter(directory, first.port))
      yield* Effect.addFinalizer(() => Effect.promise(async () => {
        second.child.process.kill("SIGKILL")
        await second.child.exited
      }))
      // the client reconnects by itself: the next calls succeed, on the durable state
      const restarted = performance.now()
      assert.deepStrictEqual(Array.from(Option.getOrThrow(yield* remote.kv.get("before"))), [1])
      console.log(`QueueClient: first call served ${(performance.now() - restarted).toFixed(0)} ms after the restarted writer listened`)
      assert.strictEqual((yield* remote.stats("tasks")).pending, 1)
      assert.strictEqual(yield* remote.cancel("k1"), "Removed")
    }), 40_000)
})

describe("QueueClient when the writer hangs", () => {
  it.live("a writer stopped with its connection open (SIGSTOP) is dropped after the ping timeout: the call fails with WriterUnavailable, and after SIGCONT calls are served again", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(path.join(tmpdir(), "bucketq-remote-hang-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const writer = yield* promise(() => startWriter(directory))
      yield* Effect.addFinalizer(() => Effect.promise(async () => {
        writer.child.process.kill("SIGKILL")
        await writer.child.exited
      }))
      const remote = yield* connect(writer.url, { pingTimeout: "1 second", retry: { maxAttempts: 4 } })
      assert.strictEqual((yield* remote.stats("tasks")).pending, 0)

      writer.child.process.kill("SIGSTOP")
      const started = performance.now()
      // the kernel still takes the request: only the silence tells the writer is gone
      const failed = yield* Effect.flip(remote.stats("tasks"))
      const elapsed = performance.now() - started
      console.log(`QueueClient: WriterUnavailable ${elapsed.toFixed(0)} ms after the writer stopped (${failed.message})`)
      assert.strictEqual(failed._tag, "WriterUnavailable")
      // one timeout of silence, checked at pings a third of it apart
      assert.isAbove(elapsed, 900)
      assert.isBelow(elapsed, 5000)

      writer.child.process.kill("SIGCONT")
      const served = yield* remote.stats("tasks").pipe(
        Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 50 })
      )
      assert.strictEqual(served.pending, 0)
    }), 30_000)

  it.live("the ping timeout is checked: under a second or over an hour is InvalidOption", () =>
    Effect.gen(function*() {
      for (const pingTimeout of ["999 millis", "2 hours", -1, "soon"] as const) {
        const refused = yield* Effect.flip(QueueClient.make({ url: "ws://127.0.0.1:1/rpc", token: Redacted.make(token), pingTimeout: pingTimeout as never }))
        assert.deepStrictEqual([refused._tag, (refused as InvalidOption).option], ["InvalidOption", "pingTimeout"])
      }
    }))
})

describe("QueueServer and QueueClient in one process", () => {
  it.live("every error of the protocol round-trips through the serialization, its tag, fields and message kept", () =>
    Effect.gen(function*() {
      const serialization = Context.get(yield* Layer.build(RpcSerialization.layerSchemaBinary()), RpcSerialization.RpcSerialization)
      const errors = [
        new JobQueueError.JobNotFound({ id: "j" }),
        new JobQueueError.InvalidState({ id: "j", state: "Pending", expected: "Dead" }),
        new JobQueueError.InvalidQueueName({ queue: "../x", reason: "no" }),
        new JobQueueError.InvalidJobId({ id: "a b", reason: "no" }),
        new JobQueueError.PayloadMissing({ id: "j", key: "payloads/j" }),
        new JobQueueError.WriterUnavailable({ url: "ws://h/rpc", reason: "Dropped", attempts: 1, detail: "SocketCloseError" }),
        new JobQueueError.Unauthorized({ reason: "WrongToken" }),
        new InvalidOption({ option: "limit", value: "0", reason: "must be from 1" }),
        new KvError.Fenced({ epoch: 3, detail: "taken over" }),
        new KvError.Closed({ detail: "closed" }),
        new KvError.TransactionConflict({ attempts: 5 }),
        new KvError.ValueTooLarge({ what: "value", size: 300_000, limit: 262_144 }),
        new KvError.Corrupt({ key: "k", detail: "bad" }),
        new ObjectStoreError.ObjectStoreError({
          operation: "get",
          key: "payloads/j",
          reason: new ObjectStoreError.Unavailable(),
          detail: "after 6 attempts",
          cause: new Error("ECONNRESET")
        })
      ] as const
      const all = Schema.Union([
        JobQueueError.JobNotFound, JobQueueError.InvalidState, JobQueueError.InvalidQueueName, JobQueueError.InvalidJobId,
        JobQueueError.PayloadMissing, JobQueueError.WriterUnavailable, JobQueueError.Unauthorized, InvalidOption, KvError.Fenced,
        KvError.Closed, KvError.TransactionConflict, KvError.ValueTooLarge, KvError.Corrupt, ObjectStoreError.ObjectStoreError
      ])
      const codec = serialization.codecFor(all)
      for (const error of errors) {
        const back = Schema.decodeUnknownSync(codec)(Schema.encodeSync(codec)(error))
        assert.strictEqual(back.constructor, error.constructor, error._tag)
        assert.deepStrictEqual([back._tag, back.message], [error._tag, error.message])
      }
      const store = Schema.decodeUnknownSync(codec)(Schema.encodeSync(codec)(errors[13])) as ObjectStoreError.ObjectStoreError
      assert.instanceOf(store.reason, ObjectStoreError.Unavailable)
      assert.include(String((store.cause as { message?: unknown }).message), "ECONNRESET")
    }))

  it.live("the server takes its token from a Config, and both ends refuse bad options with InvalidOption", () =>
    Effect.gen(function*() {
      const config = ConfigProvider.layer(ConfigProvider.fromEnv({ env: { BUCKETQ_TOKEN: token } }))
      const server = Context.get(
        yield* Layer.build(
          QueueServer.layer({ port: 0, token: Config.Redacted("BUCKETQ_TOKEN") }).pipe(Layer.provide([QueueTest, config]))
        ),
        QueueServer.QueueServer
      )
      assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+\/rpc$/)
      const remote = yield* connect(server.url)
      assert.strictEqual((yield* remote.stats("tasks")).pending, 0)

      const refused = <A, E>(layer: Layer.Layer<A, E>) => Effect.flip(Layer.build(layer))
      const bad = [
        yield* refused(QueueServer.layer({ port: 70000, token: Redacted.make(token) }).pipe(Layer.provide(QueueTest))),
        yield* refused(QueueServer.layer({ port: 1.5, token: Redacted.make(token) }).pipe(Layer.provide(QueueTest))),
        yield* refused(QueueServer.layer({ port: 0, host: "", token: Redacted.make(token) }).pipe(Layer.provide(QueueTest))),
        yield* refused(QueueServer.layer({ port: 0, token: Redacted.make("") }).pipe(Layer.provide(QueueTest))),
        yield* refused(QueueServer.layer({ port: 0, token: token as never }).pipe(Layer.provide(QueueTest))),
        yield* Effect.flip(QueueClient.make({ url: "http://127.0.0.1:1/rpc", token: Redacted.make(token) })),
        yield* Effect.flip(QueueClient.make({ url: server.url, token: Redacted.make("") })),
        yield* Effect.flip(QueueClient.make({ url: server.url, token: Redacted.make(token), retry: { maxAttempts: 0 } }))
      ]
      assert.deepStrictEqual(bad.map((e) => [(e as InvalidOption)._tag, (e as InvalidOption).option]), [
        ["InvalidOption", "port"],
        ["InvalidOption", "port"],
        ["InvalidOption", "host"],
        ["InvalidOption", "token"],
        ["InvalidOption", "token"],
        ["InvalidOption", "url"],
        ["InvalidOption", "token"],
        ["InvalidOption", "retry.maxAttempts"]
      ])
      for (const error of bad) assert.notInclude(`${(error as Error).message} ${JSON.stringify(error)}`, token)
      const missing = yield* Effect.flip(Layer.build(QueueServer.layer({ port: 0, token: Config.Redacted("NOT_SET") }).pipe(
        Layer.provide([QueueTest, config])
      )))
      assert.strictEqual((missing as { _tag?: unknown })._tag, "ConfigError")
    }))
})
