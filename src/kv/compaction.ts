/**
 * The compaction policy: which runs of a manifest to merge next, size-tiered. The manifest lists
 * its runs newest first; a sorted run written as several objects (`RunRef.group`) counts as one.
 *
 * - **Tiers.** From the newest run on, a run joins the tier of the newer ones while it is at most
 *   twice the size of the largest of them; once `fanIn` (4) runs form a tier, they are merged into
 *   one, about four times their size. So runs grow by four at each merge, every byte is rewritten
 *   once per tier it climbs (log4 of the state over the memtable: 5 times for 8 GiB over 8 MiB),
 *   and a read merges at most three runs per tier (about 15 for 8 GiB) plus the newest.
 * - **Bound.** With more than `maxRuns` runs, all of them are merged, whatever their sizes.
 * - **Deletes.** A merge that reaches the oldest run (`bottom`) has nothing under it: its output
 *   drops the tombstones; any other keeps them, to hide the older runs' values.
 *
 * Merging only the newest runs keeps the list ordered by age: the output takes their place at
 * the front.
 *
 * @internal
 */
import type * as Manifest from "../../schema/Manifest.ts"

/** Runs of similar size merged at once. */
export const fanIn = 4

/** A compaction to do: merge the first `count` runs of the manifest's list; `bottom`: they are all of them. */
export interface Plan {
  readonly count: number
  readonly bottom: boolean
}

/** The sorted runs of `runs` (newest first): how many objects each spans, and its bytes. */
const sortedRuns = (runs: ReadonlyArray<Manifest.RunRef>): Array<{ objects: number; bytes: number }> => {
  const out: Array<{ objects: number; bytes: number }> = []
  let group: string | undefined
  for (const run of runs) {
    const last = out[out.length - 1]
    if (last !== undefined && run.group !== undefined && run.group === group) {
      last.objects++
      last.bytes += run.bytes
    } else out.push({ objects: 1, bytes: run.bytes })
    group = run.group
  }
  return out
}

/** The compaction to do next on `runs` (a manifest's, newest first), or undefined when none is due. */
export const compactionOf = (runs: ReadonlyArray<Manifest.RunRef>, maxRuns: number): Plan | undefined => {
  const sorted = sortedRuns(runs)
  if (sorted.length < 2) return undefined
  const take = (n: number): Plan => ({
    count: sorted.slice(0, n).reduce((sum, r) => sum + r.objects, 0),
    bottom: n === sorted.length
  })
  let largest = sorted[0]!.bytes
  let n = 1
  while (n < sorted.length && sorted[n]!.bytes <= 2 * largest) largest = Math.max(largest, sorted[n++]!.bytes)
  if (n >= fanIn) return take(n)
  if (sorted.length > maxRuns) return take(sorted.length)
  return undefined
}
