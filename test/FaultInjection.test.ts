// The retry policy and the fault-injecting store, under TestClock: no real sleeping anywhere.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as FaultInjection from "../src/FaultInjection.ts"
import { ObjectStore } from "../src/ObjectStore.ts"
import * as ObjectStoreModule from "../src/ObjectStore.ts"
import { bytes, reasonOf, text } from "./utils/exits.ts"


/** A raw memory store, and over it the faulty store with the retry policy and its control. */
const setup = (options: FaultInjection.Options) =>
  Effect.gen(function*() {
    const raw = yield* Effect.provide(Effect.map(ObjectStore, (s) => s), ObjectStoreModule.layerMemory({ retry: false }))
    const context = yield* Layer.build(FaultInjection.layer(options).pipe(Layer.provide(Layer.succeed(ObjectStore, raw))))
    return { raw, store: Context.get(context, ObjectStore), control: Context.get(context, FaultInjection.FaultInjection) }
  })


/**
 * Runs `effect` in a fiber while virtual time moves on, 100 ms at a time, until it is done (or
 * `millis` have passed), then joins it. Stepping matters: a fiber that works between two sleeps
 * yields to the event loop, and a single big adjustment would leave its next sleep behind.
 */
const withTime = <A, E>(effect: Effect.Effect<A, E>, millis = 60_000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Effect.exit(effect))
    for (let elapsed = 0; elapsed < millis && fiber.pollUnsafe() === undefined; elapsed += 100) {
      yield* TestClock.adjust(100)
    }
    return yield* Fiber.join(fiber)
  })

