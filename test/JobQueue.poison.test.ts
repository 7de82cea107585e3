// Poison values (issue 12): before the edge checked options, each call below was accepted and
// stored a record that schema/JobRecord.ts cannot decode (or a key that sorts where it should
// not), after which every claim of the queue died, and cancels of the job too. Each test makes
// the hostile call, then checks that the queue still claims, cancels and counts exactly. Then a
// property test decodes what the queue writes: random *valid* options and definitions, enqueued,
// read back with `get`, claimed (or cancelled when scheduled far ahead) and settled.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Option, Schema } from "effect"
import { TestClock } from "effect/testing"
import { makePrng, type Prng } from "../src/internal/prng.ts"
import * as Job from "../src/Job.ts"
import type * as JobQueue from "../src/JobQueue.ts"
import { assertUsable, describeExit, type Env, failureOf, openEnv, snapshot, V } from "./utils/validation.ts"

const any = (value: unknown) => value as any

type Poison = (env: Env, held: JobQueue.Claim<string>) => Effect.Effect<unknown, unknown>

const enqueueWith = (options: unknown): Poison => (env) => env.q.enqueue(V, "poison", any(options))

/** What each call did before: "dies" = every later claim of the queue died on the stored record. */
const poisons: ReadonlyArray<readonly [string, Poison]> = [
  ["priority 1.5 (stored; every claim died: not an integer)", enqueueWith({ priority: 1.5 })],
  ["priority NaN (sorted first as 0; every claim died)", enqueueWith({ priority: Number.NaN })],
  ["priority Infinity (every claim died)", enqueueWith({ priority: Infinity })],
  ["priority 2^60 (every claim died: not a safe integer)", enqueueWith({ priority: 2 ** 60 })],
  ["priority \"urgent\" (no such name: stored without a priority; every claim died)", enqueueWith({ priority: "urgent" })],
  ["priority -1 (its key wrapped to 2^32 - 1: claimed last)", enqueueWith({ priority: -1 })],
  ["priority 2^32 (its key wrapped to 0: claimed first)", enqueueWith({ priority: 2 ** 32 })],
  ["maxAttempts 1.5 (every claim died)", enqueueWith({ maxAttempts: 1.5 })],
  ["maxAttempts NaN (every claim died)", enqueueWith({ maxAttempts: Number.NaN })],
  ["maxAttempts Infinity (every claim died)", enqueueWith({ maxAttempts: Infinity })],
  ["maxAttempts 0 (the job ran once although none was allowed)", enqueueWith({ maxAttempts: 0 })],
  ["dedupKey 42 (every claim died: not a string)", enqueueWith({ dedupKey: 42 })],
  ["headers { a: 1 } (every claim died)", enqueueWith({ headers: { a: 1 } })],
  ["id 123 (passed the id pattern as \"123\"; every claim that reached it died)", enqueueWith({ id: 123 })],
  ["runAt Infinity (its key wrapped to time 0: run at once)", enqueueWith({ runAt: Infinity })],
  ["runAt NaN (silently pending at once)", enqueueWith({ runAt: Number.NaN })],
  ["runAt an invalid Date (silently pending at once)", enqueueWith({ runAt: new Date("next tuesday") })],
  ["delay \"soon\" (a defect, not a typed error)", enqueueWith({ delay: "soon" })],
  ["delay { seconds: NaN } (silently no delay)", enqueueWith({ delay: { seconds: Number.NaN } })],
  ["a definition with maxAttempts NaN (every enqueue poisoned the queue)", (env) =>
    env.q.enqueue({ ...V, maxAttempts: Number.NaN }, "poison")],
  ["a definition with priority 0.5 (every enqueue poisoned the queue)", (env) =>
    env.q.enqueue({ ...V, priority: 0.5 }, "poison")],
  ["a definition with deadRetention Infinity (dead jobs swept at once: expiry key wrapped to 0)", (env) =>
    env.q.enqueue({ ...V, deadRetention: Duration.infinity }, "poison")],
  ["nack with error 42 (the retried record held it; every claim died)", (env, held) => env.q.nack(held, any(42), { delay: 0 })],
  ["deadLetter with reason {} (the dead record did not decode; cancels died)", (env, held) => env.q.deadLetter(held, any({}))],
  ["a custom backoff returning NaN (scheduled at NaN: run at once)", (env, held) =>
    env.q.nack({ ...held, definition: Job.define("v", { payload: Schema.String, backoff: () => Number.NaN }) }, "e")],
  ["a custom backoff returning garbage (a defect)", (env, held) =>
    env.q.nack({ ...held, definition: Job.define("v", { payload: Schema.String, backoff: () => any("later") }) }, "e")]
]

