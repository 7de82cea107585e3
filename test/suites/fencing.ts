// A fenced writer stops, written once and run on every backend: a queue and its Worker whose
// store another writer opened end within one lease period (the Worker with `Fenced`), every queue
// operation fails with `Fenced`, claim and completion waits end, and the old writer's store sees
// no request at all afterwards, counted through a fault-injecting store over the older writer's
// while virtual time runs on for many reaper, scheduler, claim and fence-check periods.
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as FaultInjection from "../../src/FaultInjection.ts"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Worker from "../../src/Worker.ts"
import { reasonOf } from "../utils/exits.ts"
import { runUntilDone } from "../utils/queue.ts"
import { type Backend, queueOver, serviceOf } from "../utils/stores.ts"

const Task = Job.define("tasks", { payload: Schema.Struct({ n: Schema.Number }) })
const Held = Job.define("held", { payload: Schema.Struct({ data: Schema.String }) })
const leaseMillis = 30_000 // the definitions' default lease

/** Lets real time pass too: the directory and S3 backends answer in real time. */
const realPause = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))


/** Moves virtual time on by `millis`, `step` at a time, letting real time pass in between. */
const advance = (millis: number, step: number) =>
  Effect.gen(function*() {
    for (let t = 0; t < millis; t += step) {
      yield* TestClock.adjust(step)
      yield* realPause
    }
  })

const noRequests = { get: 0, head: 0, put: 0, delete: 0, list: 0 }

/** Every request the counting store saw since its last reset, by kind. */
const requests = (control: FaultInjection.Service) =>
  Effect.map(control.counters, (counters) => ({
    get: counters.get.requests,
    head: counters.head.requests,
    put: counters.put.requests,
    delete: counters.delete.requests,
    list: counters.list.requests
  }))

const tagOf = (exit: Exit.Exit<unknown, unknown> | undefined) => (exit === undefined ? "NotDone" : reasonOf(exit))

