// Sharding by prefix: two writer child processes, each on a directory of its own, and this
// process's `QueueClient.layerSharded` sending every operation where its queue lives. Each
// shard's own queue (read back through a plain client) holds only its queues' jobs.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option, Redacted, Schema, Stream } from "effect"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as QueueClient from "../src/QueueClient.ts"
import * as Worker from "../src/Worker.ts"
import { type Child, startChild } from "./utils/child.ts"
import { reasonOf } from "./utils/exits.ts"

const token = Redacted.make("s3cret-token-for-shard-tests")

const Email = Job.define("emails", { payload: Schema.Struct({ to: Schema.String }), keepDone: "1 hour" })
const Thumbnail = Job.define("thumbnails", {
  payload: Schema.Struct({ image: Schema.String }),
  result: Schema.String,
  maxAttempts: 1,
  backoff: Job.Backoff.none()
})

const queueOf = <E>(layer: Layer.Layer<JobQueue.JobQueue, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, JobQueue.JobQueue))

describe("QueueClient.layerSharded: one queue over two writers", () => {
  const directories: Array<string> = []
  const children: Array<Child> = []
  const urls: Array<string> = []

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const directory = mkdtempSync(path.join(tmpdir(), `bucketq-shard-${i}-`))
      const child = startChild("queueServer.ts", [directory, "0", Redacted.value(token)])
      directories.push(directory)
      children.push(child)
    }
    for (const child of children) {
      const line = await child.waitForLine((l) => l.startsWith("listening "))
      urls.push(`ws://127.0.0.1:${line.split(" ")[1]}/rpc`)
    }
  }, 30_000)

  afterAll(async () => {
    for (const child of children) {
      child.process.kill("SIGKILL")
      await child.exited
    }
    for (const directory of directories) rmSync(directory, { recursive: true, force: true })
  })

  const shardedLayer = () =>
    QueueClient.layerSharded({
      shards: { main: { url: urls[0]!, token }, media: { url: urls[1]!, token } },
      home: "main",
      queues: { thumbnails: "media" }
    })

  it.live("each queue's jobs go to its shard's writer, Workers run unchanged, and the reads by id find the shard that has the job", () =>
    Effect.gen(function*() {
      const queue = yield* queueOf(shardedLayer())
      const main = yield* queueOf(QueueClient.layer({ url: urls[0]!, token }))
      const media = yield* queueOf(QueueClient.layer({ url: urls[1]!, token }))

      const email = yield* queue.enqueue(Email, { to: "a@b.c" })
      const thumbs = yield* queue.enqueueBatch(Thumbnail, [{ image: "1.png" }, { image: "2.png" }, { image: "broken" }])
      assert.deepStrictEqual([(yield* main.stats("emails")).pending, (yield* main.stats("thumbnails")).pending], [1, 0])
      assert.deepStrictEqual([(yield* media.stats("emails")).pending, (yield* media.stats("thumbnails")).pending], [0, 3])

      // a Worker on the sharded queue: claims from the media shard, settles there
      const worker = yield* Effect.forkChild(
        Worker.run(Thumbnail, ({ image }) => (image === "broken" ? Effect.fail("cannot read") : Effect.succeed(`small-${image}`)))
          .pipe(Effect.provideService(JobQueue.JobQueue, queue))
      )
      const first = yield* queue.awaitCompletion(Thumbnail, thumbs[0]!, { timeout: "20 seconds" })
      assert.deepStrictEqual(first._tag === "Completed" ? first.result : undefined, Option.some("small-1.png"))
      // awaitCompletion by id alone finds the job's shard
      assert.strictEqual((yield* queue.awaitCompletion(thumbs[1]!, { timeout: "20 seconds" }))._tag, "Completed")
      yield* Effect.sleep("300 millis")
      yield* Fiber.interrupt(worker)

      // by id alone: get, history, requeueDead and cancel reach the shard that has the job
      const dead = Option.getOrThrow(yield* queue.get(thumbs[2]!))
      assert.deepStrictEqual([dead.queue, dead.status], ["thumbnails", "Dead"])
      assert.strictEqual((yield* queue.history(thumbs[2]!)).at(-1)?.outcome, "DeadLettered")
      yield* queue.requeueDead(thumbs[2]!)
      assert.strictEqual((yield* media.stats("thumbnails")).pending, 1)
      assert.strictEqual(yield* queue.cancel(thumbs[2]!), "Removed")
      assert.strictEqual(yield* queue.cancel(email.id), "Removed")
      assert.strictEqual((yield* main.stats("emails")).pending, 0)

      // an id no shard has: each operation's own "not found"
      const unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
      assert.isTrue(Option.isNone(yield* queue.get(unknown)))
      assert.strictEqual(reasonOf(yield* Effect.exit(queue.history(unknown))), "JobNotFound")
      assert.strictEqual(reasonOf(yield* Effect.exit(queue.requeueDead(unknown))), "JobNotFound")
      assert.strictEqual(yield* queue.cancel(unknown), "NotFound")
      assert.strictEqual(yield* queue.wake(unknown), "NotFound")
      assert.strictEqual((yield* queue.awaitCompletion(unknown, { timeout: "1 second" }))._tag, "NotFound")

      // gathered from both: queues (by name) and schedules; pause goes to the queue's shard
      yield* queue.pause("thumbnails")
      const queues = yield* queue.queues()
      assert.deepStrictEqual(queues.map((q) => [q.queue, q.paused]), [["emails", false], ["thumbnails", true]])
      assert.isTrue((yield* media.queues()).some((q) => q.queue === "thumbnails" && q.paused))
      yield* queue.resume("thumbnails")
      yield* queue.schedule(Email, { key: "digest", cron: "0 8 * * *", payload: { to: "all@b.c" } })
      yield* queue.schedule(Thumbnail, { key: "sweep", cron: "0 3 * * *", payload: { image: "*" } })
      assert.deepStrictEqual((yield* queue.schedules()).map((s) => [s.key, s.queue]), [["digest", "emails"], ["sweep", "thumbnails"]])
      assert.deepStrictEqual((yield* media.schedules()).map((s) => s.key), ["sweep"])
      assert.strictEqual(yield* queue.unschedule("sweep"), "Removed")
      assert.strictEqual(yield* queue.unschedule("sweep"), "NotFound")

      // the user KV is the home shard's
      yield* queue.kv.put("greeting", new Uint8Array([1, 2]))
      assert.isTrue(Option.isSome(yield* main.kv.get("greeting")))
      assert.isTrue(Option.isNone(yield* media.kv.get("greeting")))
    }), 60_000)

  it.live("events are merged from every shard", () =>
    Effect.gen(function*() {
      const queue = yield* queueOf(shardedLayer())
      const seen = yield* Effect.forkChild(
        queue.events.pipe(Stream.filter((e) => e._tag === "Enqueued"), Stream.take(2), Stream.runCollect)
      )
      yield* Effect.sleep("300 millis")
      yield* queue.enqueue(Email, { to: "e@b.c" })
      yield* queue.enqueue(Thumbnail, { image: "e.png" })
      const events = yield* Fiber.join(seen)
      assert.deepStrictEqual([...events].map((e) => e.queue).sort(), ["emails", "thumbnails"])
    }), 60_000)

  it.live("nothing commits across shards: follow-ups to another shard's queue and user KV writes off the home shard are InvalidOption, nothing written", () =>
    Effect.gen(function*() {
      const queue = yield* queueOf(shardedLayer())
      const media = yield* queueOf(QueueClient.layer({ url: urls[1]!, token }))
      const before = yield* media.stats("thumbnails")
      const refusedEnqueue = yield* Effect.flip(queue.enqueue(Thumbnail, { image: "k.png" }, { kv: { seen: new Uint8Array(1) } }))
      assert.strictEqual(refusedEnqueue._tag === "InvalidOption" && refusedEnqueue.option, "kv")
      assert.deepStrictEqual(yield* media.stats("thumbnails"), before)

      yield* queue.enqueue(Thumbnail, { image: "c.png" })
      const [claim] = yield* queue.claim(Thumbnail, { max: 1, wait: "5 seconds" })
      const followUpElsewhere = yield* Effect.flip(queue.ack(claim!, { enqueue: [[Email, { to: "x@b.c" }]] }))
      assert.strictEqual(followUpElsewhere._tag === "InvalidOption" && followUpElsewhere.option, "enqueue")
      const kvElsewhere = yield* Effect.flip(queue.nack(claim!, "no", { effects: { kvDelete: ["seen"] } }))
      assert.strictEqual(kvElsewhere._tag === "InvalidOption" && kvElsewhere.option, "kv")
      // the claim is still held and settles once the effects stay in its shard
      yield* queue.ack(claim!, { enqueue: [[Thumbnail, { image: "next.png" }]] })
      assert.strictEqual((yield* media.stats("thumbnails")).pending, before.pending + 1)
      assert.strictEqual((yield* media.stats("emails")).pending, 0)
      // on the home shard, KV effects are fine
      const sent = yield* queue.enqueue(Email, { to: "k@b.c" }, { kv: { "sent/k": new Uint8Array([1]) } })
      assert.isTrue(sent.created)
      // an argument that names no queue is refused by the home shard's own checks, never a defect
      const garbage = yield* Effect.exit(queue.enqueue(null as never, {}))
      assert.include(["InvalidOption", "InvalidQueueName"], reasonOf(garbage))
    }), 60_000)

  it.effect("bad sharding options are InvalidOption (or InvalidQueueName), before anything connects", () =>
    Effect.gen(function*() {
      const url = "ws://127.0.0.1:1/rpc"
      const cases: ReadonlyArray<[QueueClient.ShardedOptions, string]> = [
        [{ shards: {}, home: "main" }, "shards"],
        [{ shards: { main: { url, token } }, home: "other" }, "home"],
        [{ shards: { main: { url: "http://x", token } }, home: "main" }, "shards.main.url"],
        [{ shards: { main: { url, token } }, home: "main", queues: { emails: "nowhere" } }, "queues.emails"],
        [{ shards: { main: { url, token } }, home: "main", queues: { "../etc": "main" } }, "InvalidQueueName"]
      ]
      for (const [options, expected] of cases) {
        const error = yield* Effect.flip(Effect.scoped(QueueClient.makeSharded(options)))
        assert.strictEqual(error._tag === "InvalidOption" ? error.option : error._tag, expected)
      }
    }))
})
