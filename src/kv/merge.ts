/**
 * Reads over several sources of the KV's state, newest first: memtables (`BTree`s whose `null`
 * values are tombstones) and sorted runs read on demand (`runReader.ts`). For each key the
 * newest source that has it decides: its value, or, for a tombstone, that the key is absent.
 *
 * Contract:
 * - `scan` and `get` stay synchronous while the blocks they need are in the cache: a run's block
 *   is read only when the merge cannot go on without it, one block per run at a time, and the
 *   runs that need one at the same point are read concurrently. A block is not read when the
 *   index shows that every key it could hold is past the range, past the limit, or behind an
 *   entry of another source that comes first;
 * - a memtable must not change while a merge runs synchronously over it; when the merge must
 *   wait for a block, it continues over a `clone()` of each memtable (O(1), copy-on-write) taken
 *   then, so a scan sees every source as it was when the scan began, whatever commits land while
 *   it waits. Runs are immutable; a run deleted during a scan fails the scan with the store's
 *   `NotFound` (keeping runs until their readers are done is the caller's business);
 * - `mergeAll` streams everything in chunks with one block per run in memory and without
 *   filling the cache: a memtable's flush, `bucketq verify`. (Compaction, over runs alone,
 *   merges their bytes without decoding them: `rawMerge.ts`.)
 *
 * @internal
 */
import { Effect } from "effect"
import type * as Run from "../../schema/Run.ts"
import { BTree } from "../internal/btree.ts"
import type { Entries } from "./engine.ts"
import { type Cursor, type NotCached, notCached, type ReadError, type RunReader } from "./runReader.ts"

/** A memtable: keys to values, `null` for a delete that hides older sources' values. */
export type Memtable = BTree<string, string | null>

/** A source of entries, in a list newest first: a memtable or a run. */
export type Source = Memtable | RunReader

/** A cursor over a source (see `runReader.Cursor`), which the merge may tell before it waits. */
interface Head extends Cursor {
  /** Called before the merge waits for a block: a memtable cursor moves onto a clone of its tree. */
  readonly detach?: (() => void) | undefined
}

const done = Effect.succeed(undefined)

/** A cursor over a memtable: always ready, synchronous. */
class TreeHead implements Head {
  key: string | undefined = undefined
  entry: Run.Entry | undefined = undefined
  readonly ready = true
  private iterator: Iterator<[string, string | null]> | undefined
  private detached = false

  constructor(private tree: Memtable, from: string | undefined, private readonly reverse: boolean) {
    this.iterator = this.iteratorFrom(from, true)
    this.next()
  }

  /** Forward from `from` (inclusive); reversed from `from`, inclusive or not. */
  private iteratorFrom(from: string | undefined, exclusive: boolean): Iterator<[string, string | null]> | undefined {
    if (!this.reverse) return this.tree.entries(from)
    if (this.tree.size === 0) return undefined
    return from === undefined ? this.tree.entriesReversed() : this.tree.entriesReversed(from, undefined, exclusive)
  }

  next(): void {
    const step = this.iterator?.next()
    if (step === undefined || step.done === true) {
      this.key = undefined
      this.entry = undefined
      this.iterator = undefined
      return
    }
    this.key = step.value[0]
    this.entry = step.value
  }

  fill(): Effect.Effect<void> {
    return done
  }

  detach(): void {
    if (this.detached) return
    this.detached = true
    this.tree = this.tree.clone()
    if (this.key === undefined) return
    // the clone holds what the tree held: start again at the current key, and step past it
    this.iterator = this.iteratorFrom(this.key, false)
    this.iterator?.next()
  }
}

const isMemtable = (source: Source): source is Memtable => source instanceof BTree

/**
 * The merge of cursors newest first, forward in `[start, end)` or reversed from `end` down to
 * `start`. `run` appends the winning entry of each key in turn (the newest head's), until its
 * output is full, the merge is over, or it needs blocks read first (`waiting`).
 */
