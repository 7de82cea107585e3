// A damaged run read on demand (src/kv/runReader.ts) is always Corrupt naming the run, never a
// wrong value nor a defect: a flipped bit in the footer or the index fails the open; in a block or
// its CRC32, the read of that block (the others still read right); in the header, which ranged
// reads never look at, nothing. Truncation and a wrong size fail too.
import { assert, describe, it } from "@effect/vitest"
import { crc32 } from "node:zlib"
import { Cause, Effect, Exit } from "effect"
import * as Run from "../schema/Run.ts"
import { Reader } from "../src/internal/binary.ts"
import { makePrng } from "../src/internal/prng.ts"
import * as BlockCache from "../src/kv/blockCache.ts"
import * as Merge from "../src/kv/merge.ts"
import * as RawMerge from "../src/kv/rawMerge.ts"
import * as RunReader from "../src/kv/runReader.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { reasonOf } from "./utils/exits.ts"
import { keyPool, randomEntries } from "./utils/runs.ts"

const key = "runs/01J00000000000000000DAMAGE"

const prng = makePrng("run reader damage")
const entries = randomEntries(prng, keyPool(prng, 400), { density: 0.6, tombstones: 0.25 })
const original = Run.encode(entries)
const values = new Map(entries)

const memoryStore = Effect.provide(Effect.map(ObjectStore.ObjectStore, (store) => store), ObjectStore.layerMemory({ retry: false }))

/** What reading the run stored as `bytes` (opened as `size` bytes) gives: its failure's tag, or "Success". */
const readAll = (store: ObjectStore.Service, bytes: Uint8Array, size = original.length) =>
  Effect.gen(function*() {
    yield* store.put(key, bytes)
    const opened = yield* Effect.exit(RunReader.open(store, key, { bytes: size, cache: BlockCache.make(1 << 20) }))
    if (Exit.isFailure(opened)) return { open: describe_(opened), blocks: [] as Array<string> }
    const reader = opened.value
    const blocks: Array<string> = []
    for (let i = 0; i < reader.blocks.length; i++) {
      const block = yield* Effect.exit(reader.block(i))
      if (Exit.isFailure(block)) {
        blocks.push(describe_(block))
        continue
      }
      // whatever is read is right
      for (const [k, v] of block.value) assert.strictEqual(v, values.get(k), `block ${i} key ${JSON.stringify(k)}`)
      assert.strictEqual(block.value.length, reader.blocks[i]!.entries)
      blocks.push("Success")
    }
    return { open: "Success", blocks }
  })

/** `Corrupt` (checking it names the run), or the exit's reason tag. */
const describe_ = (exit: Exit.Exit<unknown, unknown>): string => {
  const reason = reasonOf(exit)
  if (reason === "Corrupt") {
    const failure = (exit as Exit.Failure<unknown, unknown>).cause.reasons.find((r) => r._tag === "Fail") as unknown as {
      error: { key: string }
    }
    assert.strictEqual(failure.error.key, key)
  }
  return reason
}

const flipped = (at: number, bit: number) => {
  const bytes = original.slice()
  bytes[at]! ^= 1 << bit
  return bytes
}

