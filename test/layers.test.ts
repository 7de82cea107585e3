// The ready-made layers: QueueTest under TestClock, QueueLive (and QueueLive.standby) from the environment.
import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Layer, Option, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Job, JobQueue, Kv, ObjectStore, QueueLive, QueueTest } from "../src/index.ts"
import { tempDirectory } from "./utils/stores.ts"

const Ping = Job.define("ping", { payload: Schema.Struct({ n: Schema.Number }) })

const roundTrip = Effect.gen(function*() {
  const queue = yield* JobQueue.JobQueue
  const { id } = yield* queue.enqueue(Ping, { n: 1 }, { delay: "2 seconds" })
  return { queue, id }
})

describe("layers", () => {
  it.effect("JobQueue.layer over a copy of the KV service (not the one Kv.layer made) fails with a defect naming why", () =>
    Effect.gen(function*() {
      const copied = Layer.effect(Kv.Kv, Effect.map(Kv.make(), (kv) => ({ ...kv })))
      const exit = yield* Effect.exit(Layer.build(JobQueue.layer().pipe(Layer.provide(copied), Layer.provide(ObjectStore.layerMemory()))))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(Cause.pretty(exit.cause), "not made by Kv.make or Kv.layer")
    }))

  it.effect("QueueTest: a delayed job becomes claimable as TestClock moves", () =>
    Effect.gen(function*() {
      const { id, queue } = yield* roundTrip
      assert.deepStrictEqual(yield* queue.claim(Ping), [])
      yield* TestClock.adjust("2200 millis")
      const [claim] = yield* queue.claim(Ping)
      assert.strictEqual(claim?.job.id, id)
      yield* queue.ack(claim!)
    }).pipe(Effect.provide(QueueTest)))

  it.live("QueueLive: BUCKETQ_URL=file:<dir> keeps jobs across a restart", () =>
    Effect.gen(function*() {
      const dir = yield* tempDirectory
      const live = QueueLive.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ BUCKETQ_URL: `file:${dir}` }))))
      const { id } = yield* Effect.provide(roundTrip, live)
      const record = yield* Effect.provide(Effect.flatMap(JobQueue.JobQueue, (q) => q.get(id)), live)
      assert.strictEqual(Option.getOrThrow(record).status, "Scheduled")
    }))

  it.live("QueueLive.standby: takes over the store of a writer that closed, once its heartbeat has stopped for takeoverAfter", () =>
    Effect.gen(function*() {
      const dir = yield* tempDirectory
      const env = Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ BUCKETQ_URL: `file:${dir}` })))
      const { id } = yield* Effect.provide(roundTrip, QueueLive.pipe(env))
      const started = Date.now()
      const standby = QueueLive.standby({ takeoverAfter: "1 second" }).pipe(env)
      const record = yield* Effect.provide(Effect.flatMap(JobQueue.JobQueue, (q) => q.get(id)), standby)
      assert.strictEqual(Option.getOrThrow(record).status, "Scheduled")
      assert.isAtLeast(Date.now() - started, 900, "it waited for the heartbeat to stop")
    }))
})
