// The merge of memtables and sorted runs read on demand (src/kv/merge.ts) against a model: random
// overlapping runs with tombstones and memtables on top, from a fixed-seed PRNG, checked against a
// Map built by applying them oldest first. Every get, scan (forward, reversed, bounded, limited,
// empty) and full merge must agree exactly, with caches small enough to evict all the time.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Run from "../schema/Run.ts"
import { BTree } from "../src/internal/btree.ts"
import { makePrng, type Prng } from "../src/internal/prng.ts"
import * as BlockCache from "../src/kv/blockCache.ts"
import * as Merge from "../src/kv/merge.ts"
import * as RawMerge from "../src/kv/rawMerge.ts"
import * as RunReader from "../src/kv/runReader.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { expectedScan, keyPool, putRun, randomEntries, randomText, randomValue, sortedLive } from "./utils/runs.ts"

const memoryStore = Effect.provide(Effect.map(ObjectStore.ObjectStore, (store) => store), ObjectStore.layerMemory({ retry: false }))

const budgets = [0, 6_000, 30_000, 200_000, 64 << 20] as const

/** A scenario: runs (newest first) and memtables over a store, the model, and a shared cache. */
const scenario = (prng: Prng, index: number) =>
  Effect.gen(function*() {
    const store = yield* memoryStore
    const pool = keyPool(prng, prng.int(50, 600))
    const cache = BlockCache.make(budgets[index % budgets.length]!)
    const stats = RunReader.makeStats()
    // oldest first: the bottom run sometimes a full image (no tombstones)
    const layers: Array<ReadonlyArray<Run.Entry>> = []
    const runCount = prng.int(0, 7)
    for (let r = 0; r < runCount; r++) {
      const tombstones = r === 0 && prng.next() < 0.5 ? 0 : prng.next() * 0.5
      layers.push(randomEntries(prng, pool, { density: 0.05 + prng.next() * 0.8, tombstones }))
    }
    const readers: Array<RunReader.RunReader> = []
    for (const [r, entries] of layers.entries()) {
      const key = `runs/${String(r).padStart(26, "0")}`
      const bytes = yield* putRun(store, key, entries)
      readers.push(yield* RunReader.open(store, key, { bytes, cache, stats }))
    }
    // memtables above the runs: a frozen one sometimes, the live one (possibly empty)
    const memtables: Array<Merge.Memtable> = []
    for (let m = 0; m < prng.int(1, 3); m++) {
      const tree: Merge.Memtable = new BTree<string, string | null>()
      for (const [k, v] of randomEntries(prng, pool, { density: prng.next() * 0.3, tombstones: 0.3 })) tree.set(k, v)
      memtables.push(tree)
    }
    // the model: every version applied oldest first (newest keeps tombstones; live drops them)
    const newest = new Map<string, string | null>()
    for (const entries of layers) for (const [k, v] of entries) newest.set(k, v)
    for (const tree of memtables) for (const [k, v] of tree.entries()) newest.set(k, v)
    const sources: Array<Merge.Source> = [...[...memtables].reverse(), ...[...readers].reverse()]
    // the runs alone, what a compaction merges
    const runsNewest = new Map<string, string | null>()
    for (const entries of layers) for (const [k, v] of entries) runsNewest.set(k, v)
    return { cache, newest, pool, readers, runsNewest, sources, stats }
  })

/** A bound for a scan: a pool key, one just after it, a random string, or an extreme. */
const randomBound = (prng: Prng, pool: ReadonlyArray<string>): string => {
  const roll = prng.next()
  if (roll < 0.5) return pool[prng.int(0, pool.length)]!
  if (roll < 0.7) return pool[prng.int(0, pool.length)]! + "\u0000"
  if (roll < 0.9) return randomText(prng, prng.int(0, 4), "\u0000ajq\u00ff")
  return prng.next() < 0.5 ? "" : "\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff"
}