describe("run reader damage", () => {
  const layout = Run.readFooter(original.subarray(original.length - Run.footerBytes))
  const blocks = Run.readIndex(
    original.subarray(layout.indexOffset, layout.indexOffset + layout.indexLength),
    original.subarray(original.length - Run.footerBytes)
  )

  it.effect("the fixture reads back whole, over several blocks", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const result = yield* readAll(store, original)
      assert.isAbove(blocks.length, 5)
      assert.deepStrictEqual(result, { open: "Success", blocks: blocks.map(() => "Success") })
    }))

  it.effect("a flipped bit anywhere in the footer or the index fails the open with Corrupt", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      for (let at = layout.indexOffset; at < original.length; at++) {
        const result = yield* readAll(store, flipped(at, at % 8))
        assert.strictEqual(result.open, "Corrupt", `byte ${at} of ${original.length}`)
      }
    }))

  it.effect("a flipped bit in a block or its CRC32 fails that block's read with Corrupt, and only that one", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      for (const [i, block] of blocks.entries()) {
        const crcAt = block.offset + block.length
        const positions = [block.offset, block.offset + 1, block.offset + (block.length >> 1), crcAt - 1, crcAt, crcAt + 1, crcAt + 3]
        for (const at of positions) {
          const result = yield* readAll(store, flipped(at, (at + i) % 8))
          assert.strictEqual(result.open, "Success")
          assert.deepStrictEqual(result.blocks, blocks.map((_, j) => j === i ? "Corrupt" : "Success"), `block ${i}, byte ${at}`)
        }
      }
    }))

  it.effect("read ahead in spans (compaction's way), a flipped bit in any block is Corrupt when the merge reaches it, with only the entries before it handed out", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      for (const [i, block] of blocks.entries()) {
        const at = block.offset + (block.length >> 1)
        yield* store.put(key, flipped(at, i % 8))
        const reader = yield* RunReader.open(store, key, { bytes: original.length, cache: BlockCache.make(1 << 20) })
        const pull = Merge.mergeAll([reader], { keepTombstones: true, chunk: 1, readAhead: 3 * 4096 })
        const seen: Array<Run.Entry> = []
        const exit = yield* Effect.exit(Effect.gen(function*() {
          for (let got = yield* pull; got.length > 0; got = yield* pull) seen.push(...got)
        }))
        assert.strictEqual(describe_(exit), "Corrupt", `block ${i}`)
        const before = blocks.slice(0, i).reduce((n, b) => n + b.entries, 0)
        assert.deepStrictEqual(seen, entries.slice(0, before), `block ${i}`)
      }
    }))

  /** What merging the run stored as `bytes` on its bytes writes before it ends: the entries, and the exit. */
  const mergeRaw = (store: ObjectStore.Service, bytes: Uint8Array) =>
    Effect.gen(function*() {
      yield* store.put(key, bytes)
      const reader = yield* RunReader.open(store, key, { bytes: original.length, cache: BlockCache.make(1 << 20) })
      const feed = RawMerge.mergeRuns([reader], { keepTombstones: true, chunk: 1, readAhead: 3 * 4096 })
      const encoder = new Run.Encoder()
      const exit = yield* Effect.exit(Effect.gen(function*() {
        while (yield* feed(encoder, Number.POSITIVE_INFINITY)) { /* on to the end */ }
      }))
      return { exit, written: encoder.entries > 0 ? Run.decode(encoder.finish()) : [] }
    })

  it.effect("merged on its bytes (compaction's way), a flipped bit in any block is Corrupt naming it, with only the entries of the blocks before it written", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const whole = yield* mergeRaw(store, original)
      assert.isTrue(Exit.isSuccess(whole.exit))
      assert.deepStrictEqual(whole.written, entries)
      for (const [i, block] of blocks.entries()) {
        for (const at of [block.offset, block.offset + (block.length >> 1), block.offset + block.length + 2]) {
          const { exit, written } = yield* mergeRaw(store, flipped(at, (at + i) % 8))
          assert.strictEqual(describe_(exit), "Corrupt", `block ${i}, byte ${at}`)
          assert.include(String(Exit.isFailure(exit) && Cause.squash(exit.cause)), `block ${i}: block CRC32 mismatch`)
          const before = blocks.slice(0, i).reduce((n, b) => n + b.entries, 0)
          assert.deepStrictEqual(written, entries.slice(0, before), `block ${i}, byte ${at}`)
        }
      }
    }))

  /** `original` with block `i`'s entries replaced by `body` (the same length) and its CRC32 made right again. */
  const rewritten = (i: number, change: (body: Uint8Array) => void) => {
    const bytes = original.slice()
    const block = blocks[i]!
    const body = bytes.subarray(block.offset, block.offset + block.length)
    change(body)
    new DataView(bytes.buffer).setUint32(block.offset + block.length, crc32(body))
    return bytes
  }

  /** The places of block `i`'s entries: each entry's start and its key's. */
  const entriesOf = (i: number) => {
    const block = blocks[i]!
    const body = original.subarray(block.offset, block.offset + block.length)
    const bounds = new Run.EntryBounds()
    const out: Array<{ start: number; keyStart: number; keyEnd: number; end: number }> = []
    for (const reader = new Reader(body); !reader.done;) {
      bounds.read(reader)
      out.push({ start: bounds.start, keyStart: bounds.keyStart, keyEnd: bounds.keyEnd, end: bounds.end })
    }
    return out
  }

  it.effect("a block whose CRC32 is right but whose entries are not (a writer's bug) is Corrupt both decoded and merged on its bytes", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      // a block past the first whose last entry is a put, the first byte of its value length not all ones
      const i = blocks.findIndex((_, j) => {
        const last = entriesOf(j).at(-1)!
        return j > 0 && original[blocks[j]!.offset + last.start] === 0 && (original[blocks[j]!.offset + last.keyEnd]! & 0x7f) < 0x7f
      })
      assert.isAbove(i, 0)
      const parts = entriesOf(i)
      const first = parts[0]!
      const last = parts[parts.length - 1]!
      const damages: Record<string, (body: Uint8Array) => void> = {
        "an unknown tag": (body) => (body[first.start] = 7),
        "a key length past the block": (body) => (body[first.start + 1] = 0x7f),
        "a first key not the index's": (body) => (body[first.keyEnd - 1]! ^= 0x01),
        "a last key not the index's": (body) => (body[last.keyEnd - 1]! ^= 0x01),
        "keys out of order": (body) => {
          // the second key's bytes all zero: below the first (which is not the run's first)
          const second = parts[1]!
          body.fill(0, second.keyStart, second.keyEnd)
        },
        "a value cut short": (body) => {
          // the last entry's value length one more than its bytes (a LEB128 varint: its first byte holds the low bits)
          const valueLengthAt = last.keyEnd
          body[valueLengthAt]! += 1
        }
      }
      for (const [name, damage] of Object.entries(damages)) {
        const bytes = rewritten(i, damage)
        const read = yield* readAll(store, bytes)
        assert.deepStrictEqual(read.blocks, blocks.map((_, j) => j === i ? "Corrupt" : "Success"), `${name}, decoded`)
        const { exit, written } = yield* mergeRaw(store, bytes)
        assert.strictEqual(describe_(exit), "Corrupt", `${name}, merged`)
        assert.include(String(Exit.isFailure(exit) && Cause.squash(exit.cause)), `block ${i}:`, name)
        // what was written before the damage was found is right
        assert.deepStrictEqual(written, entries.slice(0, written.length), name)
      }
    }))

  it.effect("a flipped bit in the header changes nothing read (ranged reads never look at it)", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      for (let at = 0; at < Run.headerBytes; at++) {
        assert.deepStrictEqual(yield* readAll(store, flipped(at, 3)), { open: "Success", blocks: blocks.map(() => "Success") })
      }
    }))

  it.effect("a truncated object, or one opened with the wrong size, is Corrupt", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      for (const cut of [1, 4, 24, 25, original.length - layout.indexOffset, original.length - 10, original.length - 6]) {
        assert.strictEqual((yield* readAll(store, original.subarray(0, original.length - cut), original.length)).open, "Corrupt")
        // with its size right, the footer is gone: still Corrupt
        assert.strictEqual((yield* readAll(store, original.subarray(0, original.length - cut), original.length - cut)).open, "Corrupt")
      }
      for (const size of [original.length - 1, original.length + 1, original.length * 2, 30, 29, 0]) {
        assert.strictEqual((yield* readAll(store, original, size)).open, "Corrupt", `size ${size}`)
      }
    }))

  it.effect("a run replaced after opening, even by one of the same size and layout, is Corrupt at the next read", () =>
    Effect.gen(function*() {
      // the same keys with other values of the same lengths: same layout, valid CRCs, other values
      const other = Run.encode(entries.map(([k, v]) => [k, v === null ? null : v.split("").reverse().join("")] as const))
      assert.strictEqual(other.length, original.length)
      const store = yield* memoryStore
      yield* store.put(key, original)
      const reader = yield* RunReader.open(store, key, { bytes: original.length, cache: BlockCache.make(0) })
      yield* store.put(key, other)
      assert.strictEqual(describe_(yield* Effect.exit(Merge.scan([reader], "", undefined))), "Corrupt")
      assert.strictEqual(describe_(yield* Effect.exit(reader.get(entries[0]![0]))), "Corrupt")
    }))
})