class Merger {
  /** The cursors to `fill` before running again; empty once `run` returned false. */
  waiting: Array<Head> = []

  constructor(
    private readonly heads: ReadonlyArray<Head>,
    private readonly reverse: boolean,
    private readonly start: string,
    private readonly end: string | undefined
  ) {}

  /** Whether `a` comes before `b` in the direction of travel. */
  private before(a: string, b: string): boolean {
    return this.reverse ? a > b : a < b
  }

  /** Whether `key` is in range, given that it was reached in the direction of travel from its start. */
  private inRange(key: string): boolean {
    return this.reverse ? key >= this.start : this.end === undefined || key < this.end
  }

  /**
   * Appends winning entries to `out` (tombstones too if `keepTombstones`) until it holds `max`.
   * Returns true if it stopped to wait for the blocks of `waiting`, false when full or at the end.
   */
  run(out: Array<Run.Entry>, max: number, keepTombstones: boolean): boolean {
    const heads = this.heads
    while (out.length < max) {
      // the head that comes first (the newest on a tie), the first key of any other head
      // (ready or not), and the first bound of a head waiting for its block
      let best: Head | undefined
      let bestKey: string | undefined
      let other: string | undefined
      let bound: string | undefined
      for (const head of heads) {
        const key = head.key
        if (key === undefined || !this.inRange(key)) continue
        if (!head.ready) {
          if (bound === undefined || this.before(key, bound)) bound = key
        } else if (bestKey === undefined || this.before(key, bestKey)) {
          if (bestKey !== undefined && (other === undefined || this.before(bestKey, other))) other = bestKey
          best = head
          bestKey = key
          continue
        }
        if (other === undefined || this.before(key, other)) other = key
      }
      if (bound !== undefined && (bestKey === undefined || !this.before(bestKey, bound))) {
        // a block not read yet may hold a key that comes first (or the same key, newer)
        const limit = bestKey ?? bound
        this.waiting = heads.filter((h) => !h.ready && h.key !== undefined && !this.before(limit, h.key))
        return true
      }
      if (best === undefined) break
      // the winner; older heads at the same key step past it
      for (const head of heads) if (head !== best && head.ready && head.key === bestKey) head.next()
      // then the winner's own entries, as long as they come before every other head's
      for (;;) {
        const entry = best.entry!
        if (keepTombstones || entry[1] !== null) out.push(entry)
        best.next()
        const key = best.key
        if (
          out.length >= max || !best.ready || key === undefined || !this.inRange(key) ||
          (other !== undefined && !this.before(key, other))
        ) break
      }
    }
    this.waiting = []
    return false
  }

  /** Reads the blocks `waiting` needs, concurrently, memtables detached first. */
  fill(): Effect.Effect<void, ReadError> {
    for (const head of this.heads) head.detach?.()
    const waiting = this.waiting
    return waiting.length === 1
      ? waiting[0]!.fill()
      : Effect.forEach(waiting, (head) => head.fill(), { concurrency: "unbounded", discard: true })
  }
}

/**
 * Cursors over `sources` (newest first): forward from `start`, or reversed from `end` (exclusive;
 * undefined: from the last key).
 */
const headsOf = (
  sources: ReadonlyArray<Source>,
  start: string,
  end: string | undefined,
  reverse: boolean,
  options: { readonly fillCache: boolean; readonly readAhead?: number | undefined }
): Array<Head> =>
  sources.map((source) => {
    const from = reverse ? end : start
    return isMemtable(source)
      ? new TreeHead(source, from, reverse)
      : source.cursor(from, { reverse, ...options })
  })

/**
 * At most `limit` entries of `[start, end)` (`end` undefined: no upper bound), in key order or
 * reversed, merged from `sources` newest first: the newest version of each key, tombstones
 * hiding older versions and not returned. Synchronous (one `Effect.succeed`) when every block
 * it needs is in the cache; otherwise it reads them a block per run at a time (see the file
 * header), and fails with `Corrupt` or the store's error if a read does.
 */
