// The read-only open (Kv.makeReadOnly, JobQueue.makeReadOnly) on a real backend: it sees every
// acknowledged commit, writes nothing (the store's objects are byte for byte what they were), and
// never fences a writer, neither one running across it nor one opening in the middle of it.
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Option, Schema, Stream } from "effect"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import { ObjectStore, type Service as Store } from "../../src/ObjectStore.ts"
import { bytes, reasonOf, text } from "../utils/exits.ts"
import { openKv } from "../utils/kv.ts"
import { type AnyStore, type Backend, layerOf, queueOver, serviceOf } from "../utils/stores.ts"

const Task = Job.define("tasks", { payload: Schema.Struct({ n: Schema.Number }) })

/** Every object of the store with its bytes, in key order. */
export const objectsOf = (store: AnyStore) =>
  Effect.gen(function*() {
    const entries = yield* Stream.runCollect(serviceOf(store).list(""))
    return yield* Effect.forEach(entries, (entry) =>
      Effect.map(serviceOf(store).get(entry.key), (object) => `${entry.key} ${Buffer.from(object.bytes).toString("base64")}`))
  })

/** The read-only KV over `store`, in the current scope. */
const readOnly = (store: AnyStore) => Effect.provide(Kv.makeReadOnly, layerOf(store))

const everything = (kv: Kv.Service) =>
  Effect.map(kv.scan({ prefix: new Uint8Array(0) }), (entries) => entries.map((e) => `${text(e.key)}=${text(e.value)}`))

const put = (kv: Kv.Service, key: string, value: string) => kv.write([{ _tag: "Put", key: bytes(key), value: bytes(value) }])

export const readOnlySuite = (backend: Backend) =>
  describe(`read-only open on ${backend.name}`, () => {
    it.live("a read-only open sees every acknowledged commit, writes nothing, and the running writer goes on unfenced", () =>
      Effect.gen(function*() {
        const store = yield* Layer.build(backend.layer())
        // runs from a first writer, WAL (or local log) from a second one that keeps running
        const first = yield* openKv(store, { runFlushSegments: 4 })
        for (let i = 0; i < 11; i++) yield* put(first.kv, `k/${i % 5}`, `${i}`)
        yield* first.close
        const writer = yield* openKv(store)
        yield* put(writer.kv, "k/1", "11")
        yield* writer.kv.write([{ _tag: "Delete", key: bytes("k/4") }])
        const before = yield* objectsOf(store)
        const kv = yield* readOnly(store)
        assert.deepStrictEqual(yield* everything(kv), yield* everything(writer.kv))
        assert.deepStrictEqual(Option.map(yield* kv.get(bytes("k/1")), text), Option.some("11"))
        assert.strictEqual((yield* kv.stats).epoch, (yield* writer.kv.stats).epoch)
        assert.strictEqual((yield* kv.stats).lastSeq, 13)
        assert.deepStrictEqual(yield* objectsOf(store), before)
        assert.strictEqual(reasonOf(yield* Effect.exit(put(kv, "x", "y"))), "Closed")
        assert.strictEqual(reasonOf(yield* Effect.exit(kv.transaction((tx) => tx.put(bytes("x"), bytes("y"))))), "Closed")
        // the writer was not fenced: it commits, and a later read-only open sees that too
        yield* put(writer.kv, "after", "1")
        assert.isTrue(Option.isNone(yield* writer.kv.failure))
        assert.deepStrictEqual(Option.map(yield* (yield* readOnly(store)).get(bytes("after")), text), Option.some("1"))
        yield* writer.close
      }), 60_000)

    it.live("a writer that opens and commits while a read-only open is under way is never fenced by it", () =>
      Effect.gen(function*() {
        const store = yield* Layer.build(backend.layer())
        const first = yield* openKv(store, { runFlushSegments: 3 })
        for (let i = 0; i < 8; i++) yield* put(first.kv, `k/${i}`, `${i}`)
        yield* first.close
        // the read-only open stops at its first read of a run or WAL object until the writer has committed
        const reached = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const inner = serviceOf(store)
        const gatedStore: Store = {
          ...inner,
          get: (key, options) =>
            key.startsWith("runs/") || key.startsWith("wal/")
              ? Effect.andThen(Effect.andThen(Deferred.succeed(reached, undefined), Deferred.await(release)), inner.get(key, options))
              : inner.get(key, options)
        }
        // the gated store in place of the store, beside the same local log (if any)
        const gated = Context.add(store, ObjectStore, gatedStore)
        const loading = yield* Effect.forkChild(readOnly(gated))
        yield* Deferred.await(reached)
        const second = yield* openKv(store)
        yield* put(second.kv, "during", "1")
        yield* Deferred.succeed(release, undefined)
        const kv = yield* Fiber.join(loading)
        assert.deepStrictEqual(Option.map(yield* kv.get(bytes("k/7")), text), Option.some("7"))
        yield* put(second.kv, "after", "2")
        assert.isTrue(Option.isNone(yield* second.kv.failure))
        assert.strictEqual((yield* second.kv.stats).epoch, 2)
        yield* second.close
        const last = yield* readOnly(store)
        assert.deepStrictEqual(
          [...(yield* everything(last))].filter((e) => !e.startsWith("k/")),
          ["after=2", "during=1"]
        )
      }), 60_000)

    it.live("an empty store opens read-only as an empty state, creating nothing", () =>
      Effect.gen(function*() {
        const store = yield* Layer.build(backend.layer())
        const kv = yield* readOnly(store)
        assert.deepStrictEqual(yield* everything(kv), [])
        assert.deepStrictEqual(yield* kv.stats, {
          epoch: 0,
          lastSeq: 0,
          durableSeq: 0,
          nextWalId: 0,
          unflushedBytes: 0,
          keys: 0,
          runs: 0,
          runBytes: 0,
          cacheBytes: 0,
          blockReads: 0
        })
        assert.deepStrictEqual(yield* objectsOf(store), [])
      }), 60_000)

    it.live("the read-only queue lists, counts and reads jobs as the writer's queue does", () =>
      Effect.gen(function*() {
        const store = yield* Layer.build(backend.layer())
        const queue = yield* queueOver(store, { writerRecord: false })
        const { id } = yield* queue.enqueue(Task, { n: 1 })
        yield* queue.enqueue(Task, { n: 2 }, { priority: "high" })
        const [claim] = yield* queue.claim(Task, { max: 1 })
        yield* queue.deadLetter(claim!, "bad input")
        yield* queue.pause("tasks")
        const reader = yield* Effect.provide(
          Effect.provideService(JobQueue.makeReadOnly, Kv.Kv, yield* readOnly(store)),
          layerOf(store)
        )
        assert.deepStrictEqual(yield* reader.queues(), yield* queue.queues())
        assert.deepStrictEqual(yield* reader.stats("tasks"), yield* queue.stats("tasks"))
        assert.deepStrictEqual(yield* reader.list("tasks", "Pending"), yield* queue.list("tasks", "Pending"))
        assert.deepStrictEqual(yield* reader.deadJobs("tasks"), yield* queue.deadJobs("tasks"))
        assert.deepStrictEqual(yield* reader.get(id), yield* queue.get(id))
        assert.deepStrictEqual(yield* reader.history(claim!.job.id), yield* queue.history(claim!.job.id))
        assert.strictEqual((yield* reader.history(claim!.job.id))[0]?.outcome, "DeadLettered")
      }), 60_000)
  })
