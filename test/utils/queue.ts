// Helpers of the queue suites: a queue (and its KV) over a store in a scope of its own, and a wait
// for a condition that moves the TestClock and real time together.
import { assert } from "@effect/vitest"
import { Clock, Context, Effect, type Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import { type AnyStore, layerOf } from "./stores.ts"

/**
 * A queue and its KV over `store` (with its local log, if it has one; reaper every second, scheduler every 100 ms unless `options`
 * say otherwise), with the scope that closes them: closing it is a clean shutdown, abandoning it a
 * crash.
 */
export const openQueueAndKv = (store: AnyStore, options?: JobQueue.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      JobQueue.layer({ reaperInterval: "1 second", schedulerInterval: "100 millis", ...options }).pipe(
        Layer.provideMerge(Kv.layer()),
        Layer.provide(layerOf(store))
      ),
      scope
    )
    return { q: Context.get(context, JobQueue.JobQueue), kv: Context.get(context, Kv.Kv), scope }
  })

/** A queue over `store` in a scope of its own, never closed (a crash when abandoned). */
export const openQueue = (store: AnyStore, options?: JobQueue.Options) =>
  Effect.map(openQueueAndKv(store, options), ({ q }) => q)

/**
 * Waits until `condition` holds, moving the TestClock on `step` ms at a time and letting real time
 * pass too (the directory and S3 backends answer in real time, after the virtual time the test set).
 */
export const eventually = (condition: Effect.Effect<boolean, unknown>, what: string, step = 1) =>
  Effect.gen(function*() {
    for (let i = 0; i < 3000; i++) {
      if (yield* condition) return
      yield* TestClock.adjust(step)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
    }
    assert.fail(`not reached: ${what}`)
  })

/** Moves virtual time on `step` ms at a time until `fiber` is done, at most `limit` ms: the time it took. */
export const runUntilDone = (fiber: Fiber.Fiber<unknown, unknown>, limit: number, step = 100) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    while (fiber.pollUnsafe() === undefined && (yield* Clock.currentTimeMillis) - start < limit) {
      yield* TestClock.adjust(step)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
    }
    return (yield* Clock.currentTimeMillis) - start
  })
