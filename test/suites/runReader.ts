// Reading sorted runs on demand (src/kv/runReader.ts, through the block cache and the merge),
// written once and run against every backend (memory, directory, S3): runs written with
// Run.encode read back point by point and by scans, GETs counted, damage found.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Run from "../../schema/Run.ts"
import { makePrng } from "../../src/internal/prng.ts"
import * as BlockCache from "../../src/kv/blockCache.ts"
import * as Merge from "../../src/kv/merge.ts"
import * as RunReader from "../../src/kv/runReader.ts"
import { ObjectStore } from "../../src/ObjectStore.ts"
import { reasonOf } from "../utils/exits.ts"
import { expectedScan, keyPool, putRun, randomEntries } from "../utils/runs.ts"
import type { Backend } from "../utils/stores.ts"

const key = "runs/01J0000000000000000000TEST"

/** A run of about 1,000 entries over 30-odd blocks, a fifth of them tombstones, and keys it does not hold. */
const fixture = () => {
  const prng = makePrng("run reader suite")
  const pool = keyPool(prng, 1500)
  const entries = randomEntries(prng, pool, { density: 0.7, tombstones: 0.2 })
  const held = new Set(entries.map(([k]) => k))
  const absent = [...pool, "", "\u0000", "\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff"].filter((k) => !held.has(k))
  const live = entries.filter((e): e is readonly [string, string] => e[1] !== null)
  return { entries, absent, live, prng }
}

/** The run of `entries` written at `key` and opened with a cache of `capacity` bytes. */
const written = (entries: ReadonlyArray<Run.Entry>, capacity = 64 * 1024 * 1024) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const bytes = yield* putRun(store, key, entries)
    const cache = BlockCache.make(capacity)
    const reader = yield* RunReader.open(store, key, { bytes, cache })
    return { store, bytes, cache, reader }
  })

/** The corrupt detail of a failed exit (asserting it is `Corrupt` naming the run's key). */
const corruptDetail = (exit: Exit.Exit<unknown, unknown>): string => {
  assert.strictEqual(reasonOf(exit), "Corrupt")
  const error = (exit as Exit.Failure<unknown, { key: string; detail: string }>).cause.reasons
    .find((r) => r._tag === "Fail") as unknown as { error: { key: string; detail: string } }
  assert.strictEqual(error.error.key, key)
  return error.error.detail
}

