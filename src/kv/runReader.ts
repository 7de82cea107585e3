/**
 * Reading a sorted run (`runs/<ulid>`, format in `schema/Run.ts`) on demand, with ranged GETs:
 * the footer and the block index once at `open` (two GETs), then one block at a time, through
 * the shared block cache (`blockCache.ts`).
 *
 * Contract:
 * - every byte read is checked before anything is taken from it: the footer's magic and layout
 *   against the object's size (known from the manifest), the index's CRC32 and structure (blocks
 *   contiguous, in key order, entry counts adding up to the footer's), each block's CRC32, entry
 *   count, first and last keys and key order. Any damage (a flipped bit, a truncated or replaced
 *   object, a wrong size) is `Corrupt` naming the object's key: never a wrong value, never a
 *   defect. A GET that answers with another object size than expected, or with another ETag
 *   than the first GET's (the object was replaced: run keys are never reused; S3's ETag of the
 *   same bytes is the same, which is as good), is `Corrupt` too;
 * - a missing object is the store's `ObjectStoreError` (`NotFound`); the store's `InvalidKey` and
 *   `InvalidRange` cannot happen for a valid run key (ranges are checked against the size first)
 *   and are defects;
 * - a block missing from the cache is read with one GET, shared by every fiber that wants it at
 *   the same time (single flight); an interrupted reader leaves it to the next one;
 * - every GET issued is counted in `stats` (which callers may share between readers);
 * - the reader holds only the index (`indexBytes`); blocks live in the cache or in cursors.
 *
 * @internal
 */
import { Deferred, Effect, Exit } from "effect"
import * as Run from "../../schema/Run.ts"
import { DecodeError } from "../internal/binary.ts"
import { Corrupt } from "../KvError.ts"
import type { Service as Store } from "../ObjectStore.ts"
import type { ReadError } from "../Kv.ts"
import type { BlockCache } from "./blockCache.ts"
import { decodeOrCorrupt } from "./recovery.ts"

const headerBytes = Run.headerBytes

/**
 * Heap bytes charged per block of an index beyond its two keys' characters: the `BlockRef`
 * object (5 fields), two string headers, the index array's slot.
 */
export const indexEntryOverhead = 128

/** The errors of reading a run: the KV's own read errors (`Kv.ReadError`). */
export type { ReadError }

/** A decoded block: its entries in key order (`null` value: a tombstone). */
export type Block = ReadonlyArray<Run.Entry>

/**
 * Counters of the store requests of one or more readers (pass the same object to every reader
 * of a KV to add theirs up).
 */
export interface ReadStats {
  /** GETs issued (footer, index and block reads; the store's own retries not counted). */
  gets: number
  /** Bytes those GETs returned. */
  bytes: number
}

/** New zeroed counters. */
export const makeStats = (): ReadStats => ({ gets: 0, bytes: 0 })

/** What `open` needs besides the store and the key. */
export interface OpenOptions {
  /** The object's size in bytes (the manifest's `RunRef.bytes`). */
  readonly bytes: number
  /** The block cache shared by every run. */
  readonly cache: BlockCache
  /** The name the run's blocks are cached under (default: `key`): unique per run. */
  readonly id?: string | undefined
  /** Where to count GETs (default: counters of its own). */
  readonly stats?: ReadStats | undefined
}

/** `RunReader.getCached`'s answer when the block that may hold the key is not in the cache. */
export const notCached: unique symbol = Symbol.for("bucketq/kv/runReader/notCached")

/** `RunReader.getCached`'s answer when the block that may hold the key is not in the cache. */
export type NotCached = typeof notCached

/**
 * A position in a run, moving block by block in key order (or reversed). `key` is the key of the
 * entry there when `ready`; when not `ready`, the cursor waits for a block not in the cache and
 * `key` is a bound of every key left (the lowest possible forward, the highest reversed); when
 * `key` is undefined the cursor is past its last entry. A cursor keeps the block it stands in
 * (even if the cache evicts it), and only that one.
 */
export interface Cursor {
  readonly key: string | undefined
  /** The entry at the cursor (the block's own: not to be changed); only when `ready` and `key` is defined. */
  readonly entry: Run.Entry | undefined
  readonly ready: boolean
  /** Moves to the next entry (synchronous; needs `ready` and a defined `key`). */
  readonly next: () => void
  /** Reads the block the cursor waits for (needs `ready` false), then stands on its first entry due. */
  readonly fill: () => Effect.Effect<void, ReadError>
}