export const scan = (
  sources: ReadonlyArray<Source>,
  start: string,
  end: string | undefined,
  limit = Number.POSITIVE_INFINITY,
  reverse = false,
  hold?: Hold
): Effect.Effect<Entries, ReadError> =>
  Effect.suspend(() => {
    const out: Entries = []
    if (limit <= 0 || (end !== undefined && end <= start)) return Effect.succeed(out)
    const merger = new Merger(headsOf(sources, start, end, reverse, { fillCache: true }), reverse, start, end)
    // without tombstones, every entry appended has a string value
    const go = (): Effect.Effect<Entries, ReadError> =>
      merger.run(out as Array<Run.Entry>, limit, false) ? Effect.flatMap(merger.fill(), go) : Effect.succeed(out)
    if (!merger.run(out as Array<Run.Entry>, limit, false)) return Effect.succeed(out)
    return held(sources, hold, Effect.flatMap(merger.fill(), go))
  })

/**
 * Holds the runs a read needs while it waits for the store: `hold(sources)` marks them in use and
 * returns what lets them go (so that they are not deleted under the read, see `kv/writer.ts`'s
 * garbage collection). A read that stays in memory holds nothing.
 */
export type Hold = (sources: ReadonlyArray<Source>) => () => void

/** `read` with the runs of `sources` held by `hold` (if any) until it ends. */
const held = <A>(sources: ReadonlyArray<Source>, hold: Hold | undefined, read: Effect.Effect<A, ReadError>): Effect.Effect<A, ReadError> => {
  if (hold === undefined) return read
  const release = hold(sources)
  return Effect.ensuring(read, Effect.sync(release))
}

/** A `Hold` counting the reads in progress of each run in `inUse` (by run id). */
export const holder = (inUse: Map<string, number>): Hold => (sources) => {
  const ids: Array<string> = []
  for (const source of sources) {
    if (isMemtable(source)) continue
    ids.push(source.id)
    inUse.set(source.id, (inUse.get(source.id) ?? 0) + 1)
  }
  return () => {
    for (const id of ids) {
      const n = (inUse.get(id) ?? 1) - 1
      if (n === 0) inUse.delete(id)
      else inUse.set(id, n)
    }
  }
}

/**
 * The value of `key`: from the newest source that has it (a tombstone there: undefined), or
 * undefined. Sources are asked newest first and the first that has the key ends the search; a
 * run is asked only if its index shows a block that may hold the key, and reads that block (one
 * GET) only if it is not in the cache.
 */
export const get = (sources: ReadonlyArray<Source>, key: string, hold?: Hold): Effect.Effect<string | undefined, ReadError> => {
  let waited = false
  const from = (first: number): Effect.Effect<string | undefined, ReadError> => {
    for (let i = first; i < sources.length; i++) {
      const source = sources[i]!
      const found = isMemtable(source) ? source.get(key) : source.getCached(key)
      if (found === notCached) {
        const fetched = Effect.flatMap((source as RunReader).fetchValue(key), (value) =>
          value === undefined ? from(i + 1) : Effect.succeed(value ?? undefined))
        if (waited) return fetched
        waited = true
        return held(sources, hold, fetched)
      }
      if (found !== undefined) return Effect.succeed(found ?? undefined)
    }
    return Effect.succeed(undefined)
  }
  return Effect.suspend(() => from(0))
}

/**
 * `get` answered from memory alone: the value (undefined: none), or `notCached` when a block of a
 * run that may hold the key is not in the cache. Synchronous, no request.
 */
export const getResident = (sources: ReadonlyArray<Source>, key: string): string | undefined | NotCached => {
  for (const source of sources) {
    const found = isMemtable(source) ? source.get(key) : source.getCached(key)
    if (found === notCached) return notCached
    if (found !== undefined) return found ?? undefined
  }
  return undefined
}

