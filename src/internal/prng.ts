/**
 * A small seeded pseudo-random generator (mulberry32 over a 32-bit state), for fault injection
 * and randomized tests: the same seed gives the same sequence on every run and every machine,
 * independent of Effect's `Random` service.
 *
 * @internal
 */
export interface Prng {
  /** Uniform in [0, 1). */
  readonly next: () => number
  /** Uniform integer in [min, max). */
  readonly int: (min: number, max: number) => number
  /** Standard normal (Box-Muller). */
  readonly normal: () => number
}

const hashSeed = (seed: number | string): number => {
  const text = String(seed)
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** @internal */
export const makePrng = (seed: number | string): Prng => {
  let state = hashSeed(seed)
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min)),
    normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next())
  }
}