/** Options of `RunReader.cursor`. */
export interface CursorOptions {
  /** Move from high keys to low (default false). */
  readonly reverse?: boolean | undefined
  /**
   * Put the blocks read into the cache (default true). A scan of everything (compaction) passes
   * false, so as not to evict the blocks that reads need; blocks already cached are used either way.
   */
  readonly fillCache?: boolean | undefined
  /**
   * Forward cursors only: read the blocks ahead in spans of up to this many bytes, one GET a
   * span, held raw by the cursor and checked block by block as it enters them (default 0: a GET
   * a block, through the cache). What a scan of everything (compaction) wants: a few large
   * requests, not one per 4 KiB block. Blocks read so are not cached.
   */
  readonly readAhead?: number | undefined
}

/** Consecutive blocks `first` to `last` of a run, as read with one GET: their bytes from `base` on. */
interface Span {
  readonly first: number
  readonly last: number
  readonly base: number
  readonly bytes: Uint8Array
}

/** A sorted run opened for reading on demand. */
export interface RunReader {
  /** The object's key. */
  readonly key: string
  /** The name of the run's blocks in the cache. */
  readonly id: string
  /** The object's size in bytes. */
  readonly bytes: number
  /** The block index, in key order. */
  readonly blocks: ReadonlyArray<Run.BlockRef>
  /** Entries in the run (tombstones included). */
  readonly entries: number
  /** The lowest key in the run, undefined for an empty run. */
  readonly firstKey: string | undefined
  /** The highest key in the run, undefined for an empty run. */
  readonly lastKey: string | undefined
  /** Estimated heap bytes of the index (keys' characters plus `indexEntryOverhead` per block). */
  readonly indexBytes: number
  /** Where the reader counts its GETs. */
  readonly stats: ReadStats
  /** The first block whose last key is at least `key`: the only one that may hold it; `blocks.length` if none. */
  readonly blockFor: (key: string) => number
  /** The last block whose first key is below `end` (every block if undefined); -1 if none. */
  readonly blockBefore: (end: string | undefined) => number
  /** Block `i` if it is in the cache (made the most recently used there), else undefined. */
  readonly cachedBlock: (i: number) => Block | undefined
  /** Block `i`: from the cache, or one ranged GET (checked, then cached unless `fillCache` is false). */
  readonly block: (i: number, options?: { readonly fillCache?: boolean | undefined }) => Effect.Effect<Block, ReadError>
  /**
   * The value of `key` in this run: a string, `null` for a tombstone here, undefined if the run
   * does not have it; `notCached` if the block that may hold it is not in the cache (then
   * `fetchValue`). No request is made.
   */
  readonly getCached: (key: string) => string | null | undefined | NotCached
  /** `get` after `getCached` answered `notCached`: reads the block (filling the cache), then looks. */
  readonly fetchValue: (key: string) => Effect.Effect<string | null | undefined, ReadError>
  /** The value of `key` in this run (see `getCached`); at most one GET, none for a key outside every block. */
  readonly get: (key: string) => Effect.Effect<string | null | undefined, ReadError>
  /**
   * A loader of blocks in spans of up to `maxBytes` (see `CursorOptions.readAhead`): block `i`
   * from the span it holds, or from the next span read from `i` on; nothing cached. For reading
   * blocks in key order, as a cursor reading ahead does.
   */
  readonly readAhead: (maxBytes: number) => (i: number) => Effect.Effect<Block, ReadError>
  /**
   * `readAhead` without the decoding: block `i`'s bytes followed by their CRC32, as read,
   * unchecked (the caller checks them: `Run.blockBody`, and the index's first and last keys and
   * entry count). For merging runs on their bytes (`rawMerge.ts`).
   */
  readonly readAheadRaw: (maxBytes: number) => (i: number) => Effect.Effect<Uint8Array, ReadError>
  /**
   * A cursor from `from`: forward, at the first key at least `from` (undefined: the first key);
   * reversed, at the last key strictly below `from` (undefined: the last key). No request is
   * made until `fill`.
   */
  readonly cursor: (from: string | undefined, options?: CursorOptions) => Cursor
}

const fail = (detail: string): never => {
  throw new DecodeError(detail)
}

