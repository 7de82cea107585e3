// The formats written on the hot path, each written in place in one buffer: WAL segments
// (schema/WalSegment.ts) are a checked frame of the segment whatever its size, decode back to it,
// and hold a buffer of about their own size (a small one does not keep a slab of Node's shared
// buffer pool); sorted runs (schema/Run.ts) decode back to their entries across many blocks,
// with each block's CRC32 and the index's checked.
import { assert, describe, it } from "@effect/vitest"
import * as Run from "../schema/Run.ts"
import * as WalSegment from "../schema/WalSegment.ts"
import { unframe } from "../src/internal/binary.ts"

const segmentOf = (commits: number, valueBytes: number): WalSegment.Segment => ({
  epoch: 3,
  walId: 41,
  fenceId: 40,
  landedThrough: 40,
  commits: Array.from({ length: commits }, (_, i) => ({
    seq: 100 + i,
    ops: [[`key-${i}`, "v".repeat(valueBytes)], [`gone-${i}`, null], ["\u00ff\u0000latin1", "\u0080\u00ff"]] as const
  }))
})

describe("WAL segments", () => {
  for (const [name, commits, valueBytes] of [["empty", 0, 0], ["small", 2, 10], ["larger than the buffer pool", 40, 4000]] as const) {
    it(`a ${name} segment is a checked frame that decodes back to it`, () => {
      const segment = segmentOf(commits, valueBytes)
      const bytes = WalSegment.encode(segment)
      assert.doesNotThrow(() => unframe(bytes, WalSegment.kind, WalSegment.version))
      assert.deepStrictEqual(WalSegment.decode(bytes), segment)
      // its own buffer, sized for it (never an 8 KiB slab of the shared pool held by a few bytes)
      assert.isBelow(bytes.buffer.byteLength, bytes.byteLength * 1.1 + 256)
    })
  }

  it("a flipped byte anywhere fails the frame's check", () => {
    const bytes = WalSegment.encode(segmentOf(3, 50))
    for (const at of [0, 5, 20, bytes.length - 1]) {
      const damaged = bytes.slice()
      damaged[at]! ^= 0x10
      assert.throws(() => WalSegment.decode(damaged))
    }
  })
})

describe("sorted runs", () => {
  const entriesOf = (n: number): Array<readonly [string, string | null]> =>
    Array.from({ length: n }, (_, i) => [`k${String(i).padStart(6, "0")}`, i % 7 === 0 ? null : "\u00ff".repeat(i % 300)] as const)

  for (const n of [0, 1, 5000]) {
    it(`a run of ${n} entries decodes back to them, its blocks at their offsets`, () => {
      const entries = entriesOf(n)
      const bytes = Run.encode(entries)
      assert.deepStrictEqual(Run.decode(bytes), entries)
      const footer = bytes.subarray(bytes.length - Run.footerBytes)
      const { indexLength, indexOffset } = Run.readFooter(footer)
      const blocks = Run.readIndex(bytes.subarray(indexOffset, indexOffset + indexLength), footer)
      if (n > 0) assert.isAbove(blocks.length, n > 1000 ? 10 : 0)
      let total = 0
      for (const block of blocks) {
        const read = Run.readBlock(bytes.subarray(block.offset, block.offset + block.length + 4), block.entries)
        assert.strictEqual(read[0]![0], block.firstKey)
        assert.strictEqual(read[read.length - 1]![0], block.lastKey)
        total += read.length
      }
      assert.strictEqual(total, n)
    })
  }

  it("a flipped byte in a block fails its check", () => {
    const bytes = Run.encode(entriesOf(2000))
    const damaged = bytes.slice()
    damaged[Math.floor(bytes.length / 3)]! ^= 0x01
    assert.throws(() => Run.decode(damaged))
  })
})
