// Workers under TestClock, written once and run on every backend: concurrency, permits, rate
// limit, timeouts, outcomes, retry decisions, lease renewal, lost leases, cancel, drain.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import * as ObjectStoreError from "../../src/ObjectStoreError.ts"
import * as Worker from "../../src/Worker.ts"
import type { Backend } from "../utils/stores.ts"
import { eventually } from "../utils/queue.ts"

const Task = Job.define("tasks", { payload: Schema.Struct({ n: Schema.Number }), backoff: Job.Backoff.none() })
const Other = Job.define("others", { payload: Schema.Struct({ n: Schema.Number }), backoff: Job.Backoff.none() })

/** Counts the handlers running now and the most seen at once. */
const makeGauge = () => {
  let now = 0
  let most = 0
  return {
    enter: Effect.sync(() => {
      now++
      most = Math.max(most, now)
    }),
    leave: Effect.sync(() => void now--),
    most: () => most,
    now: () => now
  }
}

/** Moves the TestClock on in steps of `step` ms, `times` times, letting fibers run in between. */
const advance = (times: number, step = 10) =>
  Effect.gen(function*() {
    for (let i = 0; i < times; i++) yield* TestClock.adjust(step)
  })

export const workerSuite = (backend: Backend) =>
  describe(`Worker on ${backend.name}`, () => {
    /** A queue on a fresh store, and a scope for workers (closed by `stop`: the drain). */
    const setup = Effect.gen(function*() {
      const context = yield* Layer.build(
        JobQueue.layer({ reaperInterval: "1 second", schedulerInterval: "100 millis" }).pipe(
          Layer.provide(Kv.layer()),
          Layer.provide(backend.layer())
        )
      )
      const queue = Context.get(context, JobQueue.JobQueue)
      const scope = yield* Scope.make()
      const start = <A, I, E>(definition: Job.Definition<A, I>, handler: Worker.Handler<A, E, never>, options?: Worker.Options<E>) =>
        Layer.buildWithScope(Worker.layer(definition, handler, options).pipe(Layer.provide(Layer.succeed(JobQueue.JobQueue, queue))), scope)
      return { queue, start, stop: Scope.close(scope, Exit.void) }
    })

    it.effect("jobs in flight reach the concurrency and never exceed it; all are acked", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        yield* queue.enqueueBatch(Task, Array.from({ length: 30 }, (_, n) => ({ n })))
        const gauge = makeGauge()
        let done = 0
        yield* start(Task, () =>
          Effect.andThen(gauge.enter, Effect.sleep("1 second")).pipe(
            Effect.ensuring(gauge.leave),
            Effect.andThen(Effect.sync(() => void done++))
          ), { concurrency: 4 })
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 30), "30 done", 10)
        assert.strictEqual(done, 30)
        assert.strictEqual(gauge.most(), 4)
        assert.deepStrictEqual(yield* queue.stats("tasks"), { queue: "tasks", pending: 0, scheduled: 0, claimed: 0, done: 30, dead: 0 })
      }))

    it.effect("the next claim overlaps a settlement under way: a job starts while the previous ack waits, and settlements under way never exceed the concurrency", () =>
      Effect.gen(function*() {
        const { queue } = yield* setup
        yield* queue.enqueueBatch(Task, [{ n: 1 }, { n: 2 }, { n: 3 }])
        // acks held at a gate, as a slow durable commit (or a remote writer) would hold them
        const gate = yield* Deferred.make<void>()
        const gated: JobQueue.Service = { ...queue, ack: (claim, options) => Effect.andThen(Deferred.await(gate), queue.ack(claim, options)) }
        const started: Array<number> = []
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(
          Worker.layer(Task, ({ n }) => Effect.sync(() => void started.push(n)), { concurrency: 1 }).pipe(
            Layer.provide(Layer.succeed(JobQueue.JobQueue, gated))
          ),
          scope
        )
        yield* advance(20)
        // job 2 ran while job 1's ack waited; job 3 waits for a settlement to end (one under way, concurrency 1)
        assert.deepStrictEqual(started, [1, 2])
        assert.strictEqual((yield* queue.stats("tasks")).claimed, 2)
        yield* Deferred.succeed(gate, undefined)
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 3), "3 done", 10)
        assert.deepStrictEqual(started, [1, 2, 3])
        yield* Scope.close(scope, Exit.void)
      }))

    it.effect("a handler's Worker.complete commits its effects with the ack; effects that do not check retry the job with why", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const good = yield* queue.enqueue(Task, { n: 1 })
        const bad = yield* queue.enqueue(Task, { n: -1 })
        yield* start(Task, ({ n }) =>
          Effect.succeed(
            n > 0
              ? Worker.complete({ enqueue: [[Other, { n: n + 100 }]], kv: { [`done/${n}`]: new Uint8Array([n]) } })
              : Worker.complete({ enqueue: [[Other, { n: "not a number" } as never]] })
          ), { concurrency: 2 })
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 1 && st.dead === 1), "1 done, 1 dead", 10)
        assert.deepStrictEqual(yield* queue.kv.get("done/1"), Option.some(new Uint8Array([1])))
        const [followUp] = yield* queue.claim(Other)
        assert.deepStrictEqual(followUp?.job.payload, { n: 101 })
        assert.isTrue(Option.isNone(yield* queue.get(good.id)))
        const history = yield* queue.history(bad.id)
        assert.isTrue(history.length > 0 && history.every((a) => a.error?.includes("the handler's completion was refused")), JSON.stringify(history))
        assert.strictEqual((yield* queue.stats("others")).pending, 0)
      }))

    it.effect("permits shared by two workers of two queues hold across both", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        yield* queue.enqueueBatch(Task, Array.from({ length: 12 }, (_, n) => ({ n })))
        yield* queue.enqueueBatch(Other, Array.from({ length: 12 }, (_, n) => ({ n })))
        const shared = Worker.makePermits(3)
        const gauge = makeGauge()
        const handler = () => Effect.andThen(gauge.enter, Effect.sleep("1 second")).pipe(Effect.ensuring(gauge.leave))
        yield* start(Task, handler, { concurrency: 4, permits: [shared] })
        yield* start(Other, handler, { concurrency: 4, permits: [shared] })
        const doneBoth = Effect.map(Effect.all([queue.stats("tasks"), queue.stats("others")]), ([a, b]) => a.done + b.done === 24)
        yield* eventually(doneBoth, "24 done", 10)
        assert.strictEqual(gauge.most(), 3)
      }))

    it.effect("permits listed in different orders by two workers never deadlock", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        yield* queue.enqueueBatch(Task, Array.from({ length: 10 }, (_, n) => ({ n })))
        yield* queue.enqueueBatch(Other, Array.from({ length: 10 }, (_, n) => ({ n })))
        const a = Worker.makePermits(1)
        const b = Worker.makePermits(1)
        const handler = () => Effect.sleep("100 millis")
        yield* start(Task, handler, { concurrency: 2, permits: [a, b] })
        yield* start(Other, handler, { concurrency: 2, permits: [b, a] })
        const doneBoth = Effect.map(Effect.all([queue.stats("tasks"), queue.stats("others")]), ([x, y]) => x.done + y.done === 20)
        yield* eventually(doneBoth, "all 20 done", 10)
      }))

    it.effect("a rate limit bounds the jobs started per window", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        yield* queue.enqueueBatch(Task, Array.from({ length: 40 }, (_, n) => ({ n })))
        const started: Array<number> = []
        yield* start(Task, () => Effect.sync(() => void started.push(0)), { concurrency: 8, rateLimit: { limit: 5, window: "1 second" } })
        yield* advance(200, 10) // two seconds: five a second, and the bucket's first five
        assert.isAtMost(started.length, 16)
        yield* eventually(Effect.sync(() => started.length === 40), "40 started", 10)
        // forty jobs at five a second take at least seven seconds
        assert.isAtLeast(yield* Clock.currentTimeMillis, 7000)
      }))

    it.effect("a timeout interrupts the handler and fails the attempt; the next attempt runs", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const { id } = yield* queue.enqueue(Task, { n: 1 })
        let interrupted = 0
        const attempts: Array<number> = []
        yield* start(Task, (_, ctx) =>
          Effect.gen(function*() {
            attempts.push(ctx.attempt)
            if (ctx.attempt === 1) yield* Effect.onInterrupt(Effect.sleep("1 hour"), () => Effect.sync(() => void interrupted++))
          }), { timeout: "2 seconds" })
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 1), "the second attempt acked", 10)
        assert.deepStrictEqual(attempts, [1, 2])
        assert.strictEqual(interrupted, 1)
        assert.isTrue(Option.isNone(yield* queue.get(id)))
        assert.strictEqual((yield* queue.stats("tasks")).done, 1)
      }))

    it.effect("outcomes: PermanentFailure dead-letters at once, a typed failure retries, a defect is retried", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const permanent = yield* queue.enqueue(Task, { n: 1 })
        const failing = yield* queue.enqueue(Task, { n: 2 })
        const dying = yield* queue.enqueue(Task, { n: 3 })
        class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { code: Schema.Number }) {}
        yield* start(Task, (payload, ctx): Effect.Effect<void, Flaky | Job.PermanentFailure> => {
          if (payload.n === 1) return Effect.fail(new Job.PermanentFailure({ reason: "bad input" }))
          if (payload.n === 2) return ctx.attempt < 3 ? Effect.fail(new Flaky({ code: 7 })) : Effect.void
          return ctx.attempt === 1 ? Effect.die(new Error("boom")) : Effect.void
        }, { concurrency: 3, errorSchema: Schema.Union([Flaky, Job.PermanentFailure]) })
        yield* advance(300)
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 2 && st.dead === 1), "two done, one dead")
        const dead = Option.getOrThrow(yield* queue.get(permanent.id))
        assert.deepStrictEqual([dead.status, dead.attempts, dead.lastError], ["Dead", 1, "bad input"])
        assert.isTrue(Option.isNone(yield* queue.get(failing.id)))
        assert.isTrue(Option.isNone(yield* queue.get(dying.id)))
        assert.deepStrictEqual(yield* queue.stats("tasks"), { queue: "tasks", pending: 0, scheduled: 0, claimed: 0, done: 2, dead: 1 })
      }))

    it.effect("retry decisions: Retry with a delay, DeadLetter, Cancel; failures stored schema-encoded", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const later = yield* queue.enqueue(Task, { n: 1 })
        const buried = yield* queue.enqueue(Task, { n: 2 })
        const dropped = yield* queue.enqueue(Task, { n: 3 })
        class Failed extends Schema.TaggedError<Failed>()("Failed", { n: Schema.Number }) {}
        const seen: Array<string> = []
        yield* start(Task, (payload, ctx) =>
          Effect.suspend(() => {
            seen.push(`${payload.n}@${ctx.attempt}`)
            return payload.n === 1 && ctx.attempt > 1 ? Effect.void : Effect.fail(new Failed({ n: payload.n }))
          }), {
          concurrency: 3,
          errorSchema: Failed,
          retry: (error) => (error.n === 1 ? Worker.Retry("1 minute") : error.n === 2 ? Worker.DeadLetter : Worker.Cancel)
        })
        yield* advance(100)
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.scheduled === 1 && st.dead === 1 && st.claimed === 0), "all three settled")
        const scheduled = Option.getOrThrow(yield* queue.get(later.id))
        assert.deepStrictEqual([scheduled.status, scheduled.lastError], ["Scheduled", JSON.stringify({ _tag: "Failed", n: 1 })])
        const dead = Option.getOrThrow(yield* queue.get(buried.id))
        assert.deepStrictEqual([dead.status, dead.lastError], ["Dead", JSON.stringify({ _tag: "Failed", n: 2 })])
        assert.isTrue(Option.isNone(yield* queue.get(dropped.id)))
        yield* TestClock.adjust("61 seconds")
        yield* advance(50)
        yield* eventually(Effect.map(queue.get(later.id), Option.isNone), "the retried job acked")
        assert.deepStrictEqual(seen.sort(), ["1@1", "1@2", "2@1", "3@1"])
      }))

    it.effect("a retry decision that throws or returns something else retries the job with why, never leaves it to its lease", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const thrown = yield* queue.enqueue(Task, { n: 1 }, { maxAttempts: 1 })
        const garbage = yield* queue.enqueue(Task, { n: 2 }, { maxAttempts: 1 })
        class Failed extends Schema.TaggedError<Failed>()("Failed", { n: Schema.Number }) {}
        yield* start(Task, (payload) => Effect.fail(new Failed({ n: payload.n })), {
          concurrency: 2,
          retry: (error) => {
            if (error.n === 1) throw new Error("no decision today")
            return { _tag: "Maybe" } as unknown as Worker.RetryDecision
          }
        })
        yield* advance(100)
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.dead === 2 && st.claimed === 0), "both settled by a nack")
        const first = Option.getOrThrow(yield* queue.get(thrown.id))
        assert.match(first.lastError ?? "", /the retry decision threw: no decision today/)
        const second = Option.getOrThrow(yield* queue.get(garbage.id))
        assert.match(second.lastError ?? "", /the retry decision is not one/)
      }))

    it.effect("the lease is renewed while a handler runs: a 5-minute job keeps its 30-second lease", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const { id } = yield* queue.enqueue(Task, { n: 1 })
        const attempts: Array<number> = []
        yield* start(Task, (_, ctx) => Effect.andThen(Effect.sync(() => void attempts.push(ctx.attempt)), Effect.sleep("5 minutes")), {
          lease: "30 seconds"
        })
        for (let s = 0; s < 290; s += 10) {
          yield* TestClock.adjust("10 seconds")
          assert.strictEqual((yield* queue.stats("tasks")).claimed, 1, `at ${s + 10} s`)
        }
        yield* TestClock.adjust("20 seconds")
        yield* advance(10)
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 1), "acked")
        assert.deepStrictEqual(attempts, [1])
        assert.isTrue(Option.isNone(yield* queue.get(id)))
        assert.strictEqual((yield* queue.stats("tasks")).done, 1)
      }))

    it.effect("a stalled worker loses its claim: the job is requeued, and the stale ack is rejected", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const { id } = yield* queue.enqueue(Task, { n: 1 })
        const attempts: Array<number> = []
        // renewals come too late for the lease (a stall): the reaper takes the job at 10 s
        yield* start(Task, (_, ctx) =>
          Effect.andThen(Effect.sync(() => void attempts.push(ctx.attempt)), ctx.attempt === 1 ? Effect.sleep("20 seconds") : Effect.void), {
          lease: "10 seconds",
          renewEvery: "1 hour",
          concurrency: 2
        })
        yield* advance(300, 100) // 30 s
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 1), "the second attempt acked")
        assert.deepStrictEqual(attempts, [1, 2])
        // the second attempt was acked; the first one's ack at 20 s was ClaimLost and changed nothing
        assert.isTrue(Option.isNone(yield* queue.get(id)))
        assert.deepStrictEqual(yield* queue.stats("tasks"), { queue: "tasks", pending: 0, scheduled: 0, claimed: 0, done: 1, dead: 0 })
      }))

    it.effect("a renewal that finds the lease taken interrupts the handler; the job runs again", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        yield* queue.enqueue(Task, { n: 1 })
        const attempts: Array<number> = []
        let interrupted = 0
        // the lease (10 s) ends before the first renewal (15 s): the reaper requeues the job, the
        // worker claims it again, and the first attempt's renewal then finds its claim lost
        yield* start(Task, (_, ctx) =>
          Effect.andThen(
            Effect.sync(() => void attempts.push(ctx.attempt)),
            ctx.attempt === 1 ? Effect.onInterrupt(Effect.sleep("1 hour"), () => Effect.sync(() => void interrupted++)) : Effect.void
          ), { lease: "10 seconds", renewEvery: "15 seconds", concurrency: 2 })
        yield* eventually(Effect.sync(() => interrupted === 1), "the first attempt interrupted", 100)
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 1 && st.claimed === 0), "the second attempt acked", 10)
        assert.deepStrictEqual(attempts, [1, 2])
        assert.isBelow(yield* Clock.currentTimeMillis, 60_000)
      }))

    it.effect("a failing claim loop is logged and backs off, never spins, and recovers", () =>
      Effect.gen(function*() {
        const { queue } = yield* setup
        yield* queue.enqueue(Task, { n: 1 })
        let calls = 0
        let broken = true
        const flaky: JobQueue.Service = {
          ...queue,
          claim: (definition, options) =>
            Effect.suspend(() => {
              calls++
              const away = ObjectStoreError.make("get", "payloads/x", "Unavailable", { detail: "the store is away" })
              return broken ? Effect.fail(away) : queue.claim(definition, options)
            })
        }
        let done = 0
        yield* Layer.buildWithScope(
          Worker.layer(Task, () => Effect.sync(() => void done++)).pipe(Layer.provide(Layer.succeed(JobQueue.JobQueue, flaky))),
          yield* Scope.make()
        )
        yield* advance(100, 100) // ten seconds: 100 ms, 200 ms, 400 ms ... between tries
        assert.isAtLeast(calls, 5)
        assert.isAtMost(calls, 10)
        broken = false
        yield* eventually(Effect.sync(() => done === 1), "the job handled once the claims work", 100)
      }))

    it.effect("cancel interrupts a running job within a renewal period; the job is removed", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const { id } = yield* queue.enqueue(Task, { n: 1 })
        const interrupted = yield* Deferred.make<void>()
        yield* start(Task, () => Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined)))
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.claimed === 1), "claimed")
        const waiter = yield* Effect.forkChild(queue.awaitCompletion(id))
        assert.strictEqual(yield* queue.cancel(id), "Requested")
        yield* advance(10)
        assert.isTrue(yield* Deferred.isDone(interrupted))
        yield* eventually(Effect.map(queue.get(id), Option.isNone), "removed")
        assert.deepStrictEqual(yield* Fiber.join(waiter), { _tag: "Completed", job: Option.none() })
        assert.deepStrictEqual(yield* queue.stats("tasks"), { queue: "tasks", pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0 })
      }))

    it.effect("a payload that no longer decodes goes to the dead-letter queue; the handler never sees it", () =>
      Effect.gen(function*() {
        const { queue, start } = yield* setup
        const Loose = Job.define("tasks", { payload: Schema.Struct({ n: Schema.Unknown }) })
        const bad = yield* queue.enqueue(Loose, { n: "not a number" })
        const good = yield* queue.enqueue(Task, { n: 2 })
        const seen: Array<number> = []
        yield* start(Task, (payload) => Effect.sync(() => void seen.push(payload.n)))
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.done === 1 && st.dead === 1), "one done, one dead")
        assert.deepStrictEqual(seen, [2])
        const dead = Option.getOrThrow(yield* queue.get(bad.id))
        assert.strictEqual(dead.status, "Dead")
        assert.match(dead.lastError ?? "", /payload does not decode/)
        assert.isTrue(Option.isNone(yield* queue.get(good.id)))
      }))

    it.effect("Worker.run is a plain effect: interrupting its fiber drains like closing the layer", () =>
      Effect.gen(function*() {
        const { queue } = yield* setup
        const { id } = yield* queue.enqueue(Task, { n: 1 })
        let finished = 0
        const fiber = yield* Effect.forkChild(
          Worker.run(Task, () => Effect.andThen(Effect.sleep("1 second"), Effect.sync(() => void finished++))).pipe(
            Effect.provideService(JobQueue.JobQueue, queue)
          )
        )
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.claimed === 1), "claimed")
        const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* eventually(Effect.sync(() => stopping.pollUnsafe() !== undefined), "stopped", 10)
        assert.strictEqual(finished, 1)
        assert.isTrue(Option.isNone(yield* queue.get(id)))
      }))

    it.effect("graceful drain: jobs in flight finish within drainTimeout; past it they go back uncounted", () =>
      Effect.gen(function*() {
        const { queue, start, stop } = yield* setup
        const quick = yield* queue.enqueue(Task, { n: 1 })
        const slow = yield* queue.enqueue(Task, { n: 2 })
        let finished = 0
        yield* start(Task, (payload) => Effect.andThen(Effect.sleep(payload.n === 1 ? "2 seconds" : "1 hour"), Effect.sync(() => void finished++)), {
          concurrency: 2,
          drainTimeout: "5 seconds"
        })
        yield* eventually(Effect.map(queue.stats("tasks"), (st) => st.claimed === 2), "both claimed")
        const stopping = yield* Effect.forkChild(stop)
        yield* advance(700) // 7 s: past the drain timeout
        yield* eventually(Effect.sync(() => stopping.pollUnsafe() !== undefined), "stopped")
        yield* Fiber.join(stopping)
        assert.strictEqual(finished, 1)
        assert.isTrue(Option.isNone(yield* queue.get(quick.id)))
        const back = Option.getOrThrow(yield* queue.get(slow.id))
        assert.deepStrictEqual([back.status, back.attempts], ["Pending", 0])
        // nothing claims after the stop
        yield* queue.enqueue(Task, { n: 3 })
        yield* advance(100)
        assert.deepStrictEqual([(yield* queue.stats("tasks")).pending, (yield* queue.stats("tasks")).claimed], [2, 0])
      }))
  })
