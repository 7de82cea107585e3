// The KV on a real backend (memory, directory, S3), live clock: commits, a transaction, runs and
// compaction, reopen, and fencing by a second writer through the backend's own put-if-absent; and
// that the helpers every suite opens its KVs and queues with hand the directory backend's local
// log on with its store (a store value alone would not, and the suites would not test the log).
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Schema, Scope, Stream } from "effect"
import * as Job from "../../src/Job.ts"
import * as Kv from "../../src/Kv.ts"
import { LocalLog } from "../../src/ObjectStore.ts"
import { type Backend, contextOf, queueOver, serviceOf, type StoreContext } from "../utils/stores.ts"
import { bytes, reasonOf, text } from "../utils/exits.ts"
import { openKv } from "../utils/kv.ts"
import { openQueueAndKv } from "../utils/queue.ts"

const Task = Job.define("tasks", { payload: Schema.Struct({ n: Schema.Number }) })

/** The records in the store's local log (none without one), and the sizes of its `wal/` objects. */
const walOf = (store: StoreContext) =>
  Effect.gen(function*() {
    let records = 0
    const log = Context.getOption(store, LocalLog)
    if (Option.isSome(log)) {
      for (const epoch of yield* log.value.epochs) {
        for (const part of yield* log.value.read(epoch)) records += part.records.length
      }
    }
    const objects = yield* Stream.runCollect(serviceOf(store).list("wal/"))
    return { records, segmentObjects: objects.filter((o) => o.size > 0).length }
  })

export const kvOnBackend = (backend: Backend) =>
  describe(`Kv on ${backend.name}`, () => {
    it.live("commits, a transaction, runs and compaction; reopen recovers; a second writer fences the first", () =>
      Effect.gen(function*() {
        const store = yield* Layer.build(backend.layer())
        const options: Kv.Options = { runFlushSegments: 3, maxRuns: 3, gcMinAge: 0, keepManifests: 2 }
        const a = yield* openKv(store, options)
        yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
          a.kv.write([{ _tag: "Put", key: bytes(`k/${i % 10}`), value: bytes(`${i}`) }]), { concurrency: 4, discard: true })
        yield* a.kv.transaction((tx) =>
          Effect.gen(function*() {
            const v = Option.getOrThrow(yield* tx.get(bytes("k/0")))
            yield* tx.put(bytes("copy"), v)
            yield* tx.delete(bytes("k/9"))
          }), { isolation: "serializable" })
        yield* a.kv.write([{ _tag: "Put", key: bytes("tail"), value: bytes("x") }], { durable: false })
        yield* a.kv.flush
        const expected = (yield* a.kv.scan({ prefix: new Uint8Array(0) })).map((e) => `${text(e.key)}=${text(e.value)}`)
        assert.strictEqual(expected.length, 11)
        const b = yield* openKv(store, options)
        const recovered = (yield* b.kv.scan({ prefix: new Uint8Array(0) })).map((e) => `${text(e.key)}=${text(e.value)}`)
        assert.deepStrictEqual(recovered, expected)
        assert.strictEqual(reasonOf(yield* Effect.exit(a.kv.write([{ _tag: "Put", key: bytes("zombie"), value: bytes("x") }]))), "Fenced")
        yield* b.kv.write([{ _tag: "Put", key: bytes("after"), value: bytes("y") }])
        yield* b.close
        const c = yield* openKv(store, options)
        assert.isTrue(Option.isSome(yield* c.kv.get(bytes("after"))))
        assert.isTrue(Option.isNone(yield* c.kv.get(bytes("zombie"))))
        assert.strictEqual((yield* c.kv.stats).epoch, 3)
        yield* c.close
      }), 60_000)

    it.live(`the suites' helpers open KVs and queues with the store's local log: ${backend.localLog ? "WAL in the log, no WAL objects" : "none here, WAL objects"}`, () =>
      Effect.gen(function*() {
        // each opens, writes, and gives back what closes it once the WAL has been looked at
        const opened = [
          (store: StoreContext) => Effect.flatMap(openKv(store), (a) => Effect.as(a.kv.write([{ _tag: "Put", key: bytes("k"), value: bytes("v") }]), a.close)),
          (store: StoreContext) => Effect.flatMap(queueOver(store), (q) => Effect.as(q.enqueue(Task, { n: 1 }), Effect.void)),
          // closed at the end: a queue left open would go on heartbeating its writer record after the test
          (store: StoreContext) =>
            Effect.flatMap(openQueueAndKv(store), ({ q, scope }) => Effect.as(q.enqueue(Task, { n: 1 }), Scope.close(scope, Exit.void)))
        ]
        for (const open of opened) {
          const store = yield* Layer.build(backend.layer())
          assert.strictEqual(Option.isSome(Context.getOption(store, LocalLog)), backend.localLog, "the backend's layer provides a LocalLog")
          const close = yield* open(store)
          const wal = yield* walOf(store)
          yield* close
          if (backend.localLog) {
            assert.isAbove(wal.records, 0, "the WAL went to the local log")
            assert.strictEqual(wal.segmentObjects, 0, "no WAL segment object (only fences)")
            // the store passed bare would lose the log: the helpers refuse it
            assert.throws(() => contextOf(serviceOf(store)), /loses its local log/)
          } else {
            assert.isAbove(wal.segmentObjects, 0, "the WAL went to objects")
          }
        }
      }), 60_000)
  })
