// The block cache of sorted runs (src/kv/blockCache.ts): least recently used blocks go first,
// the bytes charged never exceed the budget, a budget of 0 keeps nothing, and a dropped run's
// blocks are forgotten without counting as evictions.
import { assert, describe, it } from "@effect/vitest"
import type * as Run from "../schema/Run.ts"
import * as BlockCache from "../src/kv/blockCache.ts"

/** A block of `count` entries with keys and values of `size` chars each. */
const blockOf = (tag: string, count: number, size = 10): ReadonlyArray<Run.Entry> =>
  Array.from({ length: count }, (_, i) => [`${tag}${i}`.padEnd(size, "k"), "v".repeat(size)] as const)

/** The cost of one of the blocks above. */
const cost = (count: number, size = 10) => BlockCache.blockOverhead + count * (2 * size + BlockCache.entryOverhead)

describe("block cache", () => {
  it("a block is charged its keys, values and the documented overheads", () => {
    assert.strictEqual(BlockCache.blockCost(blockOf("a", 3)), cost(3))
    assert.strictEqual(BlockCache.blockCost([["key", null]]), BlockCache.blockOverhead + 3 + BlockCache.entryOverhead)
    assert.strictEqual(BlockCache.blockCost([]), BlockCache.blockOverhead)
  })

  it("a block put is got back, the same array, and counted as a hit; an absent one as a miss", () => {
    const cache = BlockCache.make(10_000)
    const block = blockOf("a", 2)
    assert.isTrue(cache.set("run1", 0, block))
    assert.strictEqual(cache.get("run1", 0), block)
    assert.isUndefined(cache.get("run1", 1))
    assert.isUndefined(cache.get("run2", 0))
    assert.deepStrictEqual(cache.stats(), { hits: 1, misses: 2, bytes: cost(2), blocks: 1, evictions: 0, capacity: 10_000 })
  })

  it("over budget, the least recently used blocks are evicted first, a get counting as a use", () => {
    const cache = BlockCache.make(3 * cost(4))
    for (const i of [0, 1, 2]) cache.set("r", i, blockOf(`b${i}`, 4))
    assert.isDefined(cache.get("r", 0)) // 0 is now the most recent: 1 is the oldest
    cache.set("r", 3, blockOf("b3", 4))
    assert.deepStrictEqual([0, 1, 2, 3].map((i) => cache.peek("r", i) !== undefined), [true, false, true, true])
    assert.deepStrictEqual([cache.stats().evictions, cache.stats().blocks, cache.stats().bytes], [1, 3, 3 * cost(4)])
    // a bigger block makes room for itself by evicting as many as it needs, oldest first (2, then 0)
    cache.set("s", 0, blockOf("big", 8))
    assert.deepStrictEqual([0, 2, 3].map((i) => cache.peek("r", i) !== undefined), [false, false, true])
    assert.deepStrictEqual([cache.stats().evictions, cache.stats().bytes], [3, cost(4) + cost(8)])
  })

  it("peek neither counts nor refreshes a block", () => {
    const cache = BlockCache.make(2 * cost(1))
    cache.set("r", 0, blockOf("a", 1))
    cache.set("r", 1, blockOf("b", 1))
    assert.isDefined(cache.peek("r", 0))
    cache.set("r", 2, blockOf("c", 1))
    assert.deepStrictEqual([cache.peek("r", 0), cache.stats().hits, cache.stats().misses], [undefined, 0, 0])
  })

  it("the bytes charged never exceed the budget, whatever is put", () => {
    const capacity = 5_000
    const cache = BlockCache.make(capacity)
    for (let i = 0; i < 500; i++) {
      cache.set(`r${i % 7}`, i % 13, blockOf(`x${i}`, 1 + (i * 7) % 11, 5 + (i % 30)))
      if (i % 3 === 0) cache.get(`r${i % 5}`, i % 11)
      assert.isAtMost(cache.stats().bytes, capacity)
    }
    assert.isAbove(cache.stats().evictions, 0)
  })

  it("putting a block again replaces it and charges the new size only", () => {
    const cache = BlockCache.make(10_000)
    cache.set("r", 0, blockOf("a", 5))
    const replacement = blockOf("a", 2)
    cache.set("r", 0, replacement)
    assert.deepStrictEqual([cache.get("r", 0), cache.stats().bytes, cache.stats().blocks], [replacement, cost(2), 1])
  })

  it("a block over the whole budget is not kept, and evicts nothing", () => {
    const cache = BlockCache.make(cost(3))
    cache.set("r", 0, blockOf("a", 1))
    assert.isFalse(cache.set("r", 1, blockOf("b", 4)))
    assert.deepStrictEqual([cache.peek("r", 0) !== undefined, cache.peek("r", 1), cache.stats().evictions], [true, undefined, 0])
  })

  it("with a budget of 0 nothing is kept and every get misses", () => {
    const cache = BlockCache.make(0)
    assert.isFalse(cache.set("r", 0, blockOf("a", 1)))
    assert.isFalse(cache.set("r", 1, []))
    assert.isUndefined(cache.get("r", 0))
    assert.deepStrictEqual(cache.stats(), { hits: 0, misses: 1, bytes: 0, blocks: 0, evictions: 0, capacity: 0 })
  })

  it("dropping a run forgets its blocks only, without counting evictions", () => {
    const cache = BlockCache.make(100_000)
    for (const i of [0, 1, 2]) {
      cache.set("old", i, blockOf(`o${i}`, 2))
      cache.set("new", i, blockOf(`n${i}`, 2))
    }
    cache.dropRun("old")
    cache.dropRun("never cached")
    assert.deepStrictEqual([0, 1, 2].map((i) => cache.peek("old", i)), [undefined, undefined, undefined])
    assert.deepStrictEqual([0, 1, 2].map((i) => cache.peek("new", i) !== undefined), [true, true, true])
    assert.deepStrictEqual([cache.stats().blocks, cache.stats().bytes, cache.stats().evictions], [3, 3 * cost(2), 0])
    // the run's name can be used again afterwards
    cache.set("old", 0, blockOf("again", 1))
    cache.dropRun("old")
    assert.strictEqual(cache.stats().blocks, 3)
  })

  it("a negative or NaN budget is refused", () => {
    assert.throws(() => BlockCache.make(-1), RangeError)
    assert.throws(() => BlockCache.make(Number.NaN), RangeError)
  })
})
