// The KV on a real backend (memory, directory, S3), live clock: commits, a transaction, runs and
// compaction, reopen, and fencing by a second writer through the backend's own put-if-absent.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import * as Kv from "../../src/Kv.ts"
import { ObjectStore } from "../../src/ObjectStore.ts"
import type { Backend } from "../utils/stores.ts"
import { bytes, reasonOf, text } from "../utils/exits.ts"
import { openKv } from "../utils/kv.ts"

export const kvOnBackend = (backend: Backend) =>
  describe(`Kv on ${backend.name}`, () => {
    it.live("commits, a transaction, runs and compaction; reopen recovers; a second writer fences the first", () =>
      Effect.gen(function*() {
        const store = Context.get(yield* Layer.build(backend.layer()), ObjectStore)
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
  })
