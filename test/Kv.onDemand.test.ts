// The state read on demand from the store's runs (src/kv/merge.ts over runReader.ts): what a
// reader holds is not collected under it, and what a small cache cannot hold is read back.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import * as Manifest from "../schema/Manifest.ts"
import type * as Kv from "../src/Kv.ts"
import { bytes, text } from "./utils/exits.ts"
import { driveOrDie, faultyMemory, openKv } from "./utils/kv.ts"

const put = (key: string, value: string): Kv.WriteOp => ({ _tag: "Put", key: bytes(key), value: bytes(value) })

/** Options under which every memtable is a run at once, runs are merged at once and their objects deleted at once. */
const eager = { runFlushSegments: 1, maxRuns: 1, gcMinAge: 0, cacheBytes: 1 } as const

describe("Kv reads on demand", () => {
  it.effect("a cache of next to nothing reads every value back from the runs, after compactions and a reopen", () =>
    Effect.gen(function*() {
      const { raw, reliable } = yield* faultyMemory({ seed: 21 })
      const a = yield* driveOrDie(openKv(reliable, eager), "open")
      for (let i = 0; i < 40; i++) yield* driveOrDie(a.kv.write([put(`k${String(i % 25).padStart(2, "0")}`, `v${i}`)]), `write ${i}`)
      yield* driveOrDie(Effect.sleep("50 millis"), "runs and compactions")
      const latest = (yield* Stream.runCollect(raw.list("manifest/"))).map((e) => e.key).at(-1)!
      assert.isAtLeast(Manifest.decode((yield* raw.get(latest)).bytes).runs.length, 1, "the state is in runs")
      const expected = Array.from({ length: 25 }, (_, k) => `k${String(k).padStart(2, "0")}=v${k + (k < 15 ? 25 : 0)}`)
      const dump = (kv: Kv.Service) => Effect.map(kv.scan({ prefix: bytes("k") }), (entries) => entries.map((e) => `${text(e.key)}=${text(e.value)}`))
      assert.deepStrictEqual(yield* driveOrDie(dump(a.kv), "scan"), expected)
      assert.isAbove((yield* a.kv.stats).blockReads, 0, "blocks were read from the store")
      yield* driveOrDie(a.close, "close")
      const b = yield* driveOrDie(openKv(reliable, eager), "reopen")
      assert.deepStrictEqual(yield* driveOrDie(dump(b.kv), "scan after reopen"), expected)
      assert.deepStrictEqual(Option.map(yield* driveOrDie(b.kv.get(bytes("k07")), "get"), text), Option.some("v32"))
    }))

  it.effect("a transaction open across compactions and garbage collection reads its snapshot's runs: they are kept while it runs", () =>
    Effect.gen(function*() {
      const { raw, reliable } = yield* faultyMemory({ seed: 22 })
      const a = yield* driveOrDie(openKv(reliable, eager), "open")
      for (let i = 0; i < 10; i++) yield* driveOrDie(a.kv.write([put(`k${i}`, `old${i}`)]), `write ${i}`)
      yield* driveOrDie(Effect.sleep("50 millis"), "runs")
      const runsNow = Effect.map(Stream.runCollect(raw.list("runs/")), (entries) => entries.map((e) => e.key))
      const manifestRuns = Effect.gen(function*() {
        const latest = (yield* Stream.runCollect(raw.list("manifest/"))).map((e) => e.key).at(-1)!
        return Manifest.decode((yield* raw.get(latest)).bytes).runs.map((r) => `runs/${r.id}`)
      })
      const seen = yield* driveOrDie(
        a.kv.transaction((tx) =>
          Effect.gen(function*() {
            const first = yield* tx.get(bytes("k0"))
            const before = yield* manifestRuns
            // meanwhile every key is written again: new runs, merged, the old ones out of every manifest
            for (let i = 0; i < 10; i++) yield* a.kv.write([put(`k${i}`, `new${i}`)])
            yield* Effect.sleep("50 millis")
            const after = yield* runsNow
            const last = yield* tx.get(bytes("k9"))
            return { first, last, before, after }
          })
        ),
        "transaction"
      )
      assert.deepStrictEqual([Option.map(seen.first, text), Option.map(seen.last, text)], [Option.some("old0"), Option.some("old9")])
      assert.isNotEmpty(seen.before)
      assert.isTrue(seen.before.every((key) => seen.after.includes(key)), "the snapshot's runs were kept")
      // once it ended, the next collection deletes them
      yield* driveOrDie(a.kv.write([put("later", "x")]), "a later write")
      yield* driveOrDie(Effect.sleep("50 millis"), "collection")
      const finally_ = yield* runsNow
      assert.isTrue(seen.before.some((key) => !finally_.includes(key)), "released, they are collected")
      assert.deepStrictEqual(Option.map(yield* driveOrDie(a.kv.get(bytes("k9")), "get"), text), Option.some("new9"))
    }))

  it.effect("a run written is put in the cache while the whole store fits in half of it, and not once the store is larger", () =>
    Effect.gen(function*() {
      const big = "x".repeat(2000)
      const writeAll = (kv: Kv.Service, n: number) =>
        Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => driveOrDie(kv.write([put(`k${String(i).padStart(3, "0")}`, big)]), `write ${i}`), { discard: true })
      // a small store: its runs are read into the cache as they are written, and reads make no request
      const small = yield* faultyMemory({ seed: 24 })
      const a = yield* driveOrDie(openKv(small.reliable, { runFlushSegments: 1, maxRuns: 4, gcMinAge: 0, cacheBytes: 1 << 20 }), "open small")
      yield* writeAll(a.kv, 20)
      yield* driveOrDie(Effect.sleep("50 millis"), "runs")
      const aStats = yield* a.kv.stats
      assert.isAbove(aStats.runs, 0)
      assert.isAbove(aStats.cacheBytes, 0, "the runs written are in the cache")
      // (compactions read their inputs from the store: counted before the scan)
      assert.strictEqual((yield* driveOrDie(a.kv.scan({ prefix: bytes("k") }), "scan small")).length, 20)
      assert.strictEqual((yield* a.kv.stats).blockReads, aStats.blockReads, "the scan read no block from the store")
      // a store of ~600 KB of runs, reopened with a cache of 1 MiB: too large to be held
      const large = yield* faultyMemory({ seed: 25 })
      const b = yield* driveOrDie(openKv(large.reliable, { runFlushSegments: 1, maxRuns: 4, gcMinAge: 0 }), "open large")
      yield* writeAll(b.kv, 300)
      yield* driveOrDie(Effect.sleep("50 millis"), "runs")
      yield* driveOrDie(b.close, "close")
      const c = yield* driveOrDie(openKv(large.reliable, { runFlushSegments: 1, maxRuns: 4, gcMinAge: 0, cacheBytes: 1 << 20 }), "reopen large")
      assert.strictEqual((yield* c.kv.stats).cacheBytes, 0, "nothing read at open")
      yield* driveOrDie(c.kv.write([put("new", "value")]), "write")
      yield* driveOrDie(Effect.sleep("50 millis"), "run")
      assert.strictEqual((yield* c.kv.stats).cacheBytes, 0, "the run written is not read into the cache")
      const beforeGet = (yield* c.kv.stats).blockReads
      assert.deepStrictEqual(Option.map(yield* driveOrDie(c.kv.get(bytes("new")), "get"), text), Option.some("value"))
      assert.isAbove((yield* c.kv.stats).blockReads, beforeGet, "its block was read on demand")
    }))

  it.effect("a reopened store that fits in half the cache is read into it at open, so reads make no request; a larger one opens without reading a block", () =>
    Effect.gen(function*() {
      const { reliable } = yield* faultyMemory({ seed: 23 })
      const big = "x".repeat(2000)
      const a = yield* driveOrDie(openKv(reliable, { runFlushSegments: 1, maxRuns: 4, gcMinAge: 0 }), "open")
      for (let i = 0; i < 60; i++) yield* driveOrDie(a.kv.write([put(`k${String(i).padStart(2, "0")}`, big)]), `write ${i}`)
      yield* driveOrDie(Effect.sleep("50 millis"), "runs")
      yield* driveOrDie(a.close, "close")
      // ~120 KB of runs: within half a cache of 1 MiB, not of 64 KiB
      const roomy = yield* driveOrDie(openKv(reliable, { cacheBytes: 1 << 20 }), "open with room")
      // blockReads counts every GET of a run: its footer and index (two a run at open), then blocks
      const { blockReads: opened, runs } = yield* roomy.kv.stats
      assert.isAbove(opened, 2 * runs, "blocks were read at open")
      assert.isAtMost(opened, 3 * runs, "in spans (one a run here), not a GET a block")
      assert.strictEqual((yield* driveOrDie(roomy.kv.scan({ prefix: bytes("k") }), "scan")).length, 60)
      assert.strictEqual((yield* roomy.kv.stats).blockReads, opened, "the scan read nothing more")
      yield* driveOrDie(roomy.close, "close")
      const tight = yield* driveOrDie(openKv(reliable, { cacheBytes: 64 * 1024 }), "open with little room")
      const atOpen = yield* tight.kv.stats
      assert.strictEqual(atOpen.blockReads, 2 * atOpen.runs, "no block read at open, only footers and indexes")
      assert.strictEqual((yield* driveOrDie(tight.kv.scan({ prefix: bytes("k") }), "scan")).length, 60)
      assert.isAbove((yield* tight.kv.stats).blockReads, 2 * atOpen.runs)
    }))
})