describe("poison values: refused at the edge; the queue claims, cancels and counts after", () => {
  for (const [name, poison] of poisons) {
    it.effect(name, () =>
      Effect.gen(function*() {
        const env = yield* openEnv
        yield* env.q.enqueue(V, "held")
        const [held] = yield* env.q.claim(V)
        const before = yield* snapshot(env)
        const exit = yield* Effect.exit(poison(env, held!))
        const error = failureOf(exit) as { readonly _tag?: string } | undefined
        assert.oneOf(error?._tag, ["InvalidOption", "InvalidJobId"], describeExit(exit))
        assert.deepStrictEqual(yield* snapshot(env), before, "nothing was written")
        yield* env.q.ack(held!) // still held: a refused settlement changes nothing
        env.done++
        yield* assertUsable(env)
      }))
  }
})

// ---- decode what is written ---------------------------------------------------------------------

const pick = <A>(prng: Prng, items: ReadonlyArray<A>): A => items[prng.int(0, items.length)]!

/** A string of 1 to `max` UTF-8 bytes of ASCII, accents, CJK, emoji and control characters. */
const randomText = (prng: Prng, maxChars: number): string => {
  const alphabet = ["a", "Z", "0", "-", "_", " ", "/", ".", ":", "é", "ß", "漢", "😀", "\u0001", "\u007f", "\"", "\\", "%"]
  let s = ""
  const n = 1 + prng.int(0, maxChars)
  for (let i = 0; i < n; i++) s += pick(prng, alphabet)
  return s
}

/** A valid duration in one of its input forms, from zero to about `maxMillis`. */
const randomDuration = (prng: Prng, maxMillis: number): Duration.Input => {
  const millis = Math.floor(prng.next() ** 4 * maxMillis)
  switch (prng.int(0, 6)) {
    case 0:
      return millis
    case 1:
      return `${millis} millis`
    case 2:
      return `${(millis / 1000).toFixed(3)} seconds` as Duration.Input
    case 3:
      return BigInt(millis) * 1_000_000n
    case 4:
      return [Math.floor(millis / 1000), (millis % 1000) * 1_000_000]
    default:
      return { milliseconds: millis }
  }
}

const randomPriority = (prng: Prng): Job.PriorityInput =>
  pick(prng, ["high", "normal", "low", 0, 2 ** 32 - 1, prng.int(0, 2 ** 31) * 2 + prng.int(0, 2)])

const randomAttempts = (prng: Prng): number => pick(prng, [1, 2, 3, 2 ** 31 - 1, 1 + prng.int(0, 2 ** 31 - 2)])

/** Valid enqueue options, each present or not. */
const randomOptions = (prng: Prng, i: number): JobQueue.EnqueueOptions => {
  const options: { -readonly [K in keyof JobQueue.EnqueueOptions]: JobQueue.EnqueueOptions[K] } = {}
  if (prng.next() < 0.7) options.priority = randomPriority(prng)
  const when = prng.int(0, 4)
  if (when === 1) options.delay = randomDuration(prng, 1e15)
  if (when === 2) options.runAt = (prng.next() * 2 - 1) * 8.64e15
  if (when === 3) options.runAt = new Date(Math.floor((prng.next() * 2 - 1) * 8.64e15))
  if (prng.next() < 0.5) options.dedupKey = randomText(prng, 200)
  if (prng.next() < 0.5) options.maxAttempts = randomAttempts(prng)
  if (prng.next() < 0.5) options.headers = { [randomText(prng, 20)]: randomText(prng, 100), trace: `t${i}` }
  if (prng.next() < 0.3) options.id = `job-${i}_${prng.int(0, 1e9)}`
  return options
}

