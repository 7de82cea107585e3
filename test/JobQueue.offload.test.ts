// Payloads over the offload threshold when the store fails: a failed payload write enqueues
// nothing and leaves no object; a failed delete after an ack leaves an orphan, not a failed ack; a
// claim whose payload reads fail leaves every job it took to the reaper.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as ObjectStoreError from "../src/ObjectStoreError.ts"
import { reasonOf } from "./utils/exits.ts"
import { faultyMemory } from "./utils/kv.ts"
import { layerOf } from "./utils/stores.ts"

const Blob = Job.define("blobs", { payload: Schema.Struct({ data: Schema.String }) })
const big = (tag: string) => ({ data: `${tag}:${"x".repeat(200)}` })

const setup = Effect.gen(function*() {
  const { control, raw, store } = yield* faultyMemory({ seed: 5 })
  const context = yield* Layer.build(
    JobQueue.layer({ offloadThreshold: 64 }).pipe(Layer.provide(Kv.layer()), Layer.provide(layerOf(store)))
  )
  const objects = Effect.map(Stream.runCollect(raw.list("payloads/")), (entries) => entries.length)
  return { q: Context.get(context, JobQueue.JobQueue), control, objects }
})

/** Every put under `payloads/` fails (not retried). */
const failPayloadPuts = { put: { errorRate: 1, errorReason: "Unknown" as const, keyPrefix: "payloads/" } }

describe("JobQueue payload offload under store failures", () => {
  it.effect("a claim of several jobs whose payload reads fail: every job it took is requeued by the reaper, none stays claimed", () =>
    Effect.gen(function*() {
      const { control, store } = yield* faultyMemory({ seed: 7 })
      const context = yield* Layer.build(
        JobQueue.layer({ offloadThreshold: 64, reaperInterval: "1 second" }).pipe(
          Layer.provide(Kv.layer()),
          Layer.provide(layerOf(store))
        )
      )
      const q = Context.get(context, JobQueue.JobQueue)
      yield* q.enqueue(Blob, big("a"))
      yield* q.enqueue(Blob, big("b"))
      yield* control.setFaults({ get: { errorRate: 1, errorReason: "Unknown", keyPrefix: "payloads/" } })
      assert.strictEqual(reasonOf(yield* Effect.exit(q.claim(Blob, { max: 2, lease: "10 seconds" }))), "Unknown")
      yield* control.setFaults({})
      yield* TestClock.adjust("30 seconds")
      const stats = yield* q.stats("blobs")
      assert.deepStrictEqual([stats.pending, stats.claimed], [2, 0])
      const claims = yield* q.claim(Blob, { max: 2 })
      assert.deepStrictEqual(claims.map((c) => c.job.payload.data.slice(0, 2)).sort(), ["a:", "b:"])
    }))

  it.effect("a payload object that cannot be written: the enqueue fails, nothing is enqueued", () =>
    Effect.gen(function*() {
      const { control, objects, q } = yield* setup
      yield* control.setFaults(failPayloadPuts)
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Blob, big("a")))), "Unknown") // ObjectStoreError, reason Unknown
      assert.strictEqual(reasonOf(yield* Effect.exit(q.enqueue(Blob, big("b"), { dedupKey: "d" }))), "Unknown") // ObjectStoreError, reason Unknown
      assert.strictEqual((yield* q.stats("blobs")).pending, 0)
      assert.strictEqual(yield* objects, 0)
      // small payloads are not affected
      yield* q.enqueue(Blob, { data: "small" })
      assert.strictEqual((yield* q.stats("blobs")).pending, 1)
    }))

  it.effect("a batch whose third payload object fails: the first two are deleted, nothing is enqueued", () =>
    Effect.gen(function*() {
      const { raw } = yield* faultyMemory({ seed: 6 })
      let payloadPuts = 0
      const thirdFails: ObjectStore.Service = {
        ...raw,
        put: (key, bytes, condition, metadata) =>
          key.startsWith("payloads/") && ++payloadPuts === 3
            ? Effect.fail(ObjectStoreError.make("put", key, "Unknown", { detail: "injected" }))
            : raw.put(key, bytes, condition, metadata)
      }
      const context = yield* Layer.build(
        JobQueue.layer({ offloadThreshold: 64 }).pipe(Layer.provide(Kv.layer()), Layer.provide(Layer.succeed(ObjectStore.ObjectStore, thirdFails)))
      )
      const q = Context.get(context, JobQueue.JobQueue)
      const exit = yield* Effect.exit(q.enqueueBatch(Blob, [big("1"), { data: "small" }, big("2"), big("3")]))
      assert.strictEqual(reasonOf(exit), "Unknown") // ObjectStoreError, reason Unknown
      assert.strictEqual(payloadPuts, 3)
      assert.strictEqual((yield* q.stats("blobs")).pending, 0)
      assert.strictEqual((yield* Stream.runCollect(raw.list("payloads/"))).length, 0)
      assert.deepStrictEqual(yield* q.claim(Blob), [])
    }))

  it.effect("an ack whose payload delete fails still settles the job; the object is left over", () =>
    Effect.gen(function*() {
      const { control, objects, q } = yield* setup
      const { id } = yield* q.enqueue(Blob, big("a"))
      const [claim] = yield* q.claim(Blob)
      yield* control.setFaults({ delete: { errorRate: 1, errorReason: "Unknown", keyPrefix: "payloads/" } })
      yield* q.ack(claim!)
      assert.isTrue(Option.isNone(yield* q.get(id)))
      assert.strictEqual(yield* objects, 1)
    }))
})
