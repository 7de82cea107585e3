// Opening KV writers over a given store, in scopes the test controls (a crash is a scope that is
// never closed), and a raw store with a fault-injecting one over it.
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as FaultInjection from "../../src/FaultInjection.ts"
import * as Kv from "../../src/Kv.ts"
import * as ObjectStore from "../../src/ObjectStore.ts"
import { type AnyStore, layerOf } from "./stores.ts"

/**
 * Opens a KV writer on `store` (with its local log, if it has one) in a new scope; `close`
 * flushes and closes it.
 */
export const openKv = (store: AnyStore, options?: Kv.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Kv.layer(options).pipe(Layer.provide(layerOf(store))),
      scope
    )
    return { kv: Context.get(context, Kv.Kv), close: Scope.close(scope, Exit.void) }
  })

/**
 * Over a raw store (built with `retry: false`): the same with the retry policy (`reliable`, what a
 * recovery opens), and a faulty one (retry over faults) with its control.
 */
export const faultyOver = (raw: ObjectStore.Service, options: FaultInjection.Options) =>
  Effect.gen(function*() {
    const reliable = yield* Effect.provide(
      Effect.map(ObjectStore.ObjectStore, (s) => s),
      ObjectStore.layerRetry({ base: "1 millis" }).pipe(Layer.provide(Layer.succeed(ObjectStore.ObjectStore, raw)))
    )
    const context = yield* Layer.build(FaultInjection.layer(options).pipe(Layer.provide(Layer.succeed(ObjectStore.ObjectStore, raw))))
    return {
      raw,
      reliable,
      store: Context.get(context, ObjectStore.ObjectStore),
      control: Context.get(context, FaultInjection.FaultInjection)
    }
  })

/** A raw memory store, the same with the retry policy, and a faulty one (retry over faults). */
export const faultyMemory = (options: FaultInjection.Options) =>
  Effect.flatMap(
    Effect.provide(Effect.map(ObjectStore.ObjectStore, (s) => s), ObjectStore.layerMemory({ retry: false })),
    (raw) => faultyOver(raw, options)
  )

/**
 * Runs `effect` while TestClock moves on 1 ms at a time, until it is done or `maxMillis` of
 * virtual time have passed: its exit, or `undefined` if it was not done by then (it is then
 * interrupted).
 */
export const drive = <A, E>(effect: Effect.Effect<A, E>, maxMillis = 10_000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    yield* Effect.yieldNow
    for (let elapsed = 0; elapsed < maxMillis && fiber.pollUnsafe() === undefined; elapsed++) {
      yield* TestClock.adjust(1)
    }
    const done = fiber.pollUnsafe()
    if (done === undefined) yield* Fiber.interrupt(fiber)
    return done
  })

/** `drive`, failing the test (as a defect) unless the effect succeeded in time. */
export const driveOrDie = <A, E>(effect: Effect.Effect<A, E>, what: string, maxMillis = 10_000) =>
  Effect.flatMap(drive(effect, maxMillis), (done) => {
    if (done === undefined) return Effect.die(new Error(`${what}: not done after ${maxMillis} virtual ms`))
    if (Exit.isFailure(done)) return Effect.die(new Error(`${what} failed: ${String(done.cause)}`))
    return Effect.succeed(done.value)
  })