/** The index's place, from the footer, checked against the object's size. */
const layout = (footer: Uint8Array, size: number) => {
  const { entries, indexLength, indexOffset } = Run.readFooter(footer)
  if (indexOffset < headerBytes || indexOffset + indexLength !== size - Run.footerBytes) {
    fail(`footer puts the index at [${indexOffset}, ${indexOffset + indexLength}) in an object of ${size} bytes`)
  }
  return { entries, indexLength, indexOffset }
}

/** The index, checked (CRC32, then structure) against the footer. */
const checkedIndex = (indexBytes: Uint8Array, footer: Uint8Array, indexOffset: number, entries: number) => {
  const blocks = Run.readIndex(indexBytes, footer)
  let offset = headerBytes
  let total = 0
  let previous: Run.BlockRef | undefined
  for (const [i, block] of blocks.entries()) {
    if (block.offset !== offset) fail(`block ${i} at ${block.offset}, expected at ${offset}`)
    if (block.entries < 1 || block.length < 1) fail(`block ${i} is empty`)
    if (block.firstKey > block.lastKey) fail(`block ${i}'s first key is after its last`)
    if (previous !== undefined && previous.lastKey >= block.firstKey) fail(`block ${i} does not start after block ${i - 1}`)
    offset += block.length + 4
    total += block.entries
    previous = block
  }
  if (offset !== indexOffset) fail(`blocks end at ${offset}, the index starts at ${indexOffset}`)
  if (total !== entries) fail(`blocks hold ${total} entries, the footer says ${entries}`)
  return blocks
}

/** A block's entries, checked (CRC32, count) and matched against its index entry and key order. */
const checkedBlock = (i: number, ref: Run.BlockRef) => (bytes: Uint8Array): Block => {
  const entries = Run.readBlock(bytes, ref.entries)
  if (entries[0]![0] !== ref.firstKey || entries[entries.length - 1]![0] !== ref.lastKey) {
    fail(`block ${i}'s keys do not match the index`)
  }
  for (let j = 1; j < entries.length; j++) {
    if (entries[j - 1]![0] >= entries[j]![0]) fail(`block ${i}'s keys are out of order at entry ${j}`)
  }
  return entries
}