describe("retry policy", () => {
  it.effect("a lost response on put-if-absent is success after the retry", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* setup({ seed: 1, faults: { put: { lostResponseRate: 1 } } })
      const exit = yield* withTime(store.put("wal/1", bytes("batch"), { ifNoneMatch: "*" }))
      assert.isTrue(Exit.isSuccess(exit), reasonOf(exit))
      const stored = yield* raw.get("wal/1")
      assert.strictEqual(text(stored.bytes), "batch")
      if (Exit.isSuccess(exit)) assert.strictEqual(exit.value, stored.etag)
      const counters = yield* control.counters
      assert.deepStrictEqual([counters.put.requests, counters.head.requests], [2, 1])
    }))

  it.effect("a lost response on ifMatch is success after the retry", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* setup({ seed: 2 })
      const v1 = yield* store.put("manifest", bytes("v1"))
      yield* control.setFaults({ put: { lostResponseRate: 1 } })
      const exit = yield* withTime(store.put("manifest", bytes("v2"), { ifMatch: v1 }))
      assert.isTrue(Exit.isSuccess(exit), reasonOf(exit))
      assert.strictEqual(text((yield* raw.get("manifest")).bytes), "v2")
    }))

  it.effect("metadata read back does not show the write token", () =>
    Effect.gen(function*() {
      const { raw, store } = yield* setup({ seed: 3 })
      yield* store.put("k", bytes("x"), {}, { a: "1" })
      assert.deepStrictEqual((yield* store.get("k")).metadata, { a: "1" })
      assert.deepStrictEqual((yield* store.head("k")).metadata, { a: "1" })
      assert.match((yield* raw.head("k")).metadata["bucketq-token"] ?? "", /^[0-9a-f]{32}$/)
    }))

  it.effect("a foreign object found after an uncertain attempt is PreconditionFailed", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* setup({ seed: 4, faults: { put: { errorRate: 1, errorReason: "Unavailable" } } })
      const fiber = yield* Effect.forkChild(Effect.exit(store.put("wal/7", bytes("mine"), { ifNoneMatch: "*" })))
      yield* TestClock.adjust(1) // first attempt fails, the retry waits
      yield* raw.put("wal/7", bytes("theirs"), { ifNoneMatch: "*" }) // another writer takes the key
      yield* control.setFaults({})
      yield* TestClock.adjust(60_000)
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber)), "PreconditionFailed")
      assert.strictEqual(text((yield* raw.get("wal/7")).bytes), "theirs")
    }))

  it.effect("when the settling HEAD cannot be done, the outcome stays Unavailable, not PreconditionFailed", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* setup({ seed: 17, faults: { put: { errorRate: 1 } } })
      const fiber = yield* Effect.forkChild(Effect.exit(store.put("wal/8", bytes("mine"), { ifNoneMatch: "*" })))
      yield* TestClock.adjust(1)
      yield* raw.put("wal/8", bytes("maybe mine"), { ifNoneMatch: "*" })
      yield* control.setFaults({ head: { errorRate: 1 } })
      yield* TestClock.adjust(60_000)
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber)), "Unavailable")
    }))

  it.effect("a precondition failure on the first attempt is final, with no HEAD", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* setup({ seed: 5 })
      yield* raw.put("taken", bytes("x"))
      assert.strictEqual(reasonOf(yield* Effect.exit(store.put("taken", bytes("y"), { ifNoneMatch: "*" }))), "PreconditionFailed")
      assert.deepStrictEqual([(yield* control.counters).put.requests, (yield* control.counters).head.requests], [1, 0])
    }))

  it.effect("throttling is retried with backoff, then surfaces Throttled after the bound", () =>
    Effect.gen(function*() {
      const { control, store } = yield* setup({ seed: 6, faults: { put: { errorRate: 1, errorReason: "Throttled" } } })
      const fiber = yield* Effect.forkChild(Effect.exit(store.put("k", bytes("x"))))
      // 6 attempts, delays ≈ 50, 100, 200, 400, 800 ms ×[0.8, 1.2]: between 1.24 s and 1.86 s
      yield* TestClock.adjust(1_200)
      assert.isUndefined(fiber.pollUnsafe())
      assert.isBelow((yield* control.counters).put.requests, 6)
      yield* TestClock.adjust(700)
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber)), "Throttled")
      assert.strictEqual((yield* control.counters).put.requests, 6)
    }))

  it.effect("unavailability is retried up to a configured bound, and the delay is capped", () =>
    Effect.gen(function*() {
      const { control, store } = yield* setup({
        seed: 7,
        faults: { all: { errorRate: 1, errorReason: "Unavailable" } },
        retry: { maxAttempts: 10, base: "1 second", max: "2 seconds" }
      })
      const fiber = yield* Effect.forkChild(Effect.exit(store.get("k")))
      // delays 1, 2, 2, ... s (±20%): 9 of them ≤ 9 × 2.4 s
      yield* TestClock.adjust(21_600)
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber)), "Unavailable")
      assert.strictEqual((yield* control.counters).get.requests, 10)
    }))

  it.effect("a transient failure heals: the operation succeeds once the store answers", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* setup({ seed: 8, faults: { get: { errorRate: 1 } } })
      yield* raw.put("k", bytes("value"))
      const fiber = yield* Effect.forkChild(store.get("k"))
      yield* TestClock.adjust(120)
      yield* control.setFaults({})
      yield* TestClock.adjust(60_000)
      assert.strictEqual(text((yield* Fiber.join(fiber)).bytes), "value")
    }))

  it.effect("final reasons are not retried", () =>
    Effect.gen(function*() {
      const { control, store } = yield* setup({ seed: 9, faults: { put: { errorRate: 1, errorReason: "Unknown" } } })
      assert.strictEqual(reasonOf(yield* Effect.exit(store.put("k", bytes("x")))), "Unknown")
      assert.strictEqual(reasonOf(yield* Effect.exit(store.get("missing"))), "NotFound")
      assert.deepStrictEqual([(yield* control.counters).put.requests, (yield* control.counters).get.requests], [1, 1])
    }))

  it.effect("a listing that fails part-way resumes after its last key: no key twice, none missing", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* setup({ seed: 10 })
      const keys = Array.from({ length: 3500 }, (_, i) => `k/${String(i).padStart(5, "0")}`)
      for (const key of keys) yield* raw.put(key, bytes(""))
      yield* control.setFaults({ list: { errorRate: 0.5 } })
      const exit = yield* withTime(Stream.runCollect(store.list("k/")))
      assert.isTrue(Exit.isSuccess(exit), reasonOf(exit))
      if (Exit.isSuccess(exit)) assert.deepStrictEqual(exit.value.map((e) => e.key), keys)
      const counters = yield* control.counters
      assert.isAbove(counters.list.errors, 0)
      assert.strictEqual(counters.list.requests - counters.list.errors, 4)
    }))
})

