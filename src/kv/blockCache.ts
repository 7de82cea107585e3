/**
 * The block cache: decoded blocks of sorted runs (`runs/<ulid>`, see `schema/Run.ts`), kept in
 * least-recently-used order under one byte budget shared by every run a KV reads.
 *
 * Contract:
 * - keyed by run id and block number; a value is a block's decoded entries, never changed
 *   after it is put here (callers must not mutate it);
 * - every block is charged `blockCost(entries)` (an estimate of the heap it holds, see below) and
 *   the sum of the charges never exceeds `capacity` once a call returns: `set` evicts the least
 *   recently used blocks until the new one fits, and keeps nothing that alone is over budget (so
 *   a capacity of 0 keeps nothing, and every `get` is a miss);
 * - `get` of a present block makes it the most recently used; `dropRun` forgets every block of a
 *   run (a run deleted by compaction) without counting evictions;
 * - synchronous, single-threaded, no Effect: the run reader stays synchronous on hits.
 *
 * @internal
 */
import type * as Run from "../../schema/Run.ts"

/**
 * Heap bytes charged per entry beyond its key and value characters: two one-byte string
 * headers (16 bytes each, rounded up to 8), the `[key, value]` pair (a `JSArray` of 32 bytes and
 * its 2-slot backing store of 32) and the block array's slot (8, plus the slack of an array
 * grown by `push`). Measured on Node 24 (64-bit, no pointer compression): 116 bytes per entry
 * for 15-byte keys and 20–60-byte values; rounded up to 120.
 */
export const entryOverhead = 120

/**
 * Heap bytes charged per block beyond its entries: the block array's header, the cache's `Map`
 * entry and its key string (`<run id>:<block>`, ~40 chars), the per-run index entry.
 */
export const blockOverhead = 200

/**
 * The bytes a decoded block is charged: for each entry its key and value lengths (latin1: one
 * byte per char) plus `entryOverhead`, plus `blockOverhead` for the block itself.
 */
export const blockCost = (entries: ReadonlyArray<Run.Entry>): number => {
  let bytes = blockOverhead
  for (const [key, value] of entries) bytes += key.length + (value === null ? 0 : value.length) + entryOverhead
  return bytes
}

/** What the cache holds and did since it was made. */
export interface Stats {
  /** `get`s that found their block. */
  readonly hits: number
  /** `get`s that did not. */
  readonly misses: number
  /** Bytes charged for the blocks held now (never over `capacity`). */
  readonly bytes: number
  /** Blocks held now. */
  readonly blocks: number
  /** Blocks evicted to make room (not those `dropRun` forgot, nor a block `set` refused). */
  readonly evictions: number
  /** The byte budget. */
  readonly capacity: number
}

/** A block cache (see the file header). */
export interface BlockCache {
  /** The byte budget shared by every run. */
  readonly capacity: number
  /**
   * Block `block` of run `runId`, made the most recently used; undefined if it is not held.
   * Counted in `hits` or `misses` (a lookup, not a read: the run reader counts its GETs).
   */
  readonly get: (runId: string, block: number) => ReadonlyArray<Run.Entry> | undefined
  /** Like `get`, but neither counted nor made the most recently used (a re-check before a read). */
  readonly peek: (runId: string, block: number) => ReadonlyArray<Run.Entry> | undefined
  /**
   * Puts block `block` of run `runId` (replacing any held), as the most recently used, evicting
   * the least recently used blocks until the budget holds it; a block over the whole budget is
   * not kept. Returns whether it was kept.
   */
  readonly set: (runId: string, block: number, entries: ReadonlyArray<Run.Entry>) => boolean
  /** Forgets every block of run `runId` (a deleted run). */
  readonly dropRun: (runId: string) => void
  /** Counters and sizes, as of now (a new object each call). */
  readonly stats: () => Stats
}

interface Slot {
  readonly runId: string
  readonly block: number
  readonly entries: ReadonlyArray<Run.Entry>
  readonly cost: number
  /** The move to the most recent end it last had (see `get`). */
  moved: number
}

/** Blocks a run may have: a slot's key is `run number × this + block`, a number (no string built per lookup). */
const blocksPerRun = 2 ** 24

