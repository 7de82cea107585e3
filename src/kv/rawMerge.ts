/**
 * Compaction's merge, on the runs' own bytes: the newest version of every key of some runs, in
 * key order, written into a `Run.Encoder` entry by entry as the runs hold them (`addRaw`),
 * never decoded into strings. It gives what `merge.mergeAll` gives over the same runs, for a
 * fraction of the work and next to no garbage: decoding every key and value of a compaction
 * into strings and encoding them again was most of a writer's CPU under a large backlog, and
 * its garbage the collector's pauses, which claims waited behind.
 *
 * Contract:
 * - the sources are runs, newest first; for each key the newest run that has it decides; its
 *   tombstone is written when `keepTombstones`, else the key is left out;
 * - each run is read in spans of up to `readAhead` bytes, one GET a span
 *   (`RunReader.readAheadRaw`), a span per run in memory at most; nothing is cached;
 * - every block is checked as the merge enters it (CRC32), and its entries as the merge passes
 *   them: their bounds, their tag, key order, the block's first and last keys and its entry
 *   count against the index. Damage is `Corrupt` naming the run; the merge then fails, and
 *   what it wrote so far is never used (a compaction's output is referenced only once whole);
 * - keys compare as their bytes do, which is their order as latin1 strings (`<`): the order of
 *   every other read of the runs.
 *
 * @internal
 */
import { Effect } from "effect"
import * as Run from "../../schema/Run.ts"
import { DecodeError, Reader } from "../internal/binary.ts"
import { Corrupt } from "../KvError.ts"
import type { Feed } from "./merge.ts"
import type { ReadError, RunReader } from "./runReader.ts"

/** Compares `a[aStart, aEnd)` with `b[bStart, bEnd)` as byte strings: negative, zero or positive. */
export const compareBytes = (a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): number => {
  const aLength = aEnd - aStart
  const bLength = bEnd - bStart
  const n = aLength < bLength ? aLength : bLength
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!
    if (d !== 0) return d
  }
  return aLength - bLength
}

/** Whether `bytes[start, end)` is `s` in latin1 (one byte per char code). */
const equalsLatin1 = (bytes: Uint8Array, start: number, end: number, s: string): boolean => {
  if (end - start !== s.length) return false
  for (let i = 0; i < s.length; i++) if (bytes[start + i] !== s.charCodeAt(i)) return false
  return true
}

const noBytes = new Uint8Array(0)

/**
 * A run read forward block by block on its bytes. When `ready` and not `done`, `entry` locates
 * the entry it stands on in `block`; when not `ready`, it waits for its next block (`fill`).
 */
class RawHead {
  readonly entry = new Run.EntryBounds()
  /** The current block's entries (CRC32 checked and cut off). */
  block: Uint8Array = noBytes
  /** Where in `block` the next entry begins. */
  private cursor = new Reader(noBytes)
  ready: boolean
  done: boolean
  private index = -1
  /** Entries passed in the current block, the one at the head included. */
  private seen = 0

  constructor(
    private readonly reader: RunReader,
    private readonly load: (i: number) => Effect.Effect<Uint8Array, ReadError>
  ) {
    this.done = reader.blocks.length === 0
    this.ready = this.done
  }

  /** Reads the next block and stands on its first entry. */
  fill(): Effect.Effect<void, ReadError> {
    const i = this.index + 1
    return Effect.flatMap(this.load(i), (withCrc) =>
      Effect.suspend(() => {
        try {
          this.block = Run.blockBody(withCrc)
        } catch (error) {
          return Effect.fail(this.corrupt(i, error))
        }
        this.cursor = new Reader(this.block)
        this.index = i
        this.seen = 0
        this.ready = true
        return guarded(() => this.advance())
      }))
  }

  /** Moves to the next entry; throws `Corrupt` if the block is damaged. */
  next(): void {
    this.advance()
  }

