/**
 * Where the queue's scans of a key range that it consumes from the front begin: the pending jobs
 * of a queue (claims take the first ones), the scheduled jobs and the expiry entries (the
 * scheduler and the sweep take those due). In a store that keeps deletes as tombstones until a
 * compaction drops them (`kv/state.ts`), the front of such a range fills with the tombstones of
 * what was taken; a scan from the range's start would step over all of them, every time.
 *
 * A floor is a key below which the range holds no entry (only deletes): a scan starts there.
 * - `start(prefix)` gives the floor (the prefix at first) and begins watching the range;
 * - `advance(prefix, key)` raises it to `key` once everything below `key` was taken: to the lowest
 *   key put into the range since `start`, if one was put below `key` meanwhile;
 * - every put into the range, told by the engine as its commit is applied (`Engine.watchPuts`),
 *   lowers the floor below it, so no entry is ever below a floor.
 * One scan of a range at a time (claims of a queue hold its lock; the scheduler and the sweep are
 * one fiber each). Floors live in memory, one per range: a writer opening starts at the prefixes.
 *
 * @internal
 */
import type { Engine } from "../kv/engine.ts"
import * as Keys from "./keys.ts"

/** The floor of one range. */
interface Floor {
  key: string
  /** The lowest key put into the range since the scan in progress started, if one is. */
  lowestPut: string | undefined
  watching: boolean
}

/** The floors of the queue's ranges over one engine. */
export interface Floors {
  /** The key to scan the range of `prefix` from, watching puts into it until `advance`. */
  readonly start: (prefix: string) => string
  /** Everything in the range of `prefix` below `key` was taken by the scan that `start` began. */
  readonly advance: (prefix: string, key: string) => void
  /** The floor of the range of `prefix`, for a scan that takes nothing (watching nothing). */
  readonly from: (prefix: string) => string
}

/** Floors over `kv`, told of the puts into the pending, scheduled and expiry ranges. */
export const make = (kv: Engine): Floors => {
  const floors = new Map<string, Floor>()

  const lower = (prefix: string, key: string) => {
    const floor = floors.get(prefix)
    if (floor === undefined) return // never scanned: its floor is its prefix
    if (key < floor.key) floor.key = key
    if (floor.watching && (floor.lowestPut === undefined || key < floor.lowestPut)) floor.lowestPut = key
  }

  kv.watchPuts(Keys.pendingAll, (key) => lower(Keys.pendingPrefixOf(key), key))
  kv.watchPuts(Keys.scheduledPrefix, (key) => lower(Keys.scheduledPrefix, key))
  kv.watchPuts(Keys.expiryPrefix, (key) => lower(Keys.expiryPrefix, key))

  const start = (prefix: string): string => {
    let floor = floors.get(prefix)
    if (floor === undefined) {
      floor = { key: prefix, lowestPut: undefined, watching: false }
      floors.set(prefix, floor)
    }
    floor.watching = true
    floor.lowestPut = undefined
    return floor.key
  }

  const advance = (prefix: string, key: string) => {
    const floor = floors.get(prefix)
    if (floor === undefined || !floor.watching) return
    const to = floor.lowestPut !== undefined && floor.lowestPut < key ? floor.lowestPut : key
    if (to > floor.key) floor.key = to
    floor.watching = false
    floor.lowestPut = undefined
  }

  return { start, advance, from: (prefix) => floors.get(prefix)?.key ?? prefix }
}
