/**
 * A sorted run, `runs/<ulid>`: immutable, its entries in key order, laid out so that a reader can
 * find any key with ranged reads alone (footer, then index, then one block):
 *
 * ```
 * "BQKV" | kind 3 | version 1                                    header, 6 bytes
 * block*: entries (tag 0 put / 1 delete | key | value) | CRC32   ~4 KiB each
 * index: block count | per block: first key | last key | offset | length | entries
 * footer, 24 bytes: index offset (u64 BE) | index length (u32) | entry count (u32)
 *                   | CRC32 of index and the 16 footer bytes before it | "BQRF"
 * ```
 *
 * Keys and values are latin1 strings (one char per byte). A delete is a tombstone; a full run
 * (compaction output) has none.
 *
 * @since 0.1.0
 */
import { crc32 } from "node:zlib"
import { DecodeError, Reader, Writer } from "../src/internal/binary.ts"

/** @since 0.1.0 */
export const kind = 3
/** @since 0.1.0 */
export const version = 1
/** Target size of a block before its CRC. @since 0.1.0 */
export const blockBytes = 4096
/** @since 0.1.0 */
export const footerBytes = 24

const header = [0x42, 0x51, 0x4b, 0x56, kind, version] as const
/** Bytes of the header, before the first block. @since 0.4.0 */
export const headerBytes = header.length
const footerMagic = [0x42, 0x51, 0x52, 0x46] as const // "BQRF"

/**
 * @category models
 * @since 0.1.0
 */
export type Entry = readonly [key: string, value: string | null]

/**
 * Where a block is and what it holds.
 *
 * @category models
 * @since 0.1.0
 */
export interface BlockRef {
  readonly firstKey: string
  readonly lastKey: string
  readonly offset: number
  /** Bytes of entries, not counting the CRC32 after them. */
  readonly length: number
  readonly entries: number
}

/**
 * Encodes a run entry by entry (keys in order), so that a big run can be built in slices
 * between which the caller yields.
 *
 * @category encoding
 * @since 0.1.0
 */
export class Encoder {
  // blocks are written straight into `out` (each CRC32 taken over its bytes there): no block
  // buffer to allocate, copy and drop per 4 KiB. The block's first and last keys are kept as
  // places in `out` and read from there when the block closes: no string kept per entry.
  private readonly out: Writer
  private readonly blocks: Array<BlockRef> = []
  private blockStart: number = header.length
  private firstStart = 0
  private firstEnd = 0
  private lastStart = 0
  private lastEnd = 0
  private count = 0
  /** Entries added so far. */
  entries = 0

  /** Bytes encoded so far (the index and footer not counted). */
  get bytes(): number {
    return this.out.length
  }

  /**
   * `capacity`: the bytes the run is expected to take, index and footer included (default 64
   * KiB). The buffer starts at that size, so a run of about that size is never copied to grow:
   * a 32 MiB run built from 64 KiB doubles nine times and copies 64 MiB on the way. Pages of the
   * buffer that are never written are never touched, so a generous estimate costs address space,
   * not memory.
   *
   * `reuse`: a buffer to encode into instead, if it holds `capacity` (see `buffer`). A fresh
   * buffer's pages are each faulted in as the run is written (measured: 2.8 ms a MiB, most of
   * the cost of writing a run) and a large one may start a full garbage collection; a buffer
   * written before costs neither.
   */
  constructor(capacity = 64 * 1024, reuse?: Uint8Array) {
    const size = Math.max(64 * 1024, capacity)
    this.out = new Writer(reuse !== undefined && reuse.length >= size ? reuse : size)
    this.out.bytes(new Uint8Array(header))
  }

  /**
   * The whole buffer the encoder wrote into: what `finish` returned is a view of it, or a copy
   * when a small run used little of it. Once that run is no longer needed, it may be given to
   * another encoder as `reuse`.
   */
  get buffer(): Uint8Array {
    return this.out.whole
  }

  /** Adds an entry (`null`: a delete), after every key added so far. */
  add(key: string, value: string | null): void {
    this.out.u8(value === null ? 1 : 0).latin1(key)
    const keyEnd = this.out.length
    if (value !== null) this.out.latin1(value)
    this.added(keyEnd - key.length, keyEnd)
  }

