// awaitCompletion answers with what is durable: a job found done (or gone) while its ack is still on
// its way to the store is answered once the ack is durable, as a waiter is woken only then; a crash
// before that must not leave a caller told "Completed" with the job pending again.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import { faultyMemory } from "./utils/kv.ts"
import { type AnyStore, layerOf } from "./utils/stores.ts"

const Kept = Job.define("kept", { payload: Schema.Struct({ n: Schema.Number }), keepDone: "1 day" })
const Forgotten = Job.define("forgotten", { payload: Schema.Struct({ n: Schema.Number }) })

/** A queue over `store` in a scope never closed (a crash when abandoned). */
const open = (store: AnyStore) =>
  Effect.gen(function*() {
    const context = yield* Layer.buildWithScope(
      JobQueue.layer().pipe(Layer.provide(Kv.layer({ useLocalLog: false })), Layer.provide(layerOf(store))),
      yield* Scope.make()
    )
    return Context.get(context, JobQueue.JobQueue)
  })

describe("JobQueue.awaitCompletion and durability", () => {
  for (const definition of [Kept, Forgotten]) {
    const found = definition === Kept ? "done" : "gone"
    it.effect(`a job found ${found} while its ack is not durable yet: answered once it is, and a crash before leaves no answer`, () =>
      Effect.gen(function*() {
        const { control, reliable, store } = yield* faultyMemory({ seed: 1 })
        const queue = yield* open(store)
        const { id } = yield* queue.enqueue(definition, { n: 1 })
        const [claim] = yield* queue.claim(definition)
        // WAL puts take 100 ms from now: the ack is committed at once, durable 100 ms later
        yield* control.setFaults({ put: { latency: { _tag: "Fixed", millis: 100 }, keyPrefix: "wal/" } })
        const ack = yield* Effect.forkChild(queue.ack(claim!))
        yield* TestClock.adjust(10)
        assert.isUndefined(ack.pollUnsafe(), "the ack is still on its way")
        const waiting = yield* Effect.forkChild(queue.awaitCompletion(id))
        yield* TestClock.adjust(10)
        assert.isUndefined(waiting.pollUnsafe(), "no answer before the ack is durable")
        yield* TestClock.adjust(100)
        const outcome = yield* Fiber.join(waiting)
        assert.strictEqual(outcome._tag, definition === Kept ? "Completed" : "NotFound")
        yield* Fiber.join(ack)

        // the same, with a crash before the ack lands: the job is pending after the reopen, and the
        // caller was told nothing
        yield* control.setFaults({})
        const { id: second } = yield* queue.enqueue(definition, { n: 2 })
        const [claim2] = yield* queue.claim(definition)
        yield* control.freeze // the crash: the ack's WAL put never lands
        yield* Effect.forkChild(queue.ack(claim2!))
        yield* TestClock.adjust(10)
        const told = yield* Effect.forkChild(queue.awaitCompletion(second))
        yield* TestClock.adjust(200)
        assert.isUndefined(told.pollUnsafe(), "no answer: the ack never became durable")
        const reopened = yield* open(reliable)
        const record = yield* reopened.get(second)
        assert.strictEqual(record._tag === "Some" ? record.value.status : "gone", "Pending")
      }))
  }
})
