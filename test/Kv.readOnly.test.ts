// The read-only open on the directory backend, where the WAL is a local log: it reads a live
// writer's log and a crashed writer's unsealed log without fencing, sealing or syncing anything,
// so every file of the store (the log's parts included) is byte for byte what it was.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option } from "effect"
import * as Kv from "../src/Kv.ts"
import { bytes, text } from "./utils/exits.ts"
import { filesOf } from "./utils/files.ts"
import { openKv } from "./utils/kv.ts"
import { type AnyStore, directoryStore, layerOf } from "./utils/stores.ts"

const directories: Array<string> = []
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true })
})

/** The directory store over `directory`, with its local log. */
const storeIn = (directory: string) => directoryStore(directory)

const newDirectory = () => {
  const directory = mkdtempSync(path.join(tmpdir(), "bucketq-readonly-"))
  directories.push(directory)
  return directory
}

const put = (kv: Kv.Service, key: string, value: string) => kv.write([{ _tag: "Put", key: bytes(key), value: bytes(value) }])
const readOnly = (store: AnyStore) => Effect.provide(Kv.makeReadOnly, layerOf(store))

describe("Kv.makeReadOnly on the directory backend", () => {
  it.live("reads a live writer's local log and leaves every file of the store byte for byte as it was", () =>
    Effect.gen(function*() {
      const directory = newDirectory()
      const store = yield* storeIn(directory)
      const writer = yield* openKv(store)
      for (let i = 0; i < 20; i++) yield* put(writer.kv, `k/${i}`, `v${i}`)
      // the writer appends a confirm frame once idle (20 ms): let it, so that only a read-only write could change a file
      yield* Effect.sleep("200 millis")
      const before = filesOf(directory)
      assert.isTrue(before.some((file) => file.startsWith(path.join("%wal", ""))))
      const kv = yield* readOnly(store)
      assert.strictEqual((yield* kv.scan({ prefix: bytes("k/") })).length, 20)
      assert.deepStrictEqual(filesOf(directory), before)
      yield* put(writer.kv, "after", "1")
      assert.isTrue(Option.isNone(yield* writer.kv.failure))
      yield* writer.close
    }), 60_000)

  it.live("reads a crashed writer's unsealed log without sealing it; the next writer still recovers every commit", () =>
    Effect.gen(function*() {
      const directory = newDirectory()
      const store = yield* storeIn(directory)
      // a writer whose scope is never closed: a crash, its log left unsealed
      const crashed = yield* openKv(store)
      for (let i = 0; i < 10; i++) yield* put(crashed.kv, `k/${i}`, `v${i}`)
      yield* Effect.sleep("200 millis") // its confirm frame, as above
      const before = filesOf(directory)
      assert.isFalse(before.some((file) => file.includes("seal") || file.endsWith("fence")))
      const kv = yield* readOnly(store)
      assert.deepStrictEqual(Option.map(yield* kv.get(bytes("k/9")), text), Option.some("v9"))
      assert.deepStrictEqual(filesOf(directory), before)
      const next = yield* openKv(store)
      assert.strictEqual((yield* next.kv.scan({ prefix: bytes("k/") })).length, 10)
      yield* next.close
    }), 60_000)

  it.live("Kv.layerReadOnly provides the snapshot as the Kv service, refusing writes with Closed", () =>
    Effect.gen(function*() {
      const directory = newDirectory()
      const store = yield* storeIn(directory)
      const writer = yield* openKv(store)
      yield* put(writer.kv, "a", "1")
      yield* writer.close
      const kv = Context.get(yield* Layer.build(Kv.layerReadOnly.pipe(Layer.provide(layerOf(store)))), Kv.Kv)
      assert.deepStrictEqual(Option.map(yield* kv.get(bytes("a")), text), Option.some("1"))
      const refused = yield* Effect.flip(put(kv, "b", "2"))
      assert.strictEqual(refused._tag, "Closed")
      assert.strictEqual(refused.message, "kv closed: the store is open read-only: nothing can be written through it")
    }), 60_000)

  it.live("read-only opens while the writer appends without pause each see a prefix of its commits, never failing", () =>
    Effect.gen(function*() {
      const directory = newDirectory()
      const store = yield* storeIn(directory)
      const writer = yield* openKv(store)
      let acknowledged = 0
      const writing = yield* Effect.forkChild(Effect.forever(Effect.suspend(() =>
        Effect.tap(put(writer.kv, `k/${acknowledged}`, "x".repeat(200)), () => Effect.sync(() => void acknowledged++))
      )))
      let seen = 0
      for (let i = 0; i < 20; i++) {
        const before = acknowledged
        const kv = yield* readOnly(store)
        const keys = (yield* kv.scan({ prefix: bytes("k/") })).length
        // everything acknowledged before the open is seen, and what is seen is a prefix: k/0 .. k/(keys-1)
        assert.isAtLeast(keys, before)
        assert.isAtLeast(keys, seen)
        assert.isTrue(Option.isSome(yield* kv.get(bytes(`k/${keys - 1}`))) || keys === 0)
        seen = keys
      }
      yield* Fiber.interrupt(writing)
      assert.isAbove(seen, 0)
      assert.isTrue(Option.isNone(yield* writer.kv.failure))
      yield* writer.close
    }), 60_000)
})