/** A valid definition of queue "v", with random defaults and backoff. */
const randomDefinition = (prng: Prng): Job.Definition<string> =>
  Job.define("v", {
    payload: Schema.String,
    maxAttempts: randomAttempts(prng),
    priority: randomPriority(prng),
    leaseDuration: randomDuration(prng, 3_600_000),
    deadRetention: randomDuration(prng, 1e15),
    ...(prng.next() < 0.5 ? { keepDone: randomDuration(prng, 1e15) } : {}),
    backoff: pick(prng, [
      Job.Backoff.exponential({ base: randomDuration(prng, 10_000), max: randomDuration(prng, 1e15), jitter: prng.next() }),
      Job.Backoff.fixed(randomDuration(prng, 1e15)),
      Job.Backoff.linear({ step: randomDuration(prng, 1e12) }),
      Job.Backoff.none(),
      Job.Backoff.custom((attempt) => attempt * 1000)
    ])
  })

const expectedRunAt = (options: JobQueue.EnqueueOptions, now: number): number | undefined =>
  options.runAt !== undefined
    ? (typeof options.runAt === "number" ? options.runAt : options.runAt.getTime())
    : options.delay === undefined
    ? undefined
    : now + Duration.toMillis(Duration.fromInputUnsafe(options.delay))

describe("property: what the edge accepts is stored, read back, claimed and settled", () => {
  it.effect("300 random valid option sets and definitions (seeded)", () =>
    Effect.gen(function*() {
      const prng = makePrng("issue-12 valid")
      const env = yield* openEnv
      let dead = 0
      for (let i = 0; i < 300; i++) {
        const def = randomDefinition(prng)
        const options = randomOptions(prng, i)
        const now = yield* Clock.currentTimeMillis
        const { id, created } = yield* env.q.enqueue(def, `payload ${i}`, options)
        assert.isTrue(created)
        const record = Option.getOrThrow(yield* env.q.get(id))
        const runAt = expectedRunAt(options, now)
        const later = runAt !== undefined && runAt > now
        assert.strictEqual(record.status, later ? "Scheduled" : "Pending", `${i}`)
        assert.strictEqual(record.priority, Job.priorityValue(options.priority ?? def.priority))
        assert.strictEqual(record.maxAttempts, options.maxAttempts ?? def.maxAttempts)
        assert.strictEqual(record.dedupKey, options.dedupKey)
        assert.deepStrictEqual(record.headers, { ...options.headers })
        if (later) assert.strictEqual(record.runAt, runAt)
        if (later) {
          // far ahead stays ahead (its key's time is exact); the cancel reads and decodes it
          yield* TestClock.adjust("1 second")
          const still = Option.getOrThrow(yield* env.q.get(id))
          assert.strictEqual(still.status, runAt! > now + 1000 ? "Scheduled" : "Pending", `${i}: runAt ${runAt}`)
          assert.strictEqual(yield* env.q.cancel(id), "Removed")
        } else {
          const claims = yield* env.q.claim(def, { max: 1000 })
          assert.deepStrictEqual(claims.map((c) => [c.job.id, c.job.payload, c.job.attempts]), [[id, `payload ${i}`, 1]])
          const claim = claims[0]!
          const how = prng.int(0, 3)
          if (how === 0) {
            yield* env.q.ack(claim)
            env.done++
          } else if (how === 1) {
            const outcome = yield* env.q.nack(claim, randomText(prng, 300), prng.next() < 0.5 ? { delay: randomDuration(prng, 1e15) } : undefined)
            if (outcome === "DeadLettered") dead++
            else assert.oneOf(yield* env.q.cancel(id), ["Removed"]) // the retried record decodes
          } else {
            yield* env.q.deadLetter(claim, randomText(prng, 300))
            dead++
          }
          const after = yield* env.q.get(id)
          if (Option.isSome(after)) assert.oneOf(after.value.status, ["Dead", "Done"])
        }
        const stats = yield* env.q.stats("v")
        assert.deepStrictEqual([stats.pending, stats.scheduled, stats.claimed, stats.dead], [0, 0, 0, dead], `${i}`)
      }
    }), { timeout: 120_000 })
})
