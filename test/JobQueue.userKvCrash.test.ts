// The user KV namespace across crashes, on the fault-injecting memory store: writes that returned
// survive a crash (their scope never closed), and a compareAndSet during a store outage answers a
// mismatch at once but never reports a write that is not durable.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Schema, Scope } from "effect"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import { bytes, reasonOf, text } from "./utils/exits.ts"
import { drive, faultyMemory } from "./utils/kv.ts"
import { type AnyStore, layerOf } from "./utils/stores.ts"

const Email = Job.define("emails", { payload: Schema.Struct({ to: Schema.String }) })

/** A queue over `store` in a scope of its own, never closed here (abandoned: a crash). */
const open = (store: AnyStore) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      JobQueue.layer().pipe(Layer.provide(Kv.layer()), Layer.provide(layerOf(store))),
      scope
    )
    return { q: Context.get(context, JobQueue.JobQueue), scope }
  })

const entries = (q: JobQueue.Service) =>
  Effect.map(q.kv.scan(""), (all) => Object.fromEntries(all.map((e) => [e.key, text(e.value)])))

describe("JobQueue user KV across crashes", () => {
  it.effect("kv.put, compareAndSet and enqueue's kv that returned are all there after a crash and a reopen", () =>
    Effect.gen(function*() {
      const { control, raw, store } = yield* faultyMemory({ seed: "kv-crash" })
      const { q } = yield* open(store)
      yield* q.kv.put("a", bytes("1"))
      assert.isTrue(yield* q.kv.compareAndSet("b", Option.none(), bytes("2")))
      yield* q.kv.put("c", bytes("old"))
      assert.isTrue(yield* q.kv.compareAndSet("c", bytes("old"), bytes("3")))
      yield* q.enqueue(Email, { to: "x" }, { kv: { d: bytes("4") } })
      // the crash: the store stops answering, the scope is never closed
      yield* control.freeze
      const reopened = yield* open(raw)
      assert.deepStrictEqual(yield* entries(reopened.q), { a: "1", b: "2", c: "3", d: "4" })
      assert.strictEqual((yield* reopened.q.stats("emails")).pending, 1)
      yield* Scope.close(reopened.scope, Exit.void)
    }))

  for (const outage of ["transient", "permanent"] as const) {
    const how = outage === "transient" ? "hangs while the store is unavailable" : "fails Closed when a put fails for good"
    it.effect(`during a ${outage} outage, a compareAndSet that does not match answers false; one that matches ${how}; after a crash the old value is there and it succeeds`, () =>
      Effect.gen(function*() {
        const { control, raw, store } = yield* faultyMemory({ seed: `cas-${outage}` })
        const { q } = yield* open(store)
        yield* q.kv.put("lock", bytes("old"))
        yield* control.setFaults({ put: { errorRate: 1, errorReason: outage === "transient" ? "Unavailable" : "Unknown" } })
        assert.isFalse(yield* q.kv.compareAndSet("lock", bytes("other"), bytes("mine")))
        assert.isFalse(yield* q.kv.compareAndSet("lock", Option.none(), bytes("mine")))
        const exit = yield* drive(q.kv.compareAndSet("lock", bytes("old"), bytes("new")), 3_000)
        if (outage === "transient") assert.isUndefined(exit, "still waiting for its WAL put after 3 virtual seconds")
        else assert.strictEqual(reasonOf(exit!), "Closed")
        yield* control.freeze
        const reopened = yield* open(raw)
        assert.deepStrictEqual(Option.map(yield* reopened.q.kv.get("lock"), text), Option.some("old"))
        assert.isTrue(yield* reopened.q.kv.compareAndSet("lock", bytes("old"), bytes("new")))
        assert.deepStrictEqual(Option.map(yield* reopened.q.kv.get("lock"), text), Option.some("new"))
        yield* Scope.close(reopened.scope, Exit.void)
      }))
  }
})
