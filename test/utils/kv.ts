// Opening KV writers over a given store, in scopes the test controls (a crash is a scope that is
// never closed), a raw store with a fault-injecting one over it (and a local log cut at the same
// crash), and running an effect to its end on TestClock or on the live clock.
import { Clock, Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as FaultInjection from "../../src/FaultInjection.ts"
import * as Kv from "../../src/Kv.ts"
import * as ObjectStore from "../../src/ObjectStore.ts"
import type { Appender, Service as LocalLogService } from "../../src/ObjectStore/LocalLog.ts"
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

/**
 * `drive` on the live clock (for real stores, whose requests take real time): `effect` until it is
 * done or `maxMillis` have passed, polled every 2 ms, or until `crashed` has been true for 20 ms
 * (a crashed writer's work hangs: waiting longer would only wait). Its exit, or `undefined` if it
 * was not done by then (it is then interrupted).
 */
export const driveLive = <A, E>(effect: Effect.Effect<A, E>, maxMillis = 10_000, crashed?: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    const deadline = (yield* Clock.currentTimeMillis) + maxMillis
    let crashedAt: number | undefined
    while (fiber.pollUnsafe() === undefined) {
      const now = yield* Clock.currentTimeMillis
      if (crashedAt === undefined && crashed !== undefined && (yield* crashed)) crashedAt = now
      if (now >= deadline || (crashedAt !== undefined && now - crashedAt >= 20)) break
      yield* Effect.sleep("2 millis")
    }
    const done = fiber.pollUnsafe()
    if (done === undefined) yield* Fiber.interrupt(fiber)
    return done
  })

/**
 * How a test runs its effects to their end: `drive` on TestClock (virtual time, 1 ms a step) or
 * `driveLive` on the live clock; `crashed` lets the live one stop waiting for hung work.
 */
export interface Driver {
  readonly drive: <A, E>(effect: Effect.Effect<A, E>, maxMillis?: number, crashed?: Effect.Effect<boolean>) => Effect.Effect<Exit.Exit<A, E> | undefined>
}

/** TestClock, moved 1 ms at a time (`crashed` is not looked at: the same seed replays the same schedule). */
export const virtualTime: Driver = { drive: (effect, maxMillis) => drive(effect, maxMillis) }

/** The live clock. */
export const liveTime: Driver = { drive: driveLive }

/** `driver.drive`, failing (as a defect) unless the effect succeeded in time. */
export const driveOrDieWith = <A, E>(driver: Driver, effect: Effect.Effect<A, E>, what: string, maxMillis = 10_000) =>
  Effect.flatMap(driver.drive(effect, maxMillis), (done) => {
    if (done === undefined) return Effect.die(new Error(`${what}: not done after ${maxMillis} ms`))
    if (Exit.isFailure(done)) return Effect.die(new Error(`${what} failed: ${String(done.cause)}`))
    return Effect.succeed(done.value)
  })

/**
 * A local log that dies with the fault-injected store beside it: once `control` is frozen (the
 * crash), nothing more reaches the log (an append is dropped, a sync, read or delete hangs), as if
 * the process had died there. The crash may also come from the log: at its append number
 * `crashAtAppend` (0-based) the store is frozen, that append landing first or not (`applyFirst`),
 * and `onCrash` is told.
 * An append before the crash is in the file at once (a process crash keeps the page cache); one
 * whose sync had not begun is never acknowledged. The appender's own idle confirm frames go on in
 * the abandoned writer: they only claim what was already durable, and a takeover's seal ends the
 * log for every reader.
 */
export const cutAtCrash = (
  log: LocalLogService,
  control: FaultInjection.Service,
  crash?: { readonly crashAtAppend: number; readonly applyFirst: boolean; readonly onCrash?: (() => void) | undefined }
): LocalLogService => {
  let appends = 0
  const cut = () => Effect.runSync(control.frozen)
  const hang = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.suspend(() => (cut() ? Effect.never : effect))
  const cutAppender = (appender: Appender): Appender => ({
    currentPart: appender.currentPart,
    write: (record, rotate) => {
      if (!cut() && appends++ === crash?.crashAtAppend) {
        const landed = crash.applyFirst ? appender.write(record, rotate) : undefined
        Effect.runSync(control.freeze)
        crash.onCrash?.()
        return { part: landed?.part ?? appender.currentPart(), durable: Effect.never }
      }
      if (cut()) return { part: appender.currentPart(), durable: Effect.never }
      const written = appender.write(record, rotate)
      return { part: written.part, durable: hang(written.durable) }
    }
  })
  return {
    epochs: hang(log.epochs),
    takeOver: (epoch) => hang(log.takeOver(epoch)),
    read: (epoch) => hang(log.read(epoch)),
    appender: (epoch) => hang(Effect.map(log.appender(epoch), cutAppender)),
    deletePart: (epoch, part) => hang(log.deletePart(epoch, part))
  }
}
