// What the merge of memtables and runs (src/kv/merge.ts) promises beyond equal results: the
// newest source decides, blocks are read only when needed (GETs counted), a scan waiting for a
// block sees the memtables as they were when it began, and a block read interrupted halfway is
// left to the next fiber that wants it.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Latch } from "effect"
import type * as Run from "../schema/Run.ts"
import { BTree } from "../src/internal/btree.ts"
import * as BlockCache from "../src/kv/blockCache.ts"
import * as Merge from "../src/kv/merge.ts"
import * as RunReader from "../src/kv/runReader.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { putRun } from "./utils/runs.ts"

const memoryStore = Effect.provide(Effect.map(ObjectStore.ObjectStore, (store) => store), ObjectStore.layerMemory({ retry: false }))

/** `k0000` … : keys of `count` entries, values of 40 chars (about 80 entries a block). */
const numbered = (count: number, prefix = "k"): Array<readonly [string, string]> =>
  Array.from({ length: count }, (_, i) => [`${prefix}${String(i).padStart(4, "0")}`, `value of ${i}`.padEnd(40, ".")] as const)

const memtable = (entries: ReadonlyArray<Run.Entry>): Merge.Memtable => new BTree<string, string | null>(entries.map(([k, v]) => [k, v]))

/** A store whose GETs wait while `gate` is closed. */
const gatedStore = Effect.gen(function*() {
  const store = yield* memoryStore
  const gate = yield* Latch.make(true)
  const gated: ObjectStore.Service = { ...store, get: (key, options) => Effect.andThen(gate.await, store.get(key, options)) }
  return { gate, store: gated }
})

/** Runs (newest first) of `layers` (oldest first) over `store`, sharing one cache and one counter. */
const openRuns = (store: ObjectStore.Service, layers: ReadonlyArray<ReadonlyArray<Run.Entry>>, capacity = 1 << 20) =>
  Effect.gen(function*() {
    const cache = BlockCache.make(capacity)
    const stats = RunReader.makeStats()
    const readers: Array<RunReader.RunReader> = []
    for (const [i, entries] of layers.entries()) {
      const key = `runs/layer${i}`
      readers.unshift(yield* RunReader.open(store, key, { bytes: yield* putRun(store, key, entries), cache, stats }))
    }
    stats.gets = 0
    return { cache, readers, stats }
  })

