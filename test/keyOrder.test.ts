import { assert, describe, it } from "@effect/vitest"
import { compareKeys } from "../src/internal/keyOrder.ts"
import { makePrng } from "../src/internal/prng.ts"

const alphabet = ["a", "b", "/", "%", "é", "\u00ff", "\u0800", "\ud7ff", "\ue000", "\uffff", "😀", "𝄞", "0"]

describe("key order", () => {
  it("equals UTF-8 byte order on 20,000 random pairs", () => {
    const prng = makePrng("order")
    const randomKey = () => Array.from({ length: prng.int(0, 6) }, () => alphabet[prng.int(0, alphabet.length)]).join("")
    for (let i = 0; i < 20_000; i++) {
      const [a, b] = [randomKey(), randomKey()]
      assert.strictEqual(Math.sign(compareKeys(a, b)), Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))), `${a} ${b}`)
    }
  })
})
