// The demo's work: four queues, what their handlers do, and which jobs fail.
//
// Job n of the demo (0 to jobs - 1) goes to one queue by n % 10 and has the id `<kind>-<n, 6
// digits>`, so a run that resumes knows which jobs are still to enqueue. Failures are decided by n
// alone, so how many jobs end dead is known in advance whatever the interruptions:
//   - demo/orders  (n % 10 in 0-4): priorities high, normal and low in turn; always succeed. They
//                  are settled by a claim loop of the demo's own, whose acks write a marker in the
//                  same commit (settlement effects); the other queues by Workers.
//   - demo/emails  (n % 10 in 5-7): n % 7 == 0 fails its first attempt (retried after 200 ms);
//                  n % 50 == 5 fails for good (Job.PermanentFailure: dead at once).
//   - demo/reports (n % 10 in 8-9): n % 20 == 8 fails every attempt (3), then is dead.
//   - demo/digest: a cron schedule's jobs, one every 2 seconds while the demo runs.
// Done and dead jobs are kept (keepDone, deadRetention) so that the accounting can find each one.
import { Deferred, Duration, Effect, Fiber, Random, Schema } from "effect"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Worker from "../../src/Worker.ts"

/** How long done and dead jobs are kept: long enough for the accounting of any later run. */
const keep = "3650 days"

const OrderPayload = Schema.Struct({ n: Schema.Number, amount: Schema.Number })

/** A shipped order. */
export const Order = Job.define("demo/orders", {
  payload: OrderPayload,
  maxAttempts: 5,
  keepDone: keep,
  deadRetention: keep
})

/** A notification e-mail. */
export const Email = Job.define("demo/emails", {
  payload: Schema.Struct({ n: Schema.Number, to: Schema.String }),
  maxAttempts: 5,
  backoff: Job.Backoff.fixed("200 millis"),
  keepDone: keep,
  deadRetention: keep
})

/** A rendered report. */
export const Report = Job.define("demo/reports", {
  payload: Schema.Struct({ n: Schema.Number, pages: Schema.Number }),
  maxAttempts: 3,
  backoff: Job.Backoff.exponential({ base: "100 millis", max: "1 second" }),
  keepDone: keep,
  deadRetention: keep
})

/** The digest the cron schedule enqueues. */
export const Digest = Job.define("demo/digest", {
  payload: Schema.Struct({ note: Schema.String }),
  keepDone: keep,
  deadRetention: keep
})

/** The demo's queues, in the order the summary shows them. */
export const queues: ReadonlyArray<string> = [Order.queue, Email.queue, Report.queue, Digest.queue]

/** The key of the demo's cron schedule, and its expression (with seconds: every 2 seconds). */
export const digestSchedule = { key: "demo-digest", cron: "*/2 * * * * *" } as const

/** The id of job n of a queue's kind. */
const idOf = (kind: string, n: number) => `${kind}-${String(n).padStart(6, "0")}`

/** Job n of the demo: its id, its queue, and its enqueue (with the options given added). */
export interface DemoJob {
  readonly id: string
  readonly queue: string
  readonly enqueue: (queue: JobQueue.Service, options: JobQueue.EnqueueOptions) => ReturnType<JobQueue.Service["enqueue"]>
}

const priorities: ReadonlyArray<Job.PriorityInput> = ["high", "normal", "low"]

/** Job n of the demo. */
export const jobOf = (n: number): DemoJob => {
  const slot = n % 10
  if (slot < 5) {
    const id = idOf("order", n)
    return { id, queue: Order.queue, enqueue: (queue, options) =>
      queue.enqueue(Order, { n, amount: 10 + (n % 90) }, { ...options, id, priority: priorities[n % 3]! }) }
  }
  if (slot < 8) {
    const id = idOf("email", n)
    return { id, queue: Email.queue, enqueue: (queue, options) => queue.enqueue(Email, { n, to: `user${n}@example.com` }, { ...options, id }) }
  }
  const id = idOf("report", n)
  return { id, queue: Report.queue, enqueue: (queue, options) => queue.enqueue(Report, { n, pages: 1 + (n % 12) }, { ...options, id }) }
}