describe("fault injection", () => {
  it.effect("latency is slept on the Clock", () =>
    Effect.gen(function*() {
      const { store } = yield* setup({ seed: 11, faults: { put: { latency: { _tag: "Fixed", millis: 30 } } } })
      const fiber = yield* Effect.forkChild(store.put("k", bytes("x")))
      yield* TestClock.adjust(29)
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust(1)
      yield* Fiber.join(fiber)
    }))

  it.effect("log-normal latency has about the median asked for", () =>
    Effect.gen(function*() {
      const { store } = yield* setup({ seed: 12, faults: { head: { latency: { _tag: "LogNormal", p50: 30, p99: 120 } } } })
      yield* store.put("k", bytes("x"))
      const start = yield* Clock.currentTimeMillis
      const ends: Array<number> = []
      const fibers = yield* Effect.forEach(Array.from({ length: 400 }), () =>
        Effect.forkChild(Effect.andThen(store.head("k"), Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => ends.push(t - start))))))
      yield* TestClock.adjust(10_000)
      yield* Fiber.joinAll(fibers)
      ends.sort((a, b) => a - b)
      const p50 = ends[200]!
      const p99 = ends[396]!
      assert.isTrue(p50 > 25 && p50 < 36, `p50 ${p50}`)
      assert.isTrue(p99 > 80 && p99 < 180, `p99 ${p99}`)
    }))

  it.effect("freeze at operation k: from k on nothing completes; applyFirst lands request k", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* setup({ seed: 13, retry: false })
      yield* store.put("a", bytes("1"))
      yield* control.freezeAt(2, { applyFirst: true })
      yield* store.put("b", bytes("2")) // operation 1
      const landed = yield* Effect.forkChild(store.put("c", bytes("3"))) // operation 2: applied, never answered
      const lost = yield* Effect.forkChild(store.put("d", bytes("4"))) // operation 3: never applied
      yield* TestClock.adjust(3_600_000)
      assert.isUndefined(landed.pollUnsafe())
      assert.isUndefined(lost.pollUnsafe())
      assert.isTrue(yield* control.frozen)
      assert.deepStrictEqual(yield* Stream.runCollect(raw.list("")).pipe(Effect.map((l) => l.map((e) => e.key))), ["a", "b", "c"])
      yield* Fiber.interrupt(landed)
      yield* Fiber.interrupt(lost)
      yield* control.unfreeze
      yield* store.put("e", bytes("5"))
      assert.strictEqual(yield* control.operations, 5)
    }))

  it.effect("the same seed gives the same faults; another seed others", () =>
    Effect.gen(function*() {
      const run = (seed: number) =>
        Effect.gen(function*() {
          const { store } = yield* setup({ seed, retry: false, faults: { all: { errorRate: 0.3, lostResponseRate: 0.2 } } })
          const outcomes: Array<string> = []
          for (let i = 0; i < 200; i++) outcomes.push(reasonOf(yield* Effect.exit(store.put(`k/${i % 7}`, bytes(`${i}`)))))
          return outcomes.join(",")
        })
      const [a, b, c] = [yield* run(42), yield* run(42), yield* run(43)]
      assert.strictEqual(a, b)
      assert.notStrictEqual(a, c)
      assert.include(a, "Unavailable")
    }))

  it.effect("counters: requests and bytes per operation kind, below the retry policy", () =>
    Effect.gen(function*() {
      const { control, store } = yield* setup({ seed: 14 })
      yield* store.put("a", bytes("12345"))
      yield* store.put("b", bytes("123"))
      yield* store.get("a")
      yield* store.get("a", { range: { start: 1, end: 3 } })
      yield* store.head("b")
      yield* store.delete("b")
      yield* Stream.runCollect(store.list(""))
      const c = yield* control.counters
      assert.deepStrictEqual(
        [c.put.requests, c.put.bytesWritten, c.get.requests, c.get.bytesRead, c.head.requests, c.delete.requests, c.list.requests],
        [2, 8, 2, 7, 1, 1, 1]
      )
      yield* control.resetCounters
      assert.strictEqual((yield* control.counters).put.requests, 0)
    }))

  it.effect("keyPrefix limits faults to some keys", () =>
    Effect.gen(function*() {
      const { store } = yield* setup({ seed: 15, retry: false, faults: { put: { errorRate: 1, keyPrefix: "wal/" } } })
      yield* store.put("runs/1", bytes("x"))
      assert.strictEqual(reasonOf(yield* Effect.exit(store.put("wal/1", bytes("x")))), "Unavailable")
    }))

  it.effect("invalid input is refused before any request", () =>
    Effect.gen(function*() {
      const { control, store } = yield* setup({ seed: 16 })
      const refused: Array<Effect.Effect<unknown, unknown>> = [
        store.put("a//b", bytes("x")),
        store.put("ok", bytes("x"), {}, { "bucketq-token": "forged" }),
        store.get("../etc"),
        store.get("ok", { range: { start: -5 } }),
        store.head(""),
        store.delete("a\u0000"),
        Stream.runCollect(store.list("x//"))
      ]
      for (const effect of refused) assert.isTrue(Exit.isFailure(yield* Effect.exit(effect)))
      const c = yield* control.counters
      assert.strictEqual(c.put.requests + c.get.requests + c.head.requests + c.delete.requests + c.list.requests, 0)
      assert.strictEqual(yield* control.operations, 0)
    }))
})