describe("merge", () => {
  it.effect("the newest source's version of a key wins, and a tombstone hides the older ones", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const { readers } = yield* openRuns(store, [
        [["a", "run0"], ["b", "run0"], ["c", "run0"], ["d", "run0"]],
        [["b", "run1"], ["c", null], ["e", null]]
      ])
      const sources = [memtable([["a", null], ["d", "mem"], ["f", "mem"]]), ...readers]
      assert.deepStrictEqual(yield* Merge.scan(sources, "", undefined), [["b", "run1"], ["d", "mem"], ["f", "mem"]])
      assert.deepStrictEqual(yield* Merge.scan(sources, "", undefined, 2, true), [["f", "mem"], ["d", "mem"]])
      assert.deepStrictEqual(
        yield* Effect.forEach(["a", "b", "c", "d", "e", "f", "g"], (k) => Merge.get(sources, k)),
        [undefined, "run1", undefined, "mem", undefined, "mem", undefined]
      )
      assert.deepStrictEqual(yield* Merge.scan(sources, "b", "b"), [])
      assert.deepStrictEqual(yield* Merge.scan(sources, "c", "b"), [])
      assert.deepStrictEqual(yield* Merge.scan(sources, "a", "z", 0), [])
      assert.deepStrictEqual(yield* Merge.scan([], "", undefined), [])
    }))

  it.effect("a get or a scan reads no block that the index shows cannot hold what it returns", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const entries = numbered(1000)
      const { readers, stats } = yield* openRuns(store, [entries])
      const [reader] = readers
      assert.isAbove(reader!.blocks.length, 8)
      // outside the run, or between two of its blocks: no GET
      const between = reader!.blocks[3]!.lastKey + "~"
      for (const k of ["", "a", "k", "z", between]) assert.isUndefined(yield* Merge.get(readers, k))
      assert.deepStrictEqual(yield* Merge.scan(readers, "l", undefined), [])
      assert.deepStrictEqual(yield* Merge.scan(readers, "", "k"), [])
      assert.deepStrictEqual(yield* Merge.scan(readers, "", "k", 10, true), [])
      assert.strictEqual(stats.gets, 0)
      // a limited scan reads the blocks its entries are in, no more
      assert.deepStrictEqual(yield* Merge.scan(readers, "", undefined, 3), entries.slice(0, 3))
      assert.strictEqual(stats.gets, 1)
      assert.deepStrictEqual(yield* Merge.scan(readers, between, undefined, 2), entries.filter(([k]) => k > between).slice(0, 2))
      assert.strictEqual(stats.gets, 2)
      assert.deepStrictEqual(yield* Merge.scan(readers, "", undefined, 2, true), entries.slice(-2).reverse())
      assert.strictEqual(stats.gets, 3)
    }))

  it.effect("entries of newer sources that come first are returned without reading a run's block", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const { readers, stats } = yield* openRuns(store, [numbered(500, "m")])
      const sources = [memtable([["a", "1"], ["b", null], ["c", "3"], ["y", "4"], ["z", "5"]]), ...readers]
      assert.deepStrictEqual(yield* Merge.scan(sources, "", undefined, 2), [["a", "1"], ["c", "3"]])
      assert.deepStrictEqual(yield* Merge.scan(sources, "", undefined, 2, true), [["z", "5"], ["y", "4"]])
      assert.strictEqual(yield* Merge.get(sources, "c"), "3")
      assert.isUndefined(yield* Merge.get(sources, "b"))
      assert.strictEqual(stats.gets, 0)
      // past the memtable's first entries the run's first block is needed
      assert.deepStrictEqual((yield* Merge.scan(sources, "", undefined, 3)).map(([k]) => k), ["a", "c", "m0000"])
      assert.strictEqual(stats.gets, 1)
    }))

  it.effect("once its blocks are cached, a scan reads nothing more", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const { cache, readers, stats } = yield* openRuns(store, [numbered(600), numbered(300, "k1")])
      const first = yield* Merge.scan(readers, "k02", "k15")
      const gets = stats.gets
      assert.isAbove(gets, 2)
      assert.deepStrictEqual(yield* Merge.scan(readers, "k02", "k15"), first)
      assert.deepStrictEqual(yield* Merge.scan(readers, "k02", "k15", undefined, true), [...first].reverse())
      assert.strictEqual(stats.gets, gets)
      assert.isAbove(cache.stats().hits, 0)
    }))

  it.effect("a scan that waits for a block sees the memtable as it was when the scan began", () =>
    Effect.gen(function*() {
      const { gate, store } = yield* gatedStore
      const entries = numbered(300)
      const { readers, stats } = yield* openRuns(store, [entries], 0)
      const live = memtable([["k0000x", "mem"], ["k0100x", "mem"], ["k0200", null], ["k0250x", "mem"]])
      const sources = [live, ...readers]
      const expected = [...entries.filter(([k]) => k !== "k0200"), ["k0000x", "mem"], ["k0100x", "mem"], ["k0250x", "mem"]]
        .sort(([a], [b]) => (a < b ? -1 : 1))
      for (const reverse of [false, true]) {
        yield* gate.close
        const scan = yield* Effect.forkChild(Merge.scan(sources, "", undefined, undefined, reverse))
        yield* Effect.yieldNow
        assert.strictEqual(stats.gets, 1, "the scan is waiting for its first block")
        // commits land while it waits: new keys, a delete, an overwrite
        live.set("k0001x", "late")
        live.set("k0100x", "changed")
        live.set("k0000", null)
        live.delete("k0250x")
        for (let i = 0; i < 100; i++) live.set(`k0150-${i}`, "late")
        yield* gate.open
        assert.deepStrictEqual(yield* Fiber.join(scan), reverse ? [...expected].reverse() : expected)
        // the next scan sees the commits
        live.clear()
        for (const [k, v] of [["k0000x", "mem"], ["k0100x", "mem"], ["k0200", null], ["k0250x", "mem"]] as const) live.set(k, v)
        stats.gets = 0
      }
    }))

  /** One run of 300 entries over a gated store, opened without a cache, its gate closed. */
  const gatedRun = Effect.gen(function*() {
    const { gate, store } = yield* gatedStore
    const entries = numbered(300)
    const { readers, stats } = yield* openRuns(store, [entries], 0)
    yield* gate.close
    return { entries, gate, reader: readers[0]!, stats, store }
  })

  it.effect("a block read interrupted halfway is read again by the next fiber that wants it", () =>
    Effect.gen(function*() {
      const { entries, gate, reader, stats } = yield* gatedRun
      const first = yield* Effect.forkChild(reader.get("k0010"))
      const second = yield* Effect.forkChild(reader.get("k0011"))
      yield* Effect.yieldNow
      assert.strictEqual(stats.gets, 1, "one GET in flight, the second fiber waiting for it")
      yield* Fiber.interrupt(first)
      yield* Effect.yieldNow
      yield* gate.open
      assert.strictEqual(yield* Fiber.join(second), entries[11]![1])
      assert.strictEqual(stats.gets, 2)
    }))

  it.effect("a block read failing fails every fiber waiting for it, and the next read tries again", () =>
    Effect.gen(function*() {
      const { gate, reader, stats, store } = yield* gatedRun
      const fibers = yield* Effect.forEach(["k0001", "k0002", "k0003"], (k) => Effect.forkChild(Effect.flip(reader.get(k))))
      yield* Effect.yieldNow
      yield* store.delete("runs/layer0")
      yield* gate.open
      for (const fiber of fibers) assert.strictEqual((yield* Fiber.join(fiber))._tag, "ObjectStoreError")
      assert.strictEqual(stats.gets, 1)
      yield* store.put("runs/layer0", new Uint8Array(0))
      assert.strictEqual((yield* Effect.flip(reader.get("k0001")))._tag, "Corrupt")
      assert.strictEqual(stats.gets, 2)
    }))
})