  /**
   * Stands on the block's next entry, or past the block's end. Every check of an
   * entry is made before the merge may write it: its bounds and tag, its key's order, and the
   * index's first key, last key (at the entry the count makes the last) and count.
   */
  private advance(): void {
    const ref = this.reader.blocks[this.index]!
    const entry = this.entry
    if (this.cursor.done) {
      if (this.seen !== ref.entries) throw this.corrupt(this.index, `it has ${this.seen} entries, the index says ${ref.entries}`)
      this.block = noBytes
      if (this.index + 1 < this.reader.blocks.length) this.ready = false
      else this.done = true
      return
    }
    if (this.seen === ref.entries) throw this.corrupt(this.index, `it has more entries than the index's ${ref.entries}`)
    const previousStart = entry.keyStart
    const previousEnd = entry.keyEnd
    try {
      entry.read(this.cursor)
    } catch (error) {
      throw this.corrupt(this.index, error)
    }
    if (this.seen === 0) {
      if (!equalsLatin1(this.block, entry.keyStart, entry.keyEnd, ref.firstKey)) throw this.corrupt(this.index, "its first key is not the index's")
    } else if (compareBytes(this.block, previousStart, previousEnd, this.block, entry.keyStart, entry.keyEnd) >= 0) {
      throw this.corrupt(this.index, `its keys are out of order at entry ${this.seen}`)
    }
    this.seen++
    if (this.seen === ref.entries && !equalsLatin1(this.block, entry.keyStart, entry.keyEnd, ref.lastKey)) {
      throw this.corrupt(this.index, "its last key is not the index's")
    }
  }

  private corrupt(i: number, cause: unknown): Corrupt {
    const detail = cause instanceof DecodeError ? cause.message : String(cause)
    return new Corrupt({ key: this.reader.key, detail: `block ${i}: ${detail}` })
  }
}

/** `f()` as an effect: a `Corrupt` it throws is the effect's failure; anything else is a defect. */
const guarded = <A>(f: () => A): Effect.Effect<A, Corrupt> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (error) {
      if (error instanceof Corrupt) return Effect.fail(error)
      throw error
    }
  })

/** How a step of the merge ended: a chunk done, a head waiting for its block, or the end. */
type Outcome = "more" | "wait" | "end"

/** Keys a feed call may still pass (a chunk's worth at its start). */
interface Budget {
  keys: number
}

/**
 * Moves the merge on by the keys `budget` allows, writing the winners into `encoder`, and stops
 * early once `encoder` holds `untilBytes` or a head must read its next block.
 */
const step = (
  heads: ReadonlyArray<RawHead>,
  encoder: Run.Encoder,
  budget: Budget,
  untilBytes: number,
  keepTombstones: boolean
): Outcome => {
  for (; budget.keys > 0 && encoder.bytes < untilBytes; budget.keys--) {
    // the head with the lowest key; the newest (first) one on a tie
    let best: RawHead | undefined
    for (const head of heads) {
      if (head.done) continue
      if (!head.ready) return "wait"
      if (
        best === undefined ||
        compareBytes(head.block, head.entry.keyStart, head.entry.keyEnd, best.block, best.entry.keyStart, best.entry.keyEnd) < 0
      ) best = head
    }
    if (best === undefined) return "end"
    const won = best.entry
    // older versions of the same key are passed over
    for (const head of heads) {
      if (head === best || head.done) continue
      if (compareBytes(head.block, head.entry.keyStart, head.entry.keyEnd, best.block, won.keyStart, won.keyEnd) === 0) head.next()
    }
    if (keepTombstones || !won.tombstone) encoder.addRaw(best.block, won.start, won.end, won.keyStart, won.keyEnd)
    best.next()
  }
  return "more"
}

/** Options of `mergeRuns`. */
export interface MergeRunsOptions {
  /** Write the newest tombstone of each key that has one (a merge above older runs), or drop them (the bottom run). */
  readonly keepTombstones: boolean
  /** Read each run in spans of up to this many bytes, one GET a span. */
  readonly readAhead: number
  /** Keys passed per call of the feed, at most: the work done between two yields. */
  readonly chunk: number
}

/**
 * The merge of `runs` (newest first) as a `Feed`: each call moves it on by up to `chunk` keys
 * into the encoder it is given. Not safe to call twice at once.
 */
export const mergeRuns = (runs: ReadonlyArray<RunReader>, options: MergeRunsOptions): Feed => {
  const heads = runs.map((run) => new RawHead(run, run.readAheadRaw(options.readAhead)))
  const fillWaiting = Effect.suspend(() => {
    const waiting = heads.filter((head) => !head.ready)
    return Effect.forEach(waiting, (head) => head.fill(), { concurrency: "unbounded", discard: true })
  })
  return (encoder, untilBytes) => {
    // one budget across the blocks read on the way: a span in hand is read without a yield
    const budget: Budget = { keys: options.chunk }
    const go: Effect.Effect<boolean, ReadError> = Effect.flatMap(
      guarded(() => step(heads, encoder, budget, untilBytes, options.keepTombstones)),
      (outcome) => outcome === "wait" ? Effect.flatMap(fillWaiting, () => go) : Effect.succeed(outcome === "more")
    )
    return go
  }
}