  /**
   * Adds an entry as encoded in another run's block: its bytes `[start, end)` of `block`, its
   * key at `[keyStart, keyEnd)` there (see `EntryBounds`), copied as they are. After every key
   * added so far.
   */
  addRaw(block: Uint8Array, start: number, end: number, keyStart: number, keyEnd: number): void {
    const at = this.out.length - start
    this.out.copy(block, start, end)
    this.added(at + keyStart, at + keyEnd)
  }

  /** Counts the entry just written, whose key is at `[keyStart, keyEnd)` of `out`; closes a full block. */
  private added(keyStart: number, keyEnd: number): void {
    if (this.count === 0) {
      this.firstStart = keyStart
      this.firstEnd = keyEnd
    }
    this.lastStart = keyStart
    this.lastEnd = keyEnd
    this.count++
    this.entries++
    if (this.out.length - this.blockStart >= blockBytes) this.closeBlock()
  }

  private closeBlock(): void {
    if (this.count === 0) return
    const offset = this.blockStart
    const length = this.out.length - offset
    const firstKey = this.out.latin1At(this.firstStart, this.firstEnd)
    const lastKey = this.out.latin1At(this.lastStart, this.lastEnd)
    this.blocks.push({ firstKey, lastKey, offset, length, entries: this.count })
    this.out.u32(crc32(this.out.written(offset)))
    this.blockStart = this.out.length
    this.count = 0
  }

  finish(): Uint8Array {
    this.closeBlock()
    const out = this.out
    const indexOffset = out.length
    const index = new Writer(this.blocks.length * 32 + 8).varint(this.blocks.length)
    for (const b of this.blocks) index.latin1(b.firstKey).latin1(b.lastKey).varint(b.offset).varint(b.length).varint(b.entries)
    const indexBytes = index.finish()
    out.bytes(indexBytes)
    const fixed = new Writer(footerBytes)
      .u32(Math.floor(indexOffset / 0x1_0000_0000)).u32(indexOffset >>> 0).u32(indexBytes.length).u32(this.entries)
      .finish()
    const check = new Uint8Array(indexBytes.length + fixed.length)
    check.set(indexBytes, 0)
    check.set(fixed, indexBytes.length)
    out.bytes(fixed).u32(crc32(check)).bytes(new Uint8Array(footerMagic))
    // the writer's own buffer, not a copy of it: the run is put and then dropped as a whole
    return out.take()
  }
}

/**
 * Encodes entries that are already in key order.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encode = (entries: Iterable<Entry>): Uint8Array => {
  const encoder = new Encoder()
  for (const [key, value] of entries) encoder.add(key, value)
  return encoder.finish()
}

/**
 * The footer's fields, from the last `footerBytes` of the object.
 *
 * @category decoding
 * @since 0.1.0
 */
export const readFooter = (footer: Uint8Array): { indexOffset: number; indexLength: number; entries: number; crc: number } => {
  if (footer.length !== footerBytes) throw new DecodeError(`footer of ${footer.length} bytes`)
  if (footerMagic.some((b, i) => footer[20 + i] !== b)) throw new DecodeError("bad footer magic")
  const r = new Reader(footer)
  const hi = r.u32()
  const lo = r.u32()
  return { indexOffset: hi * 0x1_0000_0000 + lo, indexLength: r.u32(), entries: r.u32(), crc: r.u32() }
}

/**
 * The block index, checked against the footer's CRC32.
 *
 * @category decoding
 * @since 0.1.0
 */
export const readIndex = (indexBytes: Uint8Array, footer: Uint8Array): Array<BlockRef> => {
  const { crc } = readFooter(footer)
  const check = new Uint8Array(indexBytes.length + 16)
  check.set(indexBytes, 0)
  check.set(footer.subarray(0, 16), indexBytes.length)
  if (crc32(check) !== crc) throw new DecodeError("index CRC32 mismatch")
  const r = new Reader(indexBytes)
  const count = r.varint()
  const blocks: Array<BlockRef> = []
  for (let i = 0; i < count; i++) {
    blocks.push({ firstKey: r.latin1(), lastKey: r.latin1(), offset: r.varint(), length: r.varint(), entries: r.varint() })
  }
  if (!r.done) throw new DecodeError("trailing bytes after the index")
  return blocks
}

