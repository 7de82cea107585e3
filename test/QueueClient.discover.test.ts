// Finding the writer through the bucket: a writer's QueueServer records its address in the writer
// record, and a client (QueueClient.makeDiscover) reads it at every (re)connection, so it waits
// for a writer started after it and follows a new writer to its new address. Real writer
// processes (test/fixtures/queueServer.ts) on one directory store; this process is the client.
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Redacted, Schema } from "effect"
import * as Job from "../src/Job.ts"
import * as QueueClient from "../src/QueueClient.ts"
import * as WriterRecord from "../src/WriterRecord.ts"
import { type Child, cleanUp, startChild } from "./utils/child.ts"
import { directoryStore, layerOf, serviceOf } from "./utils/stores.ts"

const token = "s3cret-token-for-discovery"
const Ping = Job.define("ping", { payload: Schema.Number })

const children: Array<Child> = []
const directories: Array<string> = []

afterEach(() => cleanUp(children, directories))

/** A writer process serving the store in `directory` on a free port; resolves with its URL. */
const startWriter = (directory: string) =>
  Effect.promise(async () => {
    const child = startChild("queueServer.ts", [directory, "0", token])
    children.push(child)
    const line = await child.waitForLine((l) => l.startsWith("listening "))
    return { child, url: `ws://127.0.0.1:${line.split(" ")[1]}/rpc` }
  })

/** The directory store over `directory`, with its local log. */
const storeOf = (directory: string) => directoryStore(directory)

/** A client that finds the writer of the store in `directory`, waiting up to about 30 s for one. */
const discover = (directory: string) =>
  Effect.flatMap(storeOf(directory), (store) =>
    QueueClient.makeDiscover({ token: Redacted.make(token), retry: { maxAttempts: 40, base: "100 millis", max: "1 second" } }).pipe(
      Effect.provide(layerOf(store))
    ))

describe("QueueClient.makeDiscover: the writer found through the writer record", () => {
  it.live("the writer's QueueServer records its address; a client started before the writer waits for it", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(path.join(tmpdir(), "bucketq-discover-"))
      directories.push(directory)
      const queue = yield* discover(directory)
      const waiting = yield* Effect.forkChild(queue.enqueue(Ping, 1))
      const writer = yield* startWriter(directory)
      const { created, id } = yield* Fiber.join(waiting)
      assert.isTrue(created)
      const record = Option.getOrThrow(yield* WriterRecord.read(serviceOf(yield* storeOf(directory))))
      assert.deepStrictEqual(record.address, Option.some(writer.url))
      assert.deepStrictEqual(Option.map(yield* queue.get(id), (r) => r.status), Option.some("Pending"))
    }), 60_000)

  it.live("after the writer is killed and another opens the store on another port, the client follows it", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(path.join(tmpdir(), "bucketq-discover-"))
      directories.push(directory)
      const first = yield* startWriter(directory)
      const queue = yield* discover(directory)
      const before = yield* queue.enqueue(Ping, 1)
      first.child.process.kill("SIGKILL")
      yield* Effect.promise(() => first.child.exited)
      const second = yield* startWriter(directory)
      assert.notStrictEqual(second.url, first.url)
      // the next operation reconnects to the address the new writer recorded
      const after = yield* queue.enqueue(Ping, 2)
      assert.deepStrictEqual((yield* queue.stats("ping")).pending, 2)
      assert.deepStrictEqual(
        Option.map(yield* queue.get(before.id), (r) => r.status),
        Option.some("Pending"),
        "what the first writer acknowledged is there"
      )
      assert.isTrue(Option.isSome(yield* queue.get(after.id)))
    }), 60_000)

  it.live("a claim a client holds survives the writer's crash: the new writer keeps it, and the client settles it with the same token", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(path.join(tmpdir(), "bucketq-discover-"))
      directories.push(directory)
      const first = yield* startWriter(directory)
      const queue = yield* discover(directory)
      const { id } = yield* queue.enqueue(Ping, 1)
      const [claim] = yield* queue.claim(Ping, { lease: "1 minute" })
      assert.strictEqual(claim!.job.id, id)
      yield* queue.enqueue(Ping, 2) // a durable commit carries the claim
      first.child.process.kill("SIGKILL")
      yield* Effect.promise(() => first.child.exited)
      yield* startWriter(directory)
      yield* queue.extendLease(claim!, "1 minute")
      yield* queue.ack(claim!)
      assert.isTrue(Option.isNone(yield* queue.get(id)), "acknowledged once, by its holder")
      const stats = yield* queue.stats("ping")
      assert.deepStrictEqual([stats.pending, stats.claimed, stats.done], [1, 0, 1])
    }), 60_000)
})
