// One writer at a time: a newer writer fences the older one, whatever the interleaving, including
// a stalled zombie that wakes after the new writer wrote, compacted and collected garbage.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import type * as Kv from "../src/Kv.ts"
import { bytes, reasonOf, text } from "./utils/exits.ts"
import { drive, driveOrDie, faultyMemory, openKv } from "./utils/kv.ts"

const walKey = (id: number) => `wal/${String(id).padStart(20, "0")}`
const put = (key: string, value: string): Kv.WriteOp => ({ _tag: "Put", key: bytes(key), value: bytes(value) })
const has = (kv: Kv.Service, key: string) => Effect.map(kv.get(bytes(key)), Option.isSome)
/** How `effect` ended within a virtual second: `Success`, a reason or error tag, or `NotDone`. */
const outcome = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(drive(effect, 1_000), (exit) => (exit === undefined ? "NotDone" : reasonOf(exit)))
const dump = (kv: Kv.Service) =>
  Effect.map(kv.scan({ prefix: new Uint8Array(0) }), (entries) => entries.map((e) => `${text(e.key)}=${text(e.value)}`))

describe("Kv fencing", () => {
  it.effect("a newer writer fences the older: its next commit fails Fenced and is not seen", () =>
    Effect.gen(function*() {
      const { reliable } = yield* faultyMemory({ seed: 1 })
      const a = yield* openKv(reliable)
      yield* a.kv.write([put("x", "1")])
      const b = yield* openKv(reliable)
      assert.strictEqual(reasonOf(yield* Effect.exit(a.kv.write([put("x", "2")]))), "Fenced")
      assert.strictEqual(reasonOf(yield* Effect.exit(a.kv.write([put("y", "3")], { durable: false }))), "Fenced")
      assert.strictEqual(reasonOf(yield* Effect.exit(a.kv.flush)), "Fenced")
      assert.deepStrictEqual(yield* dump(b.kv), ["x=1"])
      assert.deepStrictEqual([(yield* a.kv.stats).epoch, (yield* b.kv.stats).epoch], [1, 2])
      yield* b.kv.write([put("z", "4")])
      const c = yield* openKv(reliable)
      assert.deepStrictEqual(yield* dump(c.kv), ["x=1", "z=4"])
    }))

  it.effect("every interleaving of the old writer's in-flight WAL and manifest puts with the new open", () =>
    Effect.gen(function*() {
      for (let offset = 0; offset <= 24; offset++) {
        const { reliable, store } = yield* faultyMemory({ seed: offset, faults: { put: { latency: { _tag: "Fixed", millis: 4 } } } })
        const a = yield* driveOrDie(openKv(store, { runFlushSegments: 1 }), "open A")
        const acks: Array<boolean> = []
        const writes = Effect.forEach(Array.from({ length: 6 }, (_, i) => i), (i) =>
          Effect.map(Effect.exit(a.kv.write([put(`k${i}`, "v")])), (exit) => void acks.push(Exit.isSuccess(exit))), { discard: true })
        const fiber = yield* Effect.forkChild(writes)
        yield* TestClock.adjust(offset)
        const b = yield* openKv(reliable) // the new writer's store answers at once
        yield* drive(Fiber.join(fiber), 1_000)
        const seen = yield* Effect.forEach(acks, (_, i) => has(b.kv, `k${i}`))
        // acknowledged by A exactly when B recovered it; once fenced, never acknowledged again
        assert.deepStrictEqual(seen, acks, `offset ${offset}`)
        const firstLost = acks.indexOf(false)
        if (firstLost >= 0) assert.isTrue(acks.slice(firstLost).every((ok) => !ok), `offset ${offset}: ${acks}`)
        assert.strictEqual(yield* outcome(a.kv.write([put("late", "v")])), "Fenced")
        const c = yield* openKv(reliable)
        assert.isFalse(yield* has(c.kv, "late"))
      }
    }))

  it.effect("a zombie stalled mid-put wakes after the new writer wrote, compacted and collected garbage: Fenced", () =>
    Effect.gen(function*() {
      const { control, raw, reliable, store } = yield* faultyMemory({ seed: 7 })
      const options = { runFlushSegments: 1, maxRuns: 1, gcMinAge: 0, keepManifests: 1 }
      const a = yield* driveOrDie(openKv(store, options), "open A")
      yield* driveOrDie(a.kv.write([put("before", "a")]), "A writes")
      // A stalls: its next puts take an hour
      yield* control.setFaults({ put: { latency: { _tag: "Fixed", millis: 3_600_000 } } })
      const stalled = yield* Effect.forkChild(Effect.exit(a.kv.write([put("zombie", "a")])))
      yield* TestClock.adjust(1)
      const b = yield* driveOrDie(openKv(reliable, options), "open B")
      for (let i = 0; i < 20; i++) yield* driveOrDie(b.kv.write([put(`b${i % 4}`, `${i}`)]), "B writes")
      yield* driveOrDie(Effect.sleep("100 millis"), "B's runs, compaction and GC")
      const walBefore = (yield* Stream.runCollect(raw.list("wal/"))).map((e) => `${e.key}:${e.size}`)
      yield* TestClock.adjust(3_600_000)
      const exit = yield* driveOrDie(Fiber.join(stalled), "A wakes")
      assert.strictEqual(reasonOf(exit), "Fenced")
      const walAfter = (yield* Stream.runCollect(raw.list("wal/"))).map((e) => `${e.key}:${e.size}`)
      assert.deepStrictEqual(walAfter, walBefore, "the zombie added no WAL object")
      const c = yield* driveOrDie(openKv(reliable), "open C")
      assert.deepStrictEqual(yield* dump(c.kv), ["b0=16", "b1=17", "b2=18", "b3=19", "before=a"])
      // the fences of A's and B's opens are still there
      assert.isAtLeast(walAfter.filter((w) => w.endsWith(":0")).length, 2)
    }))

  it.effect("a zombie's WAL put that lands after the new open behind a gap is never acknowledged", () =>
    Effect.gen(function*() {
      const { control, reliable, store } = yield* faultyMemory({ seed: 11 })
      const a = yield* driveOrDie(openKv(store, { maxWalPutsInFlight: 2 }), "open A") // fence at wal 1
      // A's first batch (wal 2) stalls for an hour; its second (wal 3) lands at once
      yield* control.setFaults({ put: { latency: { _tag: "Fixed", millis: 3_600_000 }, keyPrefix: walKey(2) } })
      const first = yield* Effect.forkChild(Effect.exit(a.kv.write([put("x", "1")])))
      yield* TestClock.adjust(1)
      const second = yield* Effect.forkChild(Effect.exit(a.kv.write([put("y", "2")])))
      yield* TestClock.adjust(1)
      // B sees wal 3 but not wal 2: it fences the gap, so A's late put there cannot land
      const b = yield* driveOrDie(openKv(reliable), "open B")
      assert.deepStrictEqual(yield* dump(b.kv), [])
      yield* TestClock.adjust(3_600_000)
      assert.strictEqual(reasonOf(yield* Fiber.join(first)), "Fenced")
      assert.strictEqual(reasonOf(yield* Fiber.join(second)), "Fenced")
      yield* driveOrDie(b.kv.write([put("b", "v")]), "B writes")
      const c = yield* driveOrDie(openKv(reliable), "open C")
      assert.deepStrictEqual(yield* dump(c.kv), ["b=v"])
    }))

  it.effect("a zombie's segment landing past the new writer's fence is skipped by it and by every later recovery", () =>
    Effect.gen(function*() {
      const { control, reliable, store } = yield* faultyMemory({ seed: 12 })
      const a = yield* driveOrDie(openKv(store, { maxWalPutsInFlight: 3 }), "open A")
      yield* driveOrDie(a.kv.write([put("acked", "a")]), "A's first batch (wal 2)")
      // the next two batches (wal 3 and 4) take 100 ms: B opens and fences wal 3 meanwhile
      yield* control.setFaults({ put: { latency: { _tag: "Fixed", millis: 100 }, keyPrefix: "wal/" } })
      const first = yield* Effect.forkChild(Effect.exit(a.kv.write([put("x", "1")])))
      yield* TestClock.adjust(1)
      const second = yield* Effect.forkChild(Effect.exit(a.kv.write([put("y", "2")])))
      yield* TestClock.adjust(1)
      const b = yield* driveOrDie(openKv(reliable), "open B")
      yield* TestClock.adjust(200) // A's wal 3 fails against the fence, its wal 4 lands
      assert.strictEqual(reasonOf(yield* Fiber.join(first)), "Fenced")
      assert.strictEqual(reasonOf(yield* Fiber.join(second)), "Fenced")
      yield* driveOrDie(b.kv.write([put("b", "v")]), "B writes past A's segment at wal 4")
      assert.isAbove((yield* b.kv.stats).nextWalId, 5)
      const c = yield* driveOrDie(openKv(reliable), "open C")
      assert.deepStrictEqual(yield* dump(c.kv), ["acked=a", "b=v"])
    }))

  it.effect("a zombie stalled in its manifest put is fenced when it wakes, even if the slot was collected", () =>
    Effect.gen(function*() {
      const { control, reliable, store } = yield* faultyMemory({ seed: 8 })
      const options = { runFlushSegments: 1, gcMinAge: 0, keepManifests: 1 }
      const a = yield* driveOrDie(openKv(store, options), "open A")
      yield* control.setFaults({ put: { latency: { _tag: "Fixed", millis: 3_600_000 }, keyPrefix: "manifest/" } })
      yield* driveOrDie(a.kv.write([put("x", "a")]), "A writes; its manifest put stalls")
      const b = yield* driveOrDie(openKv(reliable, options), "open B")
      for (let i = 0; i < 5; i++) yield* driveOrDie(b.kv.write([put(`b${i}`, "v")]), "B writes")
      yield* TestClock.adjust(3_600_000)
      yield* driveOrDie(Effect.sleep("10 millis"), "A's maintainer wakes")
      assert.strictEqual(yield* outcome(a.kv.write([put("y", "a")])), "Fenced")
      const c = yield* driveOrDie(openKv(reliable), "open C")
      assert.deepStrictEqual(yield* dump(c.kv), ["b0=v", "b1=v", "b2=v", "b3=v", "b4=v", "x=a"])
    }))

  it.effect("lost responses on every WAL, run and manifest put are success, not Fenced", () =>
    Effect.gen(function*() {
      const { control, reliable, store } = yield* faultyMemory({ seed: 9, faults: { put: { lostResponseRate: 1 } }, retry: { base: "1 millis" } })
      const a = yield* driveOrDie(openKv(store, { runFlushSegments: 1, maxRuns: 2 }), "open")
      for (let i = 0; i < 10; i++) yield* driveOrDie(a.kv.write([put(`k${i}`, "v")]), `write ${i}`)
      yield* driveOrDie(Effect.sleep("50 millis"), "runs and manifests")
      assert.isAbove((yield* control.counters).put.lostResponses, 20)
      yield* driveOrDie(a.kv.write([put("last", "v")]), "still the writer")
      const b = yield* driveOrDie(openKv(reliable), "reopen")
      assert.strictEqual((yield* b.kv.scan({ prefix: bytes("") })).length, 11)
    }))

  it.effect("a WAL or manifest put whose response is lost past the store's own retries: the writer's retry finds its own object, not a newer writer's", () =>
    Effect.gen(function*() {
      // the store retries nothing here, so the writer's own retry meets the object its lost put wrote
      const { control, reliable, store } = yield* faultyMemory({ seed: 11, retry: { maxAttempts: 1 } })
      const a = yield* driveOrDie(openKv(store, { runFlushSegments: 1, maxRuns: 2 }), "open")
      yield* control.setFaults({ put: { lostResponseRate: 1 } })
      for (let i = 0; i < 6; i++) yield* driveOrDie(a.kv.write([put(`k${i}`, "v")]), `write ${i}`)
      yield* driveOrDie(Effect.sleep("50 millis"), "runs and manifests")
      assert.isAbove((yield* control.counters).put.lostResponses, 10)
      assert.isTrue(Option.isNone(yield* a.kv.failure), "the writer still runs")
      yield* control.setFaults({})
      yield* driveOrDie(a.kv.write([put("last", "v")]), "still the writer")
      const b = yield* driveOrDie(openKv(reliable), "reopen")
      assert.strictEqual((yield* b.kv.scan({ prefix: bytes("") })).length, 7)
    }))

  it.effect("two writers opening at once: both open, the later epoch keeps writing, the other is fenced", () =>
    Effect.gen(function*() {
      const { store } = yield* faultyMemory({ seed: 10, faults: { all: { latency: { _tag: "Uniform", min: 0, max: 3 } } } })
      const [b, c] = yield* driveOrDie(Effect.all([openKv(store), openKv(store)], { concurrency: 2 }), "open both")
      const epochs = [(yield* b.kv.stats).epoch, (yield* c.kv.stats).epoch]
      assert.deepStrictEqual([...epochs].sort(), [1, 2])
      const [older, newer] = epochs[0]! < epochs[1]! ? [b, c] : [c, b]
      assert.strictEqual(yield* outcome(older.kv.write([put("o", "v")])), "Fenced")
      assert.strictEqual(yield* outcome(newer.kv.write([put("n", "v")])), "Success")
    }))
})
