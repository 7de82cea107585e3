// The KV writer's fence watch: a writer with nothing to write learns within `fenceCheckInterval`
// that a newer writer opened the store, with one small read per interval and nothing else; once
// it has stopped (`failure`, `stopped`), it touches the store no more, put retries included.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import { TestClock } from "effect/testing"
import type * as Kv from "../src/Kv.ts"
import { bytes, reasonOf } from "./utils/exits.ts"
import { driveOrDie, faultyMemory, openKv } from "./utils/kv.ts"

const put = (key: string, value: string): Kv.WriteOp => ({ _tag: "Put", key: bytes(key), value: bytes(value) })

/** Every request the faulty store saw, by kind. */
const requests = (control: { readonly counters: Effect.Effect<Record<string, { readonly requests: number }>> }) =>
  Effect.map(control.counters, (counters) => Object.fromEntries(Object.entries(counters).map(([op, c]) => [op, c.requests])))

describe("Kv fence watch", () => {
  it.effect("an idle writer reads one object per fenceCheckInterval and makes no other request", () =>
    Effect.gen(function*() {
      const { control, store } = yield* faultyMemory({ seed: 1 })
      const a = yield* driveOrDie(openKv(store, { fenceCheckInterval: "10 seconds" }), "open")
      yield* driveOrDie(a.kv.write([put("k", "v")]), "write")
      yield* control.resetCounters
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* requests(control), { get: 360, head: 0, put: 0, delete: 0, list: 0 })
      assert.isTrue(Option.isNone(yield* a.kv.failure))
    }))

  it.effect("an idle writer fenced by a newer one stops within one interval, then makes no request at all", () =>
    Effect.gen(function*() {
      const { control, reliable, store } = yield* faultyMemory({ seed: 2 })
      const a = yield* driveOrDie(openKv(store, { fenceCheckInterval: "10 seconds" }), "open A")
      yield* driveOrDie(a.kv.write([put("k", "a")]), "A writes")
      const stopped = yield* Effect.forkChild(Effect.flip(a.kv.stopped))
      yield* TestClock.adjust("3 seconds")
      yield* openKv(reliable)
      yield* TestClock.adjust("7 seconds")
      assert.strictEqual((yield* Fiber.join(stopped))._tag, "Fenced")
      const failure = yield* a.kv.failure
      assert.isTrue(Option.isSome(failure) && failure.value._tag === "Fenced" && failure.value.message.includes("newer writer"))
      yield* control.resetCounters
      assert.strictEqual(reasonOf(yield* Effect.exit(a.kv.write([put("k", "late")]))), "Fenced")
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* requests(control), { get: 0, head: 0, put: 0, delete: 0, list: 0 })
    }))

  it.effect("its own manifests, landing in the slot it watches, are not taken for a newer writer's", () =>
    Effect.gen(function*() {
      const { store } = yield* faultyMemory({ seed: 3, faults: { put: { latency: { _tag: "Fixed", millis: 3 } } } })
      // a manifest after every WAL object, checked every millisecond: the watch sees them land
      const a = yield* driveOrDie(openKv(store, { runFlushSegments: 1, fenceCheckInterval: "1 millis" }), "open")
      for (let i = 0; i < 50; i++) yield* driveOrDie(a.kv.write([put(`k${i % 5}`, `${i}`)]), `write ${i}`)
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* a.kv.failure))
      yield* driveOrDie(a.kv.write([put("last", "v")]), "still the writer")
    }))

  it.effect("a WAL put retrying a failing store stops retrying once the writer is found fenced", () =>
    Effect.gen(function*() {
      const { control, reliable, store } = yield* faultyMemory({ seed: 4, retry: { base: "1 millis", maxAttempts: 2 } })
      const a = yield* driveOrDie(openKv(store, { fenceCheckInterval: "10 seconds" }), "open A")
      // every WAL put fails from now on: the writer retries it with backoff, without end
      yield* control.setFaults({ put: { errorRate: 1, keyPrefix: "wal/" } })
      const write = yield* Effect.forkChild(Effect.exit(a.kv.write([put("k", "v")])))
      yield* TestClock.adjust("1 second")
      assert.isUndefined(write.pollUnsafe())
      yield* openKv(reliable)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(reasonOf(yield* Fiber.join(write)), "Fenced")
      yield* TestClock.adjust("1 minute") // a backoff sleeping when the fence was found ends
      yield* control.resetCounters
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* requests(control), { get: 0, head: 0, put: 0, delete: 0, list: 0 })
    }))
})