/** The first index in `[0, n)` where `below(i)` is false (`below` true then false along it). */
const partition = (n: number, below: (i: number) => boolean): number => {
  let lo = 0
  let hi = n
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (below(mid)) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The first entry of `block` whose key is at least `key` (`block.length` if none). */
export const lowerBound = (block: Block, key: string): number => partition(block.length, (i) => block[i]![0] < key)

/** The value of `key` in `block`: a string, `null` (tombstone), or undefined if absent. */
const search = (block: Block, key: string): string | null | undefined => {
  const i = lowerBound(block, key)
  const entry = block[i]
  return entry !== undefined && entry[0] === key ? entry[1] : undefined
}

/**
 * Opens the run at `key` of `options.bytes` bytes: reads its footer (the last 24 bytes) and its
 * block index, each with one ranged GET, and checks both. No block is read.
 */
export const open = (store: Store, key: string, options: OpenOptions): Effect.Effect<RunReader, ReadError> =>
  Effect.gen(function*() {
    const size = options.bytes
    const stats = options.stats ?? makeStats()
    if (!Number.isSafeInteger(size) || size < headerBytes + Run.footerBytes) {
      return yield* new Corrupt({ key, detail: `${size} bytes, too short for a run` })
    }
    const identity: Identity = { etag: undefined }
    const read = ranged(store, key, size, stats, identity)
    const footer = yield* read(size - Run.footerBytes, size)
    const { entries, indexLength, indexOffset } = yield* decodeOrCorrupt(key, footer, (f) => layout(f, size))
    const indexBytes = yield* read(indexOffset, indexOffset + indexLength)
    const blocks = yield* decodeOrCorrupt(key, indexBytes, (b) => checkedIndex(b, footer, indexOffset, entries))
    return makeReader(store, key, size, blocks, entries, { ...options, stats }, identity)
  })

/**
 * A reader of the run `object` already in hand (a run just written, say), under `key`: its
 * footer and index are parsed from it, with the same checks as `open`, and no request is made.
 * Blocks are read from the store later, as with `open` (the object is not kept).
 */
export const fromObject = (
  store: Store,
  key: string,
  object: Uint8Array,
  options: Omit<OpenOptions, "bytes"> & {
    /** The object's ETag (`put` returned it), if known; else the first block read names the object. */
    readonly etag?: string | undefined
  }
): Effect.Effect<RunReader, Corrupt> =>
  decodeOrCorrupt(key, object, (bytes) => {
    const size = bytes.length
    if (size < headerBytes + Run.footerBytes) fail(`${size} bytes, too short for a run`)
    const footer = bytes.subarray(size - Run.footerBytes)
    const { entries, indexLength, indexOffset } = layout(footer, size)
    const blocks = checkedIndex(bytes.subarray(indexOffset, indexOffset + indexLength), footer, indexOffset, entries)
    const identity: Identity = { etag: options.etag }
    return makeReader(store, key, size, blocks, entries, { ...options, stats: options.stats ?? makeStats() }, identity)
  })

/**
 * The span a read of a whole run takes at once (`readAhead`): compaction, `warm`, `verify`. On
 * S3 a GiB of runs is then about a thousand GETs, not a quarter million of a block each; on the
 * directory backend a few large reads off the event loop, not four system calls a 4 KiB block.
 * Memory: a span per run being read.
 */
export const wholeRunReadAhead = 1024 * 1024

/**
 * Puts blocks of the run `reader` reads into its cache, in key order, while `room()` holds:
 * decoded from `object` (the run in hand, just written: no request) or else read from the store
 * (a run opened) a span at a time (`wholeRunReadAhead`). What a store small enough to be held
 * in memory does, so that its reads never wait for the store.
 */
export const warm = (reader: RunReader, cache: BlockCache, room: () => boolean, object?: Uint8Array): Effect.Effect<void, ReadError> =>
  Effect.gen(function*() {
    const load = object === undefined ? reader.readAhead(wholeRunReadAhead) : inHand(reader, object)
    for (let i = 0; i < reader.blocks.length && room(); i++) {
      if (cache.peek(reader.id, i) === undefined) cache.set(reader.id, i, yield* load(i))
      // a run in hand is decoded without a wait: slices of 16 blocks keep commits moving
      if (i % 16 === 15) yield* Effect.yieldNow
    }
  })

/** Block `i` of the run `reader` reads, decoded from `object`, the run's bytes in hand. */
const inHand = (reader: RunReader, object: Uint8Array) => (i: number): Effect.Effect<Block, Corrupt> => {
  const ref = reader.blocks[i]!
  return decodeOrCorrupt(reader.key, object.subarray(ref.offset, ref.offset + ref.length + 4), checkedBlock(i, ref))
}

/** The ETag of the object a reader reads, once known: every read must find that same object. */
interface Identity {
  etag: string | undefined
}

/**
 * One ranged GET of `[start, end)` of `key` (a valid range of an object of `size` bytes),
 * counted in `stats`; `Corrupt` if the object's size is not `size`, if it is not the object
 * `identity` names (the first read names it), or if the bytes fall short.
 */
const ranged = (store: Store, key: string, size: number, stats: ReadStats, identity: Identity) => (start: number, end: number) =>
  Effect.suspend(() => {
    stats.gets++
    return store.get(key, { range: { start, end } })
  }).pipe(
    Effect.catchTag(["InvalidKey", "InvalidRange"], (error) => Effect.die(error)),
    Effect.flatMap((object): Effect.Effect<Uint8Array, Corrupt> => {
      stats.bytes += object.bytes.length
      if (object.size !== size) {
        return Effect.fail(new Corrupt({ key, detail: `object of ${object.size} bytes, the manifest says ${size}` }))
      }
      identity.etag ??= object.etag
      if (object.etag !== identity.etag) {
        return Effect.fail(new Corrupt({ key, detail: `the object was replaced since it was opened (ETag ${object.etag}, was ${identity.etag})` }))
      }
      if (object.bytes.length !== end - start) {
        return Effect.fail(new Corrupt({ key, detail: `read ${object.bytes.length} bytes of [${start}, ${end})` }))
      }
      return Effect.succeed(object.bytes)
    })
  )

const makeReader = (
  store: Store,
  key: string,
  size: number,
  blocks: ReadonlyArray<Run.BlockRef>,
  entries: number,
  options: Omit<OpenOptions, "bytes"> & { readonly stats: ReadStats },
  identity: Identity
): RunReader => {
  const { cache, stats } = options
  const id = options.id ?? key
  const read = ranged(store, key, size, stats, identity)
  // single flight: the read of a block in progress, which fibers wanting it too wait on; it
  // settles with undefined if its reader was interrupted (then a waiter reads it itself)
  const inflight = new Map<number, Deferred.Deferred<Block | undefined, ReadError>>()

  const blockFor = (k: string) => partition(blocks.length, (i) => blocks[i]!.lastKey < k)
  const blockBefore = (end: string | undefined) =>
    end === undefined ? blocks.length - 1 : partition(blocks.length, (i) => blocks[i]!.firstKey < end) - 1
  const cachedBlock = (i: number) => cache.get(id, i)

  const readBlock = (i: number): Effect.Effect<Block, ReadError> => {
    const ref = blocks[i]!
    return Effect.flatMap(read(ref.offset, ref.offset + ref.length + 4), (bytes) => decodeOrCorrupt(key, bytes, checkedBlock(i, ref)))
  }

  /** Blocks from `i` on, as many as fit in `maxBytes` (at least one), with one GET. */
  const readSpan = (i: number, maxBytes: number): Effect.Effect<Span, ReadError> => {
    const base = blocks[i]!.offset
    const endOf = (ref: Run.BlockRef) => ref.offset + ref.length + 4
    let last = i
    while (last + 1 < blocks.length && endOf(blocks[last + 1]!) - base <= maxBytes) last++
    return Effect.map(read(base, endOf(blocks[last]!)), (bytes) => ({ first: i, last, base, bytes }))
  }

  /** Block `i` once the cache was found without it (not counted again): joins a read in progress or starts one. */
  const fetch = (i: number, fill: boolean): Effect.Effect<Block, ReadError> =>
    Effect.suspend(() => {
      const held = cache.peek(id, i)
      if (held !== undefined) return Effect.succeed(held)
      const pending = inflight.get(i)
      if (pending !== undefined) {
        return Effect.flatMap(Deferred.await(pending), (block) => {
          if (block === undefined) return fetch(i, fill)
          if (fill && cache.peek(id, i) === undefined) cache.set(id, i, block)
          return Effect.succeed(block)
        })
      }
      const done = Deferred.makeUnsafe<Block | undefined, ReadError>()
      inflight.set(i, done)
      return Effect.onExit(readBlock(i), (exit) =>
        Effect.sync(() => {
          inflight.delete(i)
          if (Exit.isSuccess(exit)) {
            if (fill) cache.set(id, i, exit.value)
            Deferred.doneUnsafe(done, exit)
          } else if (Exit.hasInterrupts(exit)) {
            Deferred.doneUnsafe(done, Effect.succeed(undefined))
          } else {
            Deferred.doneUnsafe(done, exit)
          }
        }))
    })

  const block = (i: number, blockOptions?: { readonly fillCache?: boolean | undefined }) =>
    Effect.suspend(() => {
      if (!(i >= 0 && i < blocks.length)) return Effect.die(new RangeError(`block ${i} of ${blocks.length} in ${key}`))
      const cached = cachedBlock(i)
      return cached !== undefined ? Effect.succeed(cached) : fetch(i, blockOptions?.fillCache !== false)
    })

  /** The block that may hold `k`, or -1. */
  const candidate = (k: string): number => {
    const i = blockFor(k)
    return i < blocks.length && blocks[i]!.firstKey <= k ? i : -1
  }

  const getCached = (k: string): string | null | undefined | NotCached => {
    const i = candidate(k)
    if (i < 0) return undefined
    const cached = cachedBlock(i)
    return cached === undefined ? notCached : search(cached, k)
  }

  const fetchValue = (k: string) =>
    Effect.suspend(() => {
      const i = candidate(k)
      return i < 0 ? Effect.succeed(undefined) : Effect.map(fetch(i, true), (b) => search(b, k))
    })

  const get = (k: string) =>
    Effect.suspend(() => {
      const found = getCached(k)
      return found === notCached ? fetchValue(k) : Effect.succeed(found)
    })

  let indexBytes = 0
  for (const ref of blocks) indexBytes += ref.firstKey.length + ref.lastKey.length + indexEntryOverhead

  const reader: RunReader = {
    key,
    id,
    bytes: size,
    blocks,
    entries,
    firstKey: blocks[0]?.firstKey,
    lastKey: blocks[blocks.length - 1]?.lastKey,
    indexBytes,
    stats,
    blockFor,
    blockBefore,
    cachedBlock,
    block,
    getCached,
    fetchValue,
    get,
    cursor: (from, cursorOptions) => {
      const reverse = cursorOptions?.reverse === true
      const readAhead = reverse ? 0 : Math.max(0, cursorOptions?.readAhead ?? 0)
      const load = readAhead > 0 ? spans(readAhead) : (i: number) => fetch(i, cursorOptions?.fillCache !== false)
      return new RunCursor(reader, load, from, reverse)
    },
    readAhead: spans,
    readAheadRaw: rawSpans
  }

  /** A cursor's way to load blocks in spans of `readAhead` bytes: the span it holds, or the next one read; checked. */
  function spans(readAhead: number) {
    const raw = rawSpans(readAhead)
    return (i: number): Effect.Effect<Block, ReadError> =>
      Effect.flatMap(raw(i), (bytes) => decodeOrCorrupt(key, bytes, checkedBlock(i, blocks[i]!)))
  }

  /** Block `i`'s bytes and CRC32, unchecked: from the span held, or from the next one read from `i` on. */
  function rawSpans(readAhead: number) {
    let span: Span | undefined
    const take = (held: Span, i: number) => {
      // past its last block the span is not needed again: dropped, not held to the end of the merge
      if (i === held.last) span = undefined
      const ref = blocks[i]!
      const start = ref.offset - held.base
      return held.bytes.subarray(start, start + ref.length + 4)
    }
    return (i: number): Effect.Effect<Uint8Array, ReadError> =>
      span !== undefined && i >= span.first && i <= span.last
        ? Effect.succeed(take(span, i))
        : Effect.map(readSpan(i, readAhead), (next) => {
          span = next
          return take(next, i)
        })
  }
  return reader
}

/** See `Cursor`. */
class RunCursor implements Cursor {
  key: string | undefined = undefined
  entry: Run.Entry | undefined = undefined
  ready = true
  /** The block the cursor is in (or waits for). */
  private index: number
  /** Its entries, once loaded. */
  private current: Block | undefined = undefined
  private position = 0
  /** Whether the cursor is still in its first block (positioned by `from`, not at an end). */
  private first = true

  constructor(
    private readonly reader: RunReader,
    /** Block `i`, not in the cache: read through the cache, or from the cursor's spans. */
    private readonly load: (i: number) => Effect.Effect<Block, ReadError>,
    private readonly from: string | undefined,
    private readonly reverse: boolean
  ) {
    this.index = reverse ? reader.blockBefore(from) : from === undefined ? 0 : reader.blockFor(from)
    this.settle()
  }

  next(): void {
    this.position += this.reverse ? -1 : 1
    this.settle()
  }

  fill(): Effect.Effect<void, ReadError> {
    return Effect.map(this.load(this.index), (block) => {
      this.enter(block)
      this.settle()
    })
  }

  /** Stands in `block` (the one at `index`), at its first entry due. */
  private enter(block: Block): void {
    this.current = block
    if (!this.first || this.from === undefined) this.position = this.reverse ? block.length - 1 : 0
    else this.position = this.reverse ? lowerBound(block, this.from) - 1 : lowerBound(block, this.from)
    this.first = false
  }

  /** Sets `key`, `value` and `ready` for where the cursor is, moving on to the next block (from the cache if there) as needed. */
  private settle(): void {
    const blocks = this.reader.blocks
    for (;;) {
      const current = this.current
      if (current !== undefined) {
        const entry = current[this.position]
        if (entry !== undefined) {
          this.key = entry[0]
          this.entry = entry
          this.ready = true
          return
        }
        this.current = undefined
        this.first = false
        this.index += this.reverse ? -1 : 1
      }
      const ref = blocks[this.index]
      this.entry = undefined
      if (ref === undefined) {
        this.key = undefined
        this.ready = true
        return
      }
      const cached = this.reader.cachedBlock(this.index)
      if (cached !== undefined) {
        this.enter(cached)
        continue
      }
      this.key = this.bound(ref)
      this.ready = false
      return
    }
  }

  /** The lowest key left in the block `ref` not yet read (forward), or the highest (reversed). */
  private bound(ref: Run.BlockRef): string {
    const from = this.first ? this.from : undefined
    if (from === undefined) return this.reverse ? ref.lastKey : ref.firstKey
    // reversed, `from` is exclusive: a key equal to it is never there, so it bounds from above
    if (this.reverse) return from < ref.lastKey ? from : ref.lastKey
    return from > ref.firstKey ? from : ref.firstKey
  }
}
