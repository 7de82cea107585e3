import { Effect, Random } from "effect"

const hex32 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0")

/**
 * A 128-bit random token in hex, from Effect's `Random` (so a seeded `Random` makes it
 * repeatable in tests). Used for write tokens, ETags and temporary file names.
 *
 * @internal
 */
export const randomToken: Effect.Effect<string> = Effect.withFiber((fiber) => {
  const random = fiber.getRef(Random.Random)
  let out = ""
  for (let i = 0; i < 4; i++) out += hex32(Math.floor(random.nextDoubleUnsafe() * 0x1_0000_0000))
  return Effect.succeed(out)
})