export const fencingSuite = (backend: Backend) =>
  describe(`A fenced writer on ${backend.name}`, () => {
    /**
     * One store: the first queue sees it through a counting store (faults none), the newer writer
     * directly. Payloads over 64 bytes are objects of their own, so that enqueues and gets would
     * touch the store.
     */
    const setup = Effect.gen(function*() {
      const raw = yield* Layer.build(backend.layer())
      const { control, store: counted } = FaultInjection.make(serviceOf(raw), { seed: 1 })
      const first = yield* queueOver(counted, { offloadThreshold: 64 })
      return { first, control, takeOver: queueOver(raw, { offloadThreshold: 64 }) }
    })

    it.effect("Worker.run fails with Fenced within a lease; every operation fails with Fenced; the store hears nothing more", () =>
      Effect.gen(function*() {
        const { control, first, takeOver } = yield* setup
        const { id: stuckId } = yield* first.enqueue(Task, { n: 0 })
        yield* first.enqueueBatch(Task, [{ n: 1 }, { n: 2 }])
        const { id: heldId } = yield* first.enqueue(Held, { data: "x".repeat(100) }) // an object of its own
        const [held] = yield* first.claim(Held)
        let interrupted = 0
        let acked = 0
        const worker = yield* Effect.forkChild(
          Worker.run(Task, (payload) =>
            payload.n === 0
              ? Effect.onInterrupt(Effect.never, () => Effect.sync(() => void interrupted++))
              : Effect.sync(() => void acked++), { concurrency: 2 }).pipe(Effect.provideService(JobQueue.JobQueue, first))
        )
        yield* runUntilDone(yield* Effect.forkChild(Effect.repeat(first.stats("tasks"), { until: (s) => s.done === 2 })), 10_000, 10)
        assert.strictEqual(acked, 2)
        // waits under way when the newer writer opens: a claim, and a completion
        const claimWait = yield* Effect.forkChild(first.claim(Held, { wait: "1 hour" }))
        const completionWait = yield* Effect.forkChild(first.awaitCompletion(stuckId))
        yield* TestClock.adjust(1)
        const second = yield* takeOver

        const took = yield* runUntilDone(worker, 2 * leaseMillis)
        assert.strictEqual(tagOf(worker.pollUnsafe()), "Fenced")
        assert.isAtMost(took, leaseMillis, `the worker ended after ${took} ms`)
        assert.strictEqual(interrupted, 1, "the handler in flight was interrupted")
        yield* runUntilDone(completionWait, 1_000)
        assert.strictEqual(tagOf(claimWait.pollUnsafe()), "Fenced")
        assert.strictEqual(tagOf(completionWait.pollUnsafe()), "Fenced")

        yield* control.resetCounters
        const outcomes = {
          enqueue: yield* Effect.exit(first.enqueue(Task, { n: 9 })),
          enqueueOffloaded: yield* Effect.exit(first.enqueue(Held, { data: "y".repeat(100) })),
          enqueueBatch: yield* Effect.exit(first.enqueueBatch(Task, [{ n: 10 }])),
          claim: yield* Effect.exit(first.claim(Task)),
          claimWaiting: yield* Effect.exit(first.claim(Task, { wait: "1 minute" })),
          ack: yield* Effect.exit(first.ack(held!)),
          nack: yield* Effect.exit(first.nack(held!, "no")),
          release: yield* Effect.exit(first.release(held!)),
          deadLetter: yield* Effect.exit(first.deadLetter(held!, "no")),
          extendLease: yield* Effect.exit(first.extendLease(held!, "1 minute")),
          get: yield* Effect.exit(first.get(heldId)),
          stats: yield* Effect.exit(first.stats("tasks")),
          cancel: yield* Effect.exit(first.cancel(stuckId)),
          awaitCompletion: yield* Effect.exit(first.awaitCompletion(stuckId))
        }
        for (const [operation, exit] of Object.entries(outcomes)) assert.strictEqual(reasonOf(exit), "Fenced", operation)
        // many reaper (5 s), scheduler (1 s), claim (5 s) and fence-check (10 s) periods
        yield* advance(10 * 60_000, 1_000)
        assert.deepStrictEqual(yield* requests(control), noRequests)

        // the newer writer has every acknowledged job: the two acked, the two claims given back
        assert.deepStrictEqual(yield* second.stats("tasks"), { queue: "tasks", pending: 1, scheduled: 0, claimed: 0, done: 2, dead: 0 })
        assert.strictEqual((yield* second.stats("held")).pending, 1)
        const [again] = yield* second.claim(Held)
        assert.deepStrictEqual(again!.job.payload, { data: "x".repeat(100) })
      }))

    it.effect("Worker.launch of Worker layers merged with Layer.mergeAll fails with Fenced within a lease when their writer is fenced", () =>
      Effect.gen(function*() {
        const { first, takeOver } = yield* setup
        yield* first.enqueue(Task, { n: 0 })
        const running = yield* Deferred.make<void>()
        const workers = Layer.mergeAll(
          Worker.layer(Task, () => Effect.andThen(Deferred.succeed(running, undefined), Effect.never)),
          Worker.layer(Held, () => Effect.void) // a second worker, idle
        ).pipe(Layer.provide(Layer.succeed(JobQueue.JobQueue, first)))
        const launched = yield* Effect.forkChild(Worker.launch(workers))
        yield* runUntilDone(yield* Effect.forkChild(Deferred.await(running)), 10_000, 10)
        yield* TestClock.adjust(1)
        yield* takeOver
        const took = yield* runUntilDone(launched, 2 * leaseMillis)
        assert.strictEqual(tagOf(launched.pollUnsafe()), "Fenced")
        assert.isAtMost(took, leaseMillis, `the launch ended after ${took} ms`)
      }))

    it.effect("Layer.launch of a Worker layer, every slot busy, ends within a lease when its writer is fenced", () =>
      Effect.gen(function*() {
        const { control, first, takeOver } = yield* setup
        yield* first.enqueue(Task, { n: 0 })
        const running = yield* Deferred.make<void>()
        const workers = Worker.layer(Task, () => Effect.andThen(Deferred.succeed(running, undefined), Effect.never)).pipe(
          Layer.provideMerge(Worker.layer(Held, () => Effect.void)), // a second worker, idle
          Layer.provide(Layer.succeed(JobQueue.JobQueue, first))
        )
        const launched = yield* Effect.forkChild(Layer.launch(workers))
        yield* runUntilDone(yield* Effect.forkChild(Deferred.await(running)), 10_000, 10)
        yield* TestClock.adjust(1)
        yield* takeOver
        const took = yield* runUntilDone(launched, 2 * leaseMillis)
        const exit = launched.pollUnsafe()
        assert.isTrue(exit !== undefined && Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause), `launch: ${String(exit)}`)
        assert.isAtMost(took, leaseMillis, `the launch ended after ${took} ms`)
        yield* control.resetCounters
        yield* advance(10 * 60_000, 1_000)
        assert.deepStrictEqual(yield* requests(control), noRequests)
        assert.strictEqual(reasonOf(yield* Effect.exit(first.stats("tasks"))), "Fenced")
      }))
  })
