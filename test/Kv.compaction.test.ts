// The compaction policy (src/kv/compaction.ts): which of a manifest's runs, newest first, are
// merged next. Pure: no store.
import { assert, describe, it } from "@effect/vitest"
import type * as Manifest from "../schema/Manifest.ts"
import { compactionOf } from "../src/kv/compaction.ts"

const MiB = 1024 * 1024

/** Runs of these sizes (MiB), newest first; a `[size, parts]` pair is one sorted run of several objects. */
const runs = (...sizes: ReadonlyArray<number | readonly [number, number]>): Array<Manifest.RunRef> =>
  sizes.flatMap((size, i) => {
    const [mib, parts] = typeof size === "number" ? [size, 1] : size
    return Array.from({ length: parts }, (_, p): Manifest.RunRef => ({
      id: `r${i}-${p}`,
      entries: 1,
      bytes: (mib * MiB) / parts,
      maxSeq: 100 - i,
      full: false,
      ...(parts > 1 ? { group: `r${i}-0` } : {})
    }))
  })

describe("Kv compaction policy", () => {
  it("merges nothing until four runs of similar size are the newest", () => {
    assert.isUndefined(compactionOf([], 16))
    assert.isUndefined(compactionOf(runs(8), 16))
    assert.isUndefined(compactionOf(runs(8, 8, 8), 16))
    assert.isUndefined(compactionOf(runs(8, 8, 8, 64), 16), "a run four times bigger is another tier")
  })

  it("merges the four newest runs of a tier, and reaches the bottom only when the oldest run is in it", () => {
    assert.deepStrictEqual(compactionOf(runs(8, 8, 8, 8, 64), 16), { count: 4, bottom: false })
    assert.deepStrictEqual(compactionOf(runs(8, 8, 8, 8), 16), { count: 4, bottom: true })
    assert.deepStrictEqual(compactionOf(runs(8, 8, 12, 16, 512), 16), { count: 4, bottom: false }, "sizes within twice the largest newer one")
  })

  it("counts a sorted run written as several objects as one run, and merges all of its objects", () => {
    assert.isUndefined(compactionOf(runs(8, 8, [16, 3]), 16), "three sorted runs, five objects")
    assert.deepStrictEqual(compactionOf(runs(8, 8, 8, [16, 3], 512), 16), { count: 6, bottom: false })
  })

  it("merges every run once there are more than maxRuns, whatever their sizes", () => {
    const many = runs(1, 4, 16, 64, 256, 1024)
    assert.isUndefined(compactionOf(many, 6))
    assert.deepStrictEqual(compactionOf(many, 5), { count: 6, bottom: true })
  })
})
