// npm run bench:worker [-- --n 20000 --rounds 3 --memory]
//
// The Worker's overhead: a drain of N no-op jobs through Worker.layer at concurrency 16 against
// the same drain with bare claim + ack loops (16 fibers), on the directory backend with every
// acknowledgement durable. Rounds alternate the two so that the disk's drift hits both alike;
// the figure is the ratio of the medians.
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer, Schema } from "effect"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as Worker from "../src/Worker.ts"

const args = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const n = option("n", 20_000)
const rounds = option("rounds", 3)
const memory = args.includes("--memory")
const concurrency = 16
const Task = Job.define("bench", { payload: Schema.Struct({ i: Schema.Number, pad: Schema.String }) })
const pad = "x".repeat(60)

/** A fresh queue holding N pending jobs; `drain` runs against it and is timed. */
const timedDrain = (drain: (queue: JobQueue.Service, done: () => boolean, onJob: () => void) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const directory = fs.mkdtempSync(path.join(tmpdir(), "bucketq-bench-worker-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
    const context = yield* Layer.build(
      JobQueue.layer().pipe(
        Layer.provide(Kv.layer()),
        Layer.provide(memory ? ObjectStore.layerMemory() : ObjectStore.layerFileSystem({ directory }))
      )
    )
    const queue = Context.get(context, JobQueue.JobQueue)
    for (let i = 0; i < n; i += 500) {
      yield* queue.enqueueBatch(Task, Array.from({ length: Math.min(500, n - i) }, (_, j) => ({ i: i + j, pad })))
    }
    let handled = 0
    const start = performance.now()
    yield* drain(queue, () => handled >= n, () => void handled++)
    // the last acks are durable once nothing is claimed any more
    while ((yield* queue.stats("bench")).claimed + (yield* queue.stats("bench")).pending > 0) yield* Effect.sleep("1 millis")
    return n / ((performance.now() - start) / 1000)
  }).pipe(Effect.scoped)

const bare = timedDrain((queue, done, onJob) =>
  Effect.all(
    Array.from({ length: concurrency }, () =>
      Effect.gen(function*() {
        while (!done()) {
          for (const claim of yield* queue.claim(Task, { max: 1, wait: "50 millis" })) {
            onJob()
            yield* queue.ack(claim)
          }
        }
      })),
    { concurrency: "unbounded", discard: true }
  ).pipe(Effect.orDie))

const worker = timedDrain((queue, done, onJob) =>
  Effect.gen(function*() {
    yield* Layer.build(
      Worker.layer(Task, () => Effect.sync(onJob), { concurrency }).pipe(Layer.provide(Layer.succeed(JobQueue.JobQueue, queue)))
    )
    while (!done()) yield* Effect.sleep("1 millis")
  }).pipe(Effect.scoped, Effect.orDie))

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = Effect.gen(function*() {
  const bareRuns: Array<number> = []
  const workerRuns: Array<number> = []
  for (let r = 0; r < rounds; r++) {
    bareRuns.push(yield* bare)
    workerRuns.push(yield* worker)
    console.log(`round ${r + 1}: bare ${Math.round(bareRuns[r]!)} jobs/s, Worker ${Math.round(workerRuns[r]!)} jobs/s`)
  }
  const ratio = median(workerRuns) / median(bareRuns)
  console.log(
    `${memory ? "memory" : "directory"}, N=${n}, c=${concurrency}: bare claim+ack ${Math.round(median(bareRuns))} jobs/s, ` +
      `Worker.layer ${Math.round(median(workerRuns))} jobs/s (medians of ${rounds}): overhead ${((1 - ratio) * 100).toFixed(1)}%`
  )
})

await Effect.runPromise(main)
