// The README's quick start: enqueue, claim, ack, and wait for completion.
//   npx tsx examples/queue.ts          (BUCKETQ_URL=file:./.bucketq by default; memory: works too)
import { Effect, Fiber, Schema } from "effect"
import { Job, JobQueue, QueueLive } from "../src/index.ts"

const Email = Job.define("emails", {
  payload: Schema.Struct({ to: Schema.String }),
  maxAttempts: 5,
  backoff: Job.Backoff.exponential({ base: "1 second", max: "5 minutes" })
})

const program = Effect.gen(function*() {
  const queue = yield* JobQueue.JobQueue
  const { id } = yield* queue.enqueue(Email, { to: "a@b.c" }, { priority: "high" })
  // wait for it from now on (once done and deleted, a later wait would find nothing: NotFound)
  const completion = yield* Effect.forkChild(queue.awaitCompletion(id, { timeout: "1 minute" }), { startImmediately: true })
  for (const claim of yield* queue.claim(Email, { max: 10, wait: "5 seconds" })) {
    yield* Effect.log(`sending to ${claim.job.payload.to} (attempt ${claim.job.attempts})`)
    yield* queue.ack(claim)
  }
  const done = yield* Fiber.join(completion)
  yield* Effect.log(`job ${id}: ${done._tag}; ${JSON.stringify(yield* queue.stats("emails"))}`)
})

Effect.runPromise(program.pipe(Effect.provide(QueueLive))).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
