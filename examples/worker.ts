// Workers: a handler run as supervised fibers, with a permanent failure, a retried one and a
// graceful stop.
//   npm run example:worker         (BUCKETQ_URL=memory: by default here; file:./.bucketq works too)
import { Effect, Schema } from "effect"
import { Job, JobQueue, QueueLive, Worker } from "../src/index.ts"

const Email = Job.define("emails", {
  payload: Schema.Struct({ to: Schema.String }),
  maxAttempts: 3,
  backoff: Job.Backoff.fixed("200 millis")
})

class Bounce extends Schema.TaggedError<Bounce>()("Bounce", { to: Schema.String }) {}

// fails permanently without an @, fails once (retried) for addresses at "flaky"
const send = (payload: { readonly to: string }, ctx: Worker.JobContext): Effect.Effect<void, Bounce | Job.PermanentFailure> =>
  !payload.to.includes("@")
    ? Effect.fail(new Job.PermanentFailure({ reason: `no address: ${payload.to}` }))
    : payload.to.endsWith("@flaky") && ctx.attempt === 1
    ? Effect.fail(new Bounce({ to: payload.to }))
    : Effect.log(`sent to ${payload.to} (attempt ${ctx.attempt})`)

const EmailWorker = Worker.layer(Email, send, { concurrency: 4, timeout: "10 seconds", errorSchema: Schema.Union([Bounce, Job.PermanentFailure]) })

const program = Effect.gen(function*() {
  const queue = yield* JobQueue.JobQueue
  const ids = yield* queue.enqueueBatch(Email, [{ to: "a@b.c" }, { to: "nobody" }, { to: "x@flaky" }])
  const outcomes = yield* Effect.forEach(ids, (id) => queue.awaitCompletion(id, { timeout: "10 seconds" }))
  for (const [i, outcome] of outcomes.entries()) {
    const job = outcome._tag === "Completed" ? outcome.job : undefined
    yield* Effect.log(`${ids[i]}: ${outcome._tag}${job && job._tag === "Some" ? ` (${job.value.status}: ${job.value.lastError})` : ""}`)
  }
  yield* Effect.log(JSON.stringify(yield* queue.stats("emails")))
})

process.env.BUCKETQ_URL ??= "memory:"
Effect.runPromise(program.pipe(Effect.provide(EmailWorker), Effect.provide(QueueLive))).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