/**
 * A block cache of `capacity` bytes (a non-negative number; 0 keeps nothing). Throws a
 * `RangeError` for a negative or NaN capacity: a caller's bug, checked by the KV's options.
 */
export const make = (capacity: number): BlockCache => {
  if (!(capacity >= 0)) throw new RangeError(`block cache capacity ${capacity}`)
  // a Map iterates in insertion order: re-inserting on every hit keeps it in recency order,
  // the least recently used first
  const slots = new Map<number, Slot>()
  const byRun = new Map<string, Set<number>>()
  // a number per run id seen (the id's string hash is cached by the engine: a lookup is cheap)
  const runNumbers = new Map<string, number>()
  let nextRunNumber = 0
  const slotKey = (runId: string, block: number): number => {
    let n = runNumbers.get(runId)
    if (n === undefined) runNumbers.set(runId, n = nextRunNumber++)
    return n * blocksPerRun + block
  }
  let bytes = 0
  let hits = 0
  let misses = 0
  let evictions = 0
  // moves of a slot to the most recent end so far (inserts included)
  let moves = 0

  const remove = (key: number, slot: Slot): void => {
    slots.delete(key)
    bytes -= slot.cost
    const blocks = byRun.get(slot.runId)
    blocks?.delete(slot.block)
    if (blocks?.size === 0) byRun.delete(slot.runId)
  }

  const evictUntil = (budget: number): void => {
    for (const [key, slot] of slots) {
      if (bytes <= budget) return
      remove(key, slot)
      evictions++
    }
  }

  const get = (runId: string, block: number): ReadonlyArray<Run.Entry> | undefined => {
    const key = slotKey(runId, block)
    const slot = slots.get(key)
    if (slot === undefined) {
      misses++
      return undefined
    }
    hits++
    // Moved to the most recent end only when it is in the older half of the order: a hot block is
    // not moved on every hit (a delete and an insert of the Map), and the order stays close to LRU.
    if (moves - slot.moved > slots.size >> 1) {
      slots.delete(key)
      slots.set(key, slot)
      slot.moved = ++moves
    }
    return slot.entries
  }

  const peek = (runId: string, block: number): ReadonlyArray<Run.Entry> | undefined =>
    slots.get(slotKey(runId, block))?.entries

  const set = (runId: string, block: number, entries: ReadonlyArray<Run.Entry>): boolean => {
    const key = slotKey(runId, block)
    const held = slots.get(key)
    if (held !== undefined) remove(key, held)
    const cost = blockCost(entries)
    if (cost > capacity) return false
    evictUntil(capacity - cost)
    slots.set(key, { runId, block, entries, cost, moved: ++moves })
    bytes += cost
    let blocks = byRun.get(runId)
    if (blocks === undefined) byRun.set(runId, blocks = new Set())
    blocks.add(block)
    return true
  }

  const dropRun = (runId: string): void => {
    const blocks = byRun.get(runId)
    if (blocks === undefined) return
    for (const block of [...blocks]) {
      const key = slotKey(runId, block)
      const slot = slots.get(key)
      if (slot !== undefined) remove(key, slot)
    }
    byRun.delete(runId)
    runNumbers.delete(runId)
  }

  const stats = (): Stats => ({ hits, misses, bytes, blocks: slots.size, evictions, capacity })

  return { capacity, get, peek, set, dropRun, stats }
}

/**
 * Whether runs of `runBytes` bytes in all are small enough for `cache` to hold them all, as
 * decoded blocks, in half of it: a store's runs are read into the cache at open, and a run
 * written is put in it, only then (see `hasRoom`). A bigger store is read on demand: reading
 * a run whole into the cache would cost its decoding (and the collector's copying of all
 * that survives) for blocks that reads may never want.
 */
export const holdsAll = (cache: BlockCache, runBytes: number): boolean => runBytes * 2 <= cache.capacity

/**
 * Whether `cache` takes more blocks of a run written or opened: while it is less than half full,
 * runs are put in it whole, so that a store small enough to be held in memory is read from memory
 * alone; a bigger one is read on demand, block by block.
 */
export const hasRoom = (cache: BlockCache): boolean => cache.stats().bytes < cache.capacity / 2