/**
 * `scan` (forward) answered from memory alone: the entries, or `notCached` when it would need a
 * block that is not in the cache. Synchronous, no request.
 */
export const scanResident = (
  sources: ReadonlyArray<Source>,
  start: string,
  end: string | undefined,
  limit = Number.POSITIVE_INFINITY
): Entries | NotCached => {
  const out: Array<Run.Entry> = []
  if (limit <= 0 || (end !== undefined && end <= start)) return out as Entries
  const merger = new Merger(headsOf(sources, start, end, false, { fillCache: true }), false, start, end)
  return merger.run(out, limit, false) ? notCached : out as Entries
}

/** Options of `mergeAll`. */
export interface MergeAllOptions {
  /** Keep the newest tombstone of each key that has one (a merge above older runs); drop them (the bottom run). */
  readonly keepTombstones: boolean
  /** Entries per chunk, at most (default 1024). */
  readonly chunk?: number | undefined
  /** Put the blocks read into the cache (default false: a full scan would evict what reads need). */
  readonly fillCache?: boolean | undefined
  /**
   * Read each run in spans of up to this many bytes, one GET a span (default 0: a GET a block).
   * Memory: a span per run. See `runReader.CursorOptions.readAhead`.
   */
  readonly readAhead?: number | undefined
}

/**
 * Pulls the next chunk of a `mergeAll`: up to `chunk` entries in key order (an empty chunk
 * only at the end, and after it).
 */
export type Pull = Effect.Effect<ReadonlyArray<Run.Entry>, ReadError>

/**
 * Every key of `sources` (newest first) in order with its newest version, in chunks pulled one
 * at a time: compaction's input, in bounded memory (one block per run, one chunk). Tombstones
 * are kept or dropped as `options.keepTombstones` says. The pull is not safe to run twice at once.
 */
export const mergeAll = (sources: ReadonlyArray<Source>, options: MergeAllOptions): Pull => {
  const chunk = Math.max(1, options.chunk ?? 1024)
  let merger: Merger | undefined
  return Effect.suspend(() => {
    merger ??= new Merger(
      headsOf(sources, "", undefined, false, { fillCache: options.fillCache === true, readAhead: options.readAhead }),
      false,
      "",
      undefined
    )
    const m = merger
    const out: Array<Run.Entry> = []
    const go = (): Effect.Effect<ReadonlyArray<Run.Entry>, ReadError> =>
      m.run(out, chunk, options.keepTombstones) ? Effect.flatMap(m.fill(), go) : Effect.succeed(out)
    return go()
  })
}

/**
 * What a run is written from: each call adds the next entries to `encoder` (a chunk at most,
 * and none once it holds `untilBytes` bytes), then tells whether any may be left (false: all
 * were added). The writer calls it, yielding between calls, and starts a new object of the run
 * whenever the encoder is full. Not safe to call twice at once.
 */
export type Feed = (encoder: Run.Encoder, untilBytes: number) => Effect.Effect<boolean, ReadError>

/** A `Feed` of the entries `pull` gives (a `mergeAll`), in its chunks. */
export const feedOf = (pull: Pull): Feed => {
  let chunk: ReadonlyArray<Run.Entry> = []
  let at = 0
  let ended = false
  const addFrom = (encoder: Run.Encoder, untilBytes: number): void => {
    while (at < chunk.length && encoder.bytes < untilBytes) {
      const [key, value] = chunk[at++]!
      encoder.add(key, value)
    }
  }
  return (encoder, untilBytes) =>
    Effect.suspend(() => {
      if (at < chunk.length) {
        addFrom(encoder, untilBytes)
        return Effect.succeed(true)
      }
      if (ended) return Effect.succeed(false)
      return Effect.map(pull, (next) => {
        chunk = next
        at = 0
        ended = next.length === 0
        addFrom(encoder, untilBytes)
        return !ended
      })
    })
}
