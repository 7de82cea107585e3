// Closing, flushing, idleness, the minimum flush interval, backpressure and garbage collection.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Manifest from "../schema/Manifest.ts"
import type * as Kv from "../src/Kv.ts"
import { bytes, reasonOf, text } from "./utils/exits.ts"
import { driveOrDie, faultyMemory, openKv } from "./utils/kv.ts"

const put = (key: string, value: string): Kv.WriteOp => ({ _tag: "Put", key: bytes(key), value: bytes(value) })

describe("Kv lifecycle", () => {
  it.effect("closing flushes non-durable commits; afterwards commits fail Closed", () =>
    Effect.gen(function*() {
      const { reliable } = yield* faultyMemory({ seed: 1 })
      const a = yield* openKv(reliable)
      for (let i = 0; i < 5; i++) yield* a.kv.write([put(`k${i}`, "v")], { durable: false })
      yield* a.close
      assert.strictEqual(reasonOf(yield* Effect.exit(a.kv.write([put("late", "v")]))), "Closed")
      const b = yield* openKv(reliable)
      assert.strictEqual((yield* b.kv.scan({ prefix: bytes("k") })).length, 5)
    }))

  it.effect("flush waits until every commit so far is durable", () =>
    Effect.gen(function*() {
      const { control, reliable, store } = yield* faultyMemory({ seed: 2, faults: { put: { latency: { _tag: "Fixed", millis: 20 } } } })
      const a = yield* driveOrDie(openKv(store), "open")
      for (let i = 0; i < 3; i++) yield* a.kv.write([put(`k${i}`, "v")], { durable: false })
      const flushing = yield* Effect.forkChild(a.kv.flush)
      yield* TestClock.adjust(19)
      assert.isUndefined(flushing.pollUnsafe())
      yield* TestClock.adjust(1)
      yield* Fiber.join(flushing)
      assert.deepStrictEqual([(yield* a.kv.stats).durableSeq, (yield* a.kv.stats).lastSeq], [3, 3])
      yield* control.freeze // a crash right after the flush loses nothing
      const b = yield* openKv(reliable)
      assert.strictEqual((yield* b.kv.scan({ prefix: bytes("k") })).length, 3)
    }))

  it.effect("an idle writer makes no requests (without its fence check)", () =>
    Effect.gen(function*() {
      const { control, store } = yield* faultyMemory({ seed: 3 })
      const options = { runFlushSegments: 2, minFlushInterval: "50 millis", fenceCheckInterval: false } as const
      const a = yield* driveOrDie(openKv(store, options), "open")
      for (let i = 0; i < 10; i++) yield* driveOrDie(a.kv.write([put(`k${i}`, "v")]), "write")
      yield* driveOrDie(Effect.sleep("1 second"), "settle")
      const before = yield* control.operations
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* control.operations, before)
    }))

  it.effect("minFlushInterval spaces WAL puts; commits in between share one", () =>
    Effect.gen(function*() {
      const { control, store } = yield* faultyMemory({ seed: 4 })
      const a = yield* driveOrDie(openKv(store, { minFlushInterval: "100 millis" }), "open")
      yield* control.resetCounters
      const start = yield* Clock.currentTimeMillis
      const writers = Effect.forEach(Array.from({ length: 5 }, (_, i) => i), (i) =>
        Effect.andThen(Effect.sleep(`${i * 30} millis`), a.kv.write([put(`k${i}`, "v")])), { concurrency: "unbounded" })
      yield* driveOrDie(writers, "writers")
      const elapsed = (yield* Clock.currentTimeMillis) - start
      const puts = (yield* control.counters).put.requests
      // commits at 0, 30, 60, 90, 120 ms: WAL puts at 0, 100 and 200 ms at the most
      assert.isAtMost(puts, 3)
      assert.isAtLeast(elapsed, 100)
    }))

  it.effect("backpressure: unflushed bytes stay within the limit plus one commit", () =>
    Effect.gen(function*() {
      const { store } = yield* faultyMemory({ seed: 5, faults: { put: { latency: { _tag: "Fixed", millis: 10 } } } })
      const a = yield* driveOrDie(openKv(store, { maxUnflushedBytes: 1_000 }), "open")
      let highest = 0
      const sample = Effect.forever(Effect.andThen(
        Effect.map(a.kv.stats, (s) => void (highest = Math.max(highest, s.unflushedBytes))),
        Effect.sleep("1 millis")
      ))
      const sampler = yield* Effect.forkChild(sample)
      const value = "x".repeat(100)
      yield* driveOrDie(
        Effect.all(Array.from({ length: 100 }, (_, i) => a.kv.write([put(`k${i}`, value)], { durable: false })), { concurrency: "unbounded" }),
        "writes"
      )
      yield* driveOrDie(a.kv.flush, "flush")
      yield* Fiber.interrupt(sampler)
      assert.isAtMost(highest, 1_000 + 120)
      assert.strictEqual((yield* a.kv.stats).durableSeq, 100)
    }))

  it.effect("GC passes are skipped while nothing can be old enough: no listing after each run until the first thing kept may go", () =>
    Effect.gen(function*() {
      // no faults: the wrapper counts the requests
      const { control, raw, store } = yield* faultyMemory({ seed: 7 })
      const options = { runFlushSegments: 2, maxRuns: 2, gcMinAge: "10 minutes" as const, keepManifests: 2 }
      const a = yield* driveOrDie(openKv(store, options), "open")
      const writes = (from: number, n: number) =>
        Effect.forEach(Array.from({ length: n }, (_, i) => from + i), (i) => driveOrDie(a.kv.write([put(`k${i % 5}`, `${i}`)]), "write"), { discard: true })
      const lists = Effect.map(control.counters, (c) => c.list.requests)
      const manifests = Effect.map(Stream.runCollect(raw.list("manifest/")), (l) => l.length)
      // the first run written after the open makes a pass (what earlier writers left may go)
      yield* writes(0, 2)
      yield* driveOrDie(Effect.sleep("100 millis"), "runs")
      const afterFirst = yield* lists
      // many more runs, manifests and compactions, all young: not one pass
      yield* writes(2, 30)
      yield* driveOrDie(Effect.sleep("100 millis"), "runs")
      assert.strictEqual(yield* lists, afterFirst)
      const young = yield* manifests
      assert.isAbove(young, 10)
      // once the oldest kept thing is old enough, the next run makes a pass, and it deletes
      yield* TestClock.adjust("10 minutes")
      yield* writes(32, 2)
      yield* driveOrDie(Effect.sleep("100 millis"), "runs")
      assert.isAbove(yield* lists, afterFirst)
      assert.isBelow(yield* manifests, young)
    }))

  it.effect("GC keeps fences and the newest WAL object, and deletes only what no kept manifest needs, once old enough", () =>
    Effect.gen(function*() {
      const { raw, reliable } = yield* faultyMemory({ seed: 6 })
      const options = { runFlushSegments: 2, maxRuns: 2, gcMinAge: "10 minutes" as const, keepManifests: 2 }
      yield* openKv(reliable, options) // an earlier writer: its fence stays
      const a = yield* driveOrDie(openKv(reliable, options), "open")
      const writes = (n: number) =>
        Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => driveOrDie(a.kv.write([put(`k${i % 5}`, `${i}`)]), "write"), { discard: true })
      yield* writes(20)
      yield* driveOrDie(Effect.sleep("100 millis"), "runs")
      const keysOf = (prefix: string) => Effect.map(Stream.runCollect(raw.list(prefix)), (l) => l.map((e) => `${e.key.slice(prefix.length)}:${e.size}`))
      const young = { runs: yield* keysOf("runs/"), manifests: yield* keysOf("manifest/") }
      // nothing is old enough yet: every manifest and run is still there
      assert.isAbove(young.manifests.length, 2)
      yield* TestClock.adjust("11 minutes")
      yield* writes(6) // more manifests, and GC after each
      yield* driveOrDie(Effect.sleep("100 millis"), "runs")
      const manifests = yield* keysOf("manifest/")
      const wal = yield* keysOf("wal/")
      const runs = yield* keysOf("runs/")
      // the manifests from before the jump are old, and more than `keepManifests` came after them: all gone
      for (const manifest of young.manifests) assert.notInclude(manifests, manifest)
      assert.isBelow(runs.length, young.runs.length)
      // both fences survive; the newest WAL object survives
      assert.strictEqual(wal.filter((w) => w.endsWith(":0")).length, 2)
      assert.include(wal, wal.at(-1)!)
      // every run the latest manifest names exists
      const latest = Manifest.decode((yield* raw.get(`manifest/${manifests.at(-1)!.split(":")[0]}`)).bytes)
      for (const ref of latest.runs) assert.isTrue(runs.some((r) => r.startsWith(ref.id)), ref.id)
      const b = yield* driveOrDie(openKv(reliable), "reopen")
      assert.deepStrictEqual(Option.map(yield* b.kv.get(bytes("k0")), text), Option.some("5"))
    }))
})
