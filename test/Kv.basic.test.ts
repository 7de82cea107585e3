import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import * as Kv from "../src/Kv.ts"
import { ObjectStore } from "../src/ObjectStore.ts"
import * as ObjectStoreModule from "../src/ObjectStore.ts"
import { bytes, text } from "./utils/exits.ts"
import { layerOf } from "./utils/stores.ts"

const openKv = (store: ObjectStoreModule.Service, options?: Kv.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const kv = yield* Layer.buildWithScope(Kv.layer(options).pipe(Layer.provide(layerOf(store))), scope)
    return { kv: kv.pipe((c) => c) as unknown as never, scope, service: (yield* Effect.provide(Effect.map(Kv.Kv, (k) => k), Layer.succeedContext(kv))) }
  })

describe("Kv basics", () => {
  it.effect("write, get, scan; reopen recovers", () =>
    Effect.gen(function*() {
      const store = yield* Effect.provide(Effect.map(ObjectStore, (s) => s), ObjectStoreModule.layerMemory())
      const a = yield* openKv(store)
      const kv = a.service
      yield* kv.write([{ _tag: "Put", key: bytes("a"), value: bytes("1") }, { _tag: "Put", key: bytes("b"), value: bytes("2") }])
      yield* kv.write([{ _tag: "Delete", key: bytes("a") }, { _tag: "Put", key: bytes("c"), value: bytes("3") }])
      assert.isTrue(Option.isNone(yield* kv.get(bytes("a"))))
      assert.deepStrictEqual((yield* kv.scan({ prefix: bytes("") })).map((e) => text(e.key)), ["b", "c"])
      const n = yield* kv.transaction((tx) => Effect.gen(function*() {
        const v = yield* tx.get(bytes("b"))
        yield* tx.put(bytes("d"), bytes("4"))
        return Option.map(v, text)
      }))
      assert.deepStrictEqual(n, Option.some("2"))
      yield* Scope.close(a.scope, Exit.void)
      const b = yield* openKv(store)
      assert.deepStrictEqual((yield* b.service.scan({ prefix: bytes("") })).map((e) => `${text(e.key)}=${text(e.value)}`), ["b=2", "c=3", "d=4"])
      assert.strictEqual((yield* b.service.stats).epoch, 2)
      const exit = yield* Effect.exit(a.service.write([{ _tag: "Put", key: bytes("x"), value: bytes("y") }]))
      assert.isTrue(Exit.isFailure(exit))
    }))
})