/**
 * A block's entry bytes, without the CRC32 that follows them, once that CRC32 is checked.
 *
 * @category decoding
 * @since 0.4.0
 */
export const blockBody = (withCrc: Uint8Array): Uint8Array => {
  if (withCrc.length < 4) throw new DecodeError("block shorter than its CRC")
  const bytes = withCrc.subarray(0, withCrc.length - 4)
  const crc = new DataView(withCrc.buffer, withCrc.byteOffset, withCrc.byteLength).getUint32(bytes.length)
  if (crc32(bytes) !== crc) throw new DecodeError("block CRC32 mismatch")
  return bytes
}

/**
 * Where the parts of one entry of a block lie, as offsets into the block's bytes (without its
 * CRC32), found by `read` without decoding anything: what a merge of runs needs to compare keys
 * and copy entries as they are (`Encoder.addRaw`), and what `readBlock` decodes. One object is
 * reused from entry to entry. The one reading of an entry's layout (tag, key, value).
 *
 * @category decoding
 * @since 0.4.0
 */
export class EntryBounds {
  start = 0
  keyStart = 0
  keyEnd = 0
  valueStart = 0
  end = 0
  /** Whether the entry is a delete. */
  tombstone = false

  /** Reads the entry at `reader`'s offset and leaves it after the entry; `DecodeError` if it is cut short or its tag unknown. */
  read(reader: Reader): void {
    const start = reader.offset
    const tag = reader.u8()
    if (tag !== 0 && tag !== 1) throw new DecodeError(`entry tag ${tag}`)
    const keyLength = reader.varint()
    this.start = start
    this.keyStart = reader.offset
    this.keyEnd = reader.skip(keyLength).offset
    this.tombstone = tag === 1
    if (tag === 0) {
      const valueLength = reader.varint()
      this.valueStart = reader.offset
      reader.skip(valueLength)
    } else {
      this.valueStart = this.keyEnd
    }
    this.end = reader.offset
  }
}

/**
 * The entries of one block (its bytes followed by their CRC32), checked.
 *
 * @category decoding
 * @since 0.1.0
 */
export const readBlock = (withCrc: Uint8Array, expected: number): Array<Entry> => {
  const body = blockBody(withCrc)
  const r = new Reader(body)
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  const entry = new EntryBounds()
  const entries: Array<Entry> = []
  while (!r.done) {
    entry.read(r)
    const key = text.toString("latin1", entry.keyStart, entry.keyEnd)
    entries.push([key, entry.tombstone ? null : text.toString("latin1", entry.valueStart, entry.end)])
  }
  if (entries.length !== expected) throw new DecodeError(`block has ${entries.length} entries, index says ${expected}`)
  return entries
}

/**
 * Every entry of a whole run object, in key order, with every check.
 *
 * @category decoding
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Array<Entry> => {
  if (bytes.length < header.length + footerBytes) throw new DecodeError(`${bytes.length} bytes, too short for a run`)
  if (header.some((b, i) => bytes[i] !== b)) throw new DecodeError("bad run header")
  const footer = bytes.subarray(bytes.length - footerBytes)
  const { entries, indexLength, indexOffset } = readFooter(footer)
  if (indexOffset + indexLength !== bytes.length - footerBytes) throw new DecodeError("index does not end at the footer")
  const blocks = readIndex(bytes.subarray(indexOffset, indexOffset + indexLength), footer)
  const out: Array<Entry> = []
  let expectedOffset = header.length
  for (const block of blocks) {
    if (block.offset !== expectedOffset) throw new DecodeError("blocks are not contiguous")
    out.push(...readBlock(bytes.subarray(block.offset, block.offset + block.length + 4), block.entries))
    expectedOffset = block.offset + block.length + 4
  }
  if (expectedOffset !== indexOffset) throw new DecodeError("blocks do not end at the index")
  if (out.length !== entries) throw new DecodeError(`run has ${out.length} entries, footer says ${entries}`)
  return out
}