describe("merge against a model", () => {
  it.effect("random gets and scans over random runs and memtables agree with the model exactly", () =>
    Effect.gen(function*() {
      const prng = makePrng("merge model")
      let evictions = 0
      let checks = 0
      for (let s = 0; s < 30; s++) {
        const { cache, newest, pool, readers, sources, stats } = yield* scenario(prng, s)
        const live = sortedLive(newest)
        const model = new Map(live)
        for (let op = 0; op < 150; op++) {
          const context = `scenario ${s}, op ${op}`
          if (prng.next() < 0.4) {
            const key = prng.next() < 0.8 ? pool[prng.int(0, pool.length)]! : randomBound(prng, pool)
            assert.strictEqual(yield* Merge.get(sources, key), model.get(key), `${context}: get ${JSON.stringify(key)}`)
          } else {
            let start = randomBound(prng, pool)
            let end: string | undefined = randomBound(prng, pool)
            if (prng.next() < 0.7 && end < start) [start, end] = [end, start]
            if (prng.next() < 0.2) end = undefined
            const limit = [undefined, 0, 1, 2, 5, 50][prng.int(0, 6)]
            const reverse = prng.next() < 0.5
            assert.deepStrictEqual(
              yield* Merge.scan(sources, start, end, limit, reverse),
              expectedScan(live, start, end, limit, reverse),
              `${context}: scan ${JSON.stringify({ start, end, limit, reverse })}`
            )
          }
          assert.isAtMost(cache.stats().bytes, cache.capacity)
          checks++
        }
        if (cache.capacity > 0 && cache.capacity < 100_000) evictions += cache.stats().evictions
        if (cache.capacity === 0) assert.strictEqual(cache.stats().blocks, 0)
        assert.isAtLeast(stats.gets, 2 * readers.length)
      }
      assert.strictEqual(checks, 30 * 150)
      assert.isAbove(evictions, 100, "small caches must evict")
    }))

  it.effect("a full merge in chunks gives every key's newest version, tombstones kept or dropped", () =>
    Effect.gen(function*() {
      const prng = makePrng("merge all")
      for (let s = 0; s < 12; s++) {
        const { cache, newest, sources } = yield* scenario(prng, s)
        const withTombstones = [...newest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        for (const keepTombstones of [true, false]) {
          const chunk = [1, 7, 1024][prng.int(0, 3)]!
          // a GET a block, or spans of a few blocks up to more than a run
          const readAhead = [0, 1, 9000, 1 << 20][prng.int(0, 4)]!
          const pull = Merge.mergeAll(sources, { keepTombstones, chunk, readAhead })
          const all: Array<Run.Entry> = []
          for (;;) {
            const got = yield* pull
            assert.isAtMost(got.length, chunk)
            if (got.length === 0) break
            all.push(...got)
          }
          assert.deepStrictEqual(yield* pull, [], "after the end, empty chunks")
          assert.deepStrictEqual(all, keepTombstones ? withTombstones : withTombstones.filter(([, v]) => v !== null), `scenario ${s}`)
        }
        // a full merge does not fill the cache
        if (cache.capacity > 1 << 20) assert.strictEqual(cache.stats().blocks, 0)
      }
    }))

  it.effect("the merge of runs on their bytes writes every key's newest version, tombstones kept or dropped, in objects cut where the encoder fills", () =>
    Effect.gen(function*() {
      const prng = makePrng("raw merge")
      let objects = 0
      for (let s = 0; s < 40; s++) {
        const { cache, readers, runsNewest } = yield* scenario(prng, s)
        const newestFirst = [...readers].reverse()
        const withTombstones = [...runsNewest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        for (const keepTombstones of [true, false]) {
          const chunk = [1, 7, 256][prng.int(0, 3)]!
          const readAhead = [1, 9000, 1 << 20][prng.int(0, 3)]!
          const untilBytes = [300, 5_000, 40_000, Number.POSITIVE_INFINITY][prng.int(0, 4)]!
          const feed = RawMerge.mergeRuns(newestFirst, { keepTombstones, chunk, readAhead })
          const all: Array<Run.Entry> = []
          let encoder = new Run.Encoder()
          // each object decoded, then its buffer written over by the next (as the writer does)
          const cut = () => {
            const bytes = encoder.finish()
            all.push(...Run.decode(bytes))
            if (encoder.entries > 0) objects++
            encoder = new Run.Encoder(0, encoder.buffer)
          }
          for (;;) {
            const before = encoder.entries
            const more = yield* feed(encoder, untilBytes)
            assert.isAtMost(encoder.entries - before, chunk)
            if (encoder.bytes >= untilBytes) cut()
            if (!more) break
          }
          if (encoder.entries > 0) cut()
          assert.isFalse(yield* feed(encoder, untilBytes), "after the end, nothing more")
          assert.strictEqual(encoder.entries, 0)
          assert.deepStrictEqual(all, keepTombstones ? withTombstones : withTombstones.filter(([, v]) => v !== null), `scenario ${s}`)
        }
        // nothing cached
        if (cache.capacity > 1 << 20) assert.strictEqual(cache.stats().blocks, 0)
      }
      assert.isAbove(objects, 100, "merges cut into many objects")
    }))

  it.effect("values of every size survive the merge, up to a block of their own", () =>
    Effect.gen(function*() {
      const prng = makePrng("sizes")
      const store = yield* memoryStore
      const cache = BlockCache.make(20_000)
      const entries: Array<Run.Entry> = Array.from({ length: 300 }, (_, i) => [`k${String(i).padStart(4, "0")}`, i % 50 === 0 ? "x".repeat(20_000) : randomValue(prng)])
      const bytes = yield* putRun(store, "runs/sizes", entries)
      const reader = yield* RunReader.open(store, "runs/sizes", { bytes, cache })
      assert.deepStrictEqual(yield* Merge.scan([reader], "", undefined), entries)
      assert.deepStrictEqual(yield* Merge.scan([reader], "", undefined, undefined, true), [...entries].reverse())
      assert.isAtMost(cache.stats().bytes, 20_000)
    }))
})
