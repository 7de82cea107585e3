// Which layers provide the directory backend's LocalLog beside the store: layerFileSystem, and
// layerUrl / layerConfig for a file: URL; not memory:. layerRetry hands on a log it finds in
// context; FaultInjection.layer provides none, so a KV over a fault-injected directory store
// writes WAL objects that the faults reach (the log would bypass them).
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Option, Stream } from "effect"
import * as FaultInjection from "../src/FaultInjection.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { bytes } from "./utils/exits.ts"
import { tempDirectory } from "./utils/stores.ts"

/** Whether `layer`, built, has a LocalLog in its context. */
const hasLog = <E>(layer: Layer.Layer<ObjectStore.ObjectStore, E>) =>
  Effect.map(Layer.build(layer), (context) => Option.isSome(Context.getOption(context, ObjectStore.LocalLog)))

describe("the layers that provide ObjectStore.LocalLog", () => {
  it.live("layerFileSystem, and layerUrl / layerConfig for file: URLs, provide it; memory: does not", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const config = (url: string) =>
        Layer.provide(ObjectStore.layerConfig, ConfigProvider.layer(ConfigProvider.fromUnknown({ BUCKETQ_URL: url })))
      assert.deepStrictEqual(
        [
          yield* hasLog(ObjectStore.layerFileSystem({ directory })),
          yield* hasLog(ObjectStore.layerUrl(`file:${directory}`)),
          yield* hasLog(config(`file:${directory}`)),
          yield* hasLog(ObjectStore.layerUrl("memory:")),
          yield* hasLog(config("memory:")),
          yield* hasLog(ObjectStore.layerMemory())
        ],
        [true, true, true, false, false, false]
      )
    }))

  it.live("layerRetry over a directory store keeps its log; over FaultInjection there is none", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const inner = ObjectStore.layerFileSystem({ directory, retry: false })
      const faulty = FaultInjection.layer({ seed: 1, retry: false }).pipe(Layer.provide(inner))
      assert.deepStrictEqual(
        [
          yield* hasLog(ObjectStore.layerRetry().pipe(Layer.provide(inner))),
          yield* hasLog(faulty),
          yield* hasLog(ObjectStore.layerRetry().pipe(Layer.provide(faulty)))
        ],
        [true, false, false]
      )
    }))

  it.live("a KV over a fault-injected directory store writes WAL objects, which the faults count", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const faulty = FaultInjection.layer({ seed: 1 }).pipe(Layer.provide(ObjectStore.layerFileSystem({ directory, retry: false })))
      const context = yield* Layer.build(Kv.layer().pipe(Layer.provideMerge(faulty)))
      const kv = Context.get(context, Kv.Kv)
      const control = Context.get(context, FaultInjection.FaultInjection)
      yield* control.resetCounters
      yield* kv.write([{ _tag: "Put", key: bytes("k"), value: bytes("v") }])
      assert.isAbove((yield* control.counters).put.requests, 0, "the WAL put went through the faulty store")
      const wal = yield* Stream.runCollect(Context.get(context, ObjectStore.ObjectStore).list("wal/"))
      assert.isTrue(wal.some((entry) => entry.size > 0), "a WAL segment object")
    }))
})
