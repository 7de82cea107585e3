// The WAL segment format (schema/WalSegment.ts), written in place in one sized buffer: the bytes
// are a checked frame of the segment whatever its size, decode back to it, and a segment holds a
// buffer of about its own size (a small one does not keep a slab of Node's shared buffer pool).
import { assert, describe, it } from "@effect/vitest"
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