const failsForGood = (n: number) => n % 50 === 5
const failsFirst = (n: number) => n % 7 === 0
const reportFails = (n: number) => n % 20 === 8

/** A mail server that asks to come back later. */
class MailServerBusy extends Schema.TaggedError<MailServerBusy>()("MailServerBusy", { to: Schema.String }) {}

/** A renderer that cannot lay out the report. */
class RenderFailed extends Schema.TaggedError<RenderFailed>()("RenderFailed", { pages: Schema.Number }) {}

/** Simulated work: about `workMs` (from half to one and a half of it). */
const work = (workMs: number) =>
  Effect.flatMap(Random.next, (r) => Effect.sleep(Duration.millis(Math.round(workMs * (0.5 + r)))))

/** The user KV key of an order's shipping marker, written by the order's ack in its own commit. */
export const shippedKey = (id: string) => `shipped/${id}`

const shipped = new Uint8Array([1])

/**
 * Orders are settled by a claim loop of the demo's own rather than a Worker, to show settlement
 * effects: each ack writes `shipped/<id>` into the user KV in the same commit, so the marker is
 * there exactly when the order is done (the accounting checks it). Claims go by priority, 16 at
 * a time. Interrupting it stops the claims and lets the claims in hand finish.
 */
const shipOrders = (workMs: number) =>
  Effect.gen(function*() {
    const queue = yield* JobQueue.JobQueue
    const stopping = yield* Deferred.make<void>()
    const ship = (claim: JobQueue.Claim<typeof OrderPayload.Type>) =>
      Effect.andThen(work(workMs), queue.ack(claim, { kv: { [shippedKey(claim.job.id)]: shipped } }))
    const loop = Effect.gen(function*() {
      while (!(yield* Deferred.isDone(stopping))) {
        const claims = yield* queue.claim(Order, { max: 16, wait: "1 second", until: Deferred.await(stopping) })
        yield* Effect.forEach(claims, ship, { concurrency: 16, discard: true })
      }
    })
    const fiber = yield* Effect.forkChild(Effect.uninterruptible(loop))
    return yield* Fiber.join(fiber).pipe(
      Effect.onInterrupt(() => Effect.andThen(Deferred.succeed(stopping, undefined), Fiber.await(fiber)))
    )
  })

/**
 * The demo's consumers: the orders' claim loop and a `Worker.run` for each other queue.
 * Interrupting the effect stops them, letting jobs in flight finish (Workers: for up to a
 * second); it fails only if one of them does (an ack refused, the writer stopped).
 */
export const workers = (workMs: number) =>
  Effect.all([
    shipOrders(workMs),
    Worker.run(Email, (email, ctx) =>
      failsForGood(email.n)
        ? Effect.fail(new Job.PermanentFailure({ reason: `no mailbox ${email.to}` }))
        : failsFirst(email.n) && ctx.attempt === 1
        ? Effect.andThen(work(workMs), Effect.fail(new MailServerBusy({ to: email.to })))
        : work(workMs), {
      concurrency: 4,
      rateLimit: { limit: 400, window: "1 second" },
      errorSchema: Schema.Union([MailServerBusy, Job.PermanentFailure]),
      drainTimeout: "1 second"
    }),
    Worker.run(Report, (report) =>
      reportFails(report.n)
        ? Effect.andThen(work(workMs), Effect.fail(new RenderFailed({ pages: report.pages })))
        : work(2 * workMs), { concurrency: 4, errorSchema: RenderFailed, drainTimeout: "1 second" }),
    Worker.run(Digest, () => work(workMs), { drainTimeout: "1 second" })
  ], { concurrency: "unbounded", discard: true })