export const runReaderSuite = (backend: Backend) =>
  describe(`run reader: ${backend.name}`, () => {
    const test = (name: string, body: () => Effect.Effect<void, unknown, ObjectStore>) =>
      it.live(name, () => Effect.provide(body(), backend.layer()))

    test("opening a run reads its footer and its index with two GETs, and no block", () =>
      Effect.gen(function*() {
        const { entries } = fixture()
        const { cache, reader } = yield* written(entries)
        assert.deepStrictEqual(reader.stats.gets, 2)
        assert.isAbove(reader.blocks.length, 20)
        assert.deepStrictEqual([reader.entries, reader.firstKey, reader.lastKey], [entries.length, entries[0]![0], entries.at(-1)![0]])
        assert.strictEqual(reader.blocks.reduce((n, b) => n + b.entries, 0), entries.length)
        assert.isAbove(reader.indexBytes, reader.blocks.length * RunReader.indexEntryOverhead - 1)
        assert.deepStrictEqual(cache.stats().blocks, 0)
      }))

    test("every entry reads back by key, a tombstone as null, and an absent key as undefined", () =>
      Effect.gen(function*() {
        const { absent, entries } = fixture()
        const { reader } = yield* written(entries)
        for (const [k, v] of entries) assert.strictEqual(yield* reader.get(k), v, JSON.stringify(k))
        // each block was read once, then served from the cache
        assert.strictEqual(reader.stats.gets, 2 + reader.blocks.length)
        for (const k of absent) assert.isUndefined(yield* reader.get(k), JSON.stringify(k))
        assert.strictEqual(reader.stats.gets, 2 + reader.blocks.length)
      }))

    test("scans forward and reversed from any bound give the run's live entries in order", () =>
      Effect.gen(function*() {
        const { entries, live, prng } = fixture()
        const { reader } = yield* written(entries, 40 * 1024)
        const keys = entries.map(([k]) => k)
        assert.deepStrictEqual(yield* Merge.scan([reader], "", undefined), live)
        assert.deepStrictEqual(yield* Merge.scan([reader], "", undefined, undefined, true), [...live].reverse())
        for (let i = 0; i < 60; i++) {
          const bound = () => prng.next() < 0.3 ? keys[prng.int(0, keys.length)]! + "\u0000" : keys[prng.int(0, keys.length)]!
          const [a, b] = [bound(), bound()]
          const [start, end] = a <= b ? [a, prng.next() < 0.2 ? undefined : b] : [b, a]
          const limit = [undefined, 1, 7, 100][prng.int(0, 4)]
          const reverse = prng.next() < 0.5
          assert.deepStrictEqual(
            yield* Merge.scan([reader], start, end, limit, reverse),
            expectedScan(live, start, end, limit, reverse),
            JSON.stringify({ start, end, limit, reverse })
          )
        }
      }))

    test("a block read once is served from the cache: a second read of it costs no GET", () =>
      Effect.gen(function*() {
        const { entries } = fixture()
        const { cache, reader } = yield* written(entries)
        const [k, v] = entries[entries.length >> 1]!
        assert.strictEqual(yield* reader.get(k), v)
        assert.strictEqual(reader.stats.gets, 3)
        assert.strictEqual(yield* reader.get(k), v)
        assert.strictEqual(reader.getCached(k), v)
        assert.isDefined(reader.cachedBlock(reader.blockFor(k)))
        assert.strictEqual(reader.stats.gets, 3)
        assert.deepStrictEqual([cache.stats().blocks, cache.stats().hits], [1, 3])
        // a whole scan reads each block once; the next scan none
        yield* Merge.scan([reader], "", undefined)
        assert.strictEqual(reader.stats.gets, 2 + reader.blocks.length)
        yield* Merge.scan([reader], "", undefined, undefined, true)
        assert.strictEqual(reader.stats.gets, 2 + reader.blocks.length)
      }))

    test("with a cache of 0 bytes every block read is a GET, and nothing is kept", () =>
      Effect.gen(function*() {
        const { entries } = fixture()
        const { cache, reader } = yield* written(entries, 0)
        const [k, v] = entries[3]!
        for (let i = 0; i < 3; i++) assert.strictEqual(yield* reader.get(k), v)
        assert.strictEqual(reader.stats.gets, 5)
        assert.strictEqual(reader.getCached(k), RunReader.notCached)
        assert.deepStrictEqual([cache.stats().blocks, cache.stats().bytes], [0, 0])
      }))

    test("concurrent reads of one block share one GET", () =>
      Effect.gen(function*() {
        const { entries } = fixture()
        const { reader } = yield* written(entries)
        const block = reader.blocks[5]!
        const inBlock = entries.filter(([k]) => k >= block.firstKey && k <= block.lastKey)
        const values = yield* Effect.forEach(inBlock, ([k]) => reader.get(k), { concurrency: "unbounded" })
        assert.deepStrictEqual(values, inBlock.map(([, v]) => v))
        assert.strictEqual(reader.stats.gets, 3)
      }))

    test("a reader of the run in hand (just written) makes no GET until it needs a block", () =>
      Effect.gen(function*() {
        const { entries, live } = fixture()
        const store = yield* ObjectStore
        const object = Run.encode(entries)
        const etag = yield* store.put(key, object)
        const reader = yield* RunReader.fromObject(store, key, object, { cache: BlockCache.make(1 << 20), etag })
        assert.deepStrictEqual([reader.stats.gets, reader.entries, reader.bytes], [0, entries.length, object.length])
        assert.strictEqual(yield* reader.get(entries[5]![0]), entries[5]![1])
        assert.strictEqual(reader.stats.gets, 1)
        assert.deepStrictEqual(yield* Merge.scan([reader], "", undefined), live)
        // replaced under it by a run of the same layout (valid CRCs, other values): found by the ETag given
        const lookalike = Run.encode(entries.map(([k, v]) => [k, v === null ? null : v.split("").reverse().join("")] as const))
        assert.strictEqual(lookalike.length, object.length)
        yield* store.put(key, lookalike)
        const other = yield* RunReader.fromObject(store, key, object, { cache: BlockCache.make(0), etag })
        assert.include(corruptDetail(yield* Effect.exit(other.get(entries[5]![0]))), "replaced")
        // an object in hand that is damaged is refused without a request
        const damaged = object.slice()
        damaged[damaged.length - 30]! ^= 1
        assert.isNotEmpty(corruptDetail(yield* Effect.exit(RunReader.fromObject(store, key, damaged, { cache: BlockCache.make(0) }))))
      }))

    test("a cursor reading ahead reads the run in spans, one GET each, and hands out every entry in order without caching a block", () =>
      Effect.gen(function*() {
        const { entries } = fixture()
        const { cache, reader } = yield* written(entries)
        const blockBytes = reader.blocks.map((b) => b.length + 4)
        const span = blockBytes.slice(0, 5).reduce((a, b) => a + b, 0) // about five blocks a GET
        const expected = Math.ceil(blockBytes.reduce((a, b) => a + b, 0) / span)
        const before = reader.stats.gets
        const pull = Merge.mergeAll([reader], { keepTombstones: true, chunk: 100, readAhead: span })
        const all: Array<Run.Entry> = []
        for (let got = yield* pull; got.length > 0; got = yield* pull) all.push(...got)
        assert.deepStrictEqual(all, entries)
        const gets = reader.stats.gets - before
        // spans hold whole blocks: a few more GETs than bytes over span, never one a block
        assert.isAtLeast(gets, expected)
        assert.isAtMost(gets, expected + Math.ceil(reader.blocks.length / 5))
        assert.isBelow(gets, reader.blocks.length / 3)
        assert.strictEqual(cache.stats().blocks, 0)
        // a span smaller than a block still reads one block a GET
        const small = reader.stats.gets
        const one = Merge.mergeAll([reader], { keepTombstones: true, readAhead: 1 })
        for (let got = yield* one; got.length > 0; got = yield* one) continue
        assert.strictEqual(reader.stats.gets - small, reader.blocks.length)
      }))

    test("an empty run opens, holds nothing and reads nothing", () =>
      Effect.gen(function*() {
        const { reader } = yield* written([])
        assert.deepStrictEqual([reader.blocks.length, reader.entries, reader.firstKey, reader.lastKey], [0, 0, undefined, undefined])
        assert.isUndefined(yield* reader.get("a"))
        assert.deepStrictEqual(yield* Merge.scan([reader], "", undefined), [])
        assert.deepStrictEqual(yield* Merge.scan([reader], "", undefined, 5, true), [])
        assert.strictEqual(reader.stats.gets, 2)
      }))

    test("a truncated object, a wrong size, a damaged block, or an object replaced after opening is Corrupt naming the run", () =>
      Effect.gen(function*() {
        const { entries } = fixture()
        const { bytes, cache, reader, store } = yield* written(entries)
        const original = (yield* store.get(key)).bytes
        const open = (size: number) => Effect.exit(RunReader.open(store, key, { bytes: size, cache }))
        for (const size of [bytes - 1, bytes + 1, bytes + 100, 29, 0, -5, 1.5]) {
          assert.isNotEmpty(corruptDetail(yield* open(size)), `size ${size}`)
        }
        // replaced (truncated) after opening: the next read finds another object
        yield* store.put(key, original.subarray(0, bytes - 10))
        assert.include(corruptDetail(yield* Effect.exit(reader.get(entries[0]![0]))), "bytes, the manifest says")
        assert.include(corruptDetail(yield* open(bytes)), "the manifest says")
        // replaced by an object of the same size: found by its ETag
        const block = reader.blocks[7]!
        const rotten = original.slice()
        rotten[block.offset + 10]! ^= 0x04
        yield* store.put(key, rotten)
        assert.include(corruptDetail(yield* Effect.exit(reader.get(block.firstKey))), "replaced since it was opened")
        // a damaged block, found when that block is read; the other blocks still read
        const reopened = yield* RunReader.open(store, key, { bytes, cache: BlockCache.make(1 << 20) })
        assert.include(corruptDetail(yield* Effect.exit(reopened.get(block.firstKey))), "CRC32")
        assert.include(corruptDetail(yield* Effect.exit(Merge.scan([reopened], block.firstKey, undefined, 5))), "CRC32")
        const other = reader.blocks[8]!
        assert.strictEqual(yield* reopened.get(other.firstKey), entries.find(([k]) => k === other.firstKey)![1])
      }))

    test("a missing run is the store's NotFound", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const exit = yield* Effect.exit(RunReader.open(store, key, { bytes: 100, cache: BlockCache.make(0) }))
        assert.strictEqual(reasonOf(exit), "NotFound")
      }))
  })
