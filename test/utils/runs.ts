// Sorted runs for the run reader's and the merge's tests: random latin1 entries from a seeded
// PRNG, a run written to a store, and the scan a sorted reference gives.
import { Effect } from "effect"
import * as Run from "../../schema/Run.ts"
import type { Prng } from "../../src/internal/prng.ts"
import type { Service as Store } from "../../src/ObjectStore.ts"

/** A latin1 string of `length` chars drawn from `alphabet` (every byte value by default). */
export const randomText = (prng: Prng, length: number, alphabet?: string): string => {
  let out = ""
  for (let i = 0; i < length; i++) {
    out += alphabet === undefined ? String.fromCharCode(prng.int(0, 256)) : alphabet[prng.int(0, alphabet.length)]!
  }
  return out
}

/**
 * A pool of `count` distinct keys that share prefixes (so that keys end inside each other and
 * next to `\u0000` and `\u00ff`), sorted.
 */
export const keyPool = (prng: Prng, count: number): Array<string> => {
  const keys = new Set<string>()
  const alphabet = "\u0000ab\u007f\u0080\u00ff"
  while (keys.size < count) {
    const prefix = ["", "job/", "job/\u0000", "q\u00ff"][prng.int(0, 4)]!
    keys.add(prefix + randomText(prng, prng.int(1, 6), alphabet))
  }
  return [...keys].sort()
}

/** A value: mostly short, sometimes a few KiB (a block of its own), sometimes empty. */
export const randomValue = (prng: Prng): string => {
  const roll = prng.next()
  const length = roll < 0.05 ? 0 : roll < 0.1 ? prng.int(3000, 6000) : prng.int(1, 200)
  return randomText(prng, length)
}

/** Entries for a subset of `keys` (each with probability `density`), `tombstones` of them deletes, in key order. */
export const randomEntries = (
  prng: Prng,
  keys: ReadonlyArray<string>,
  options: { readonly density: number; readonly tombstones: number }
): Array<Run.Entry> =>
  keys.flatMap((key) =>
    prng.next() < options.density ? [[key, prng.next() < options.tombstones ? null : randomValue(prng)] as const] : []
  )

/** Writes the run of `entries` at `key`; its size. */
export const putRun = (store: Store, key: string, entries: Iterable<Run.Entry>) =>
  Effect.gen(function*() {
    const bytes = Run.encode(entries)
    yield* store.put(key, bytes)
    return bytes.length
  })

/**
 * What a scan of `[start, end)` with `limit`, in key order or reversed, gives over `sorted`
 * (key-ordered live entries, no tombstones).
 */
export const expectedScan = (
  sorted: ReadonlyArray<readonly [string, string]>,
  start: string,
  end: string | undefined,
  limit = Number.POSITIVE_INFINITY,
  reverse = false
): Array<readonly [string, string]> => {
  if (limit <= 0 || (end !== undefined && end <= start)) return []
  const inRange = sorted.filter(([k]) => k >= start && (end === undefined || k < end))
  return (reverse ? inRange.reverse() : inRange).slice(0, limit)
}

/** The live entries of a reference map, sorted by key (latin1 strings sort like their bytes). */
export const sortedLive = (reference: ReadonlyMap<string, string | null>): Array<readonly [string, string]> =>
  [...reference].filter((e): e is [string, string] => e[1] !== null).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
