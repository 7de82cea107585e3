// npm run bench:queue [-- --n 20000]
//
// The job queue on the directory backend, every acknowledgement durable, ~100-byte payloads:
// W1 single enqueue at concurrency 16, W2 batch enqueue (500 per batch), W3 drain with concurrent
// claim + ack at concurrency 16, W4 end-to-end latency (enqueue to handler start) at 200 jobs/s.
// The workloads are the shared peer harness's (../shared/bench/peers), measured the same way.
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { spawn } from "node:child_process"
import { Context, Effect, Fiber, Layer, Redacted, Schema } from "effect"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as QueueClient from "../src/QueueClient.ts"

/** Results go to bench/results/ (npm runs the benchmarks from the repository root). */
const resultsDir = path.resolve("bench/results")

const args = process.argv.slice(2)
const nIndex = args.indexOf("--n")
const n = nIndex >= 0 ? Number(args[nIndex + 1]) : 20_000
const onlyIndex = args.indexOf("--only") // e.g. --only w1,w3
const only = onlyIndex >= 0 ? new Set(args[onlyIndex + 1]!.split(",")) : undefined
const selected = (name: string) => only === undefined || only.has(name)
const memory = args.includes("--memory") // the queue's own cost: a memory store, no I/O at all
// the producers and workers in this process, the writer in another (QueueServer), on loopback
const remote = args.includes("--remote")
const token = "bench-token"
const concurrency = 16
const pad = "x".repeat(60)
const Task = Job.define("bench", { payload: Schema.Struct({ i: Schema.Number, t: Schema.Number, pad: Schema.String }) })
const payload = (i: number) => ({ i, t: performance.timeOrigin + performance.now(), pad })
const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN

/** A fresh queue on a fresh directory: of this process, or (`--remote`) of a writer process reached over QueueClient. */
const withQueue = <A, E>(f: (queue: JobQueue.Service) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const directory = fs.mkdtempSync(path.join(tmpdir(), "bucketq-bench-queue-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
    if (remote) return yield* f(yield* remoteQueue(directory))
    const context = yield* Layer.build(
      JobQueue.layer().pipe(Layer.provide(Kv.layer({ maxWalPutsInFlight: Number(process.env.INFLIGHT ?? 4) })), Layer.provide(memory ? ObjectStore.layerMemory() : ObjectStore.layerFileSystem({ directory })))
    )
    return yield* f(Context.get(context, JobQueue.JobQueue))
  }).pipe(Effect.scoped)

/** A writer process on `directory` (killed with the scope), and the client's queue of it. */
const remoteQueue = (directory: string) =>
  Effect.gen(function*() {
    // the flags of this process too (e.g. --cpu-prof: both ends are profiled)
    const writer = spawn(process.execPath, [...process.execArgv, path.resolve("dist/bench/remoteWriter.js"), directory, token], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => new Promise<void>((resolve) => {
        writer.once("exit", () => resolve())
        writer.kill("SIGTERM")
      })))
    const port = yield* Effect.promise(() =>
      new Promise<string>((resolve) => {
        let buffer = ""
        writer.stdout.on("data", (chunk: Buffer) => {
          buffer += chunk.toString("utf8")
          const match = /listening (\d+)/.exec(buffer)
          if (match) resolve(match[1]!)
        })
      }))
    const context = yield* Layer.build(QueueClient.layer({ url: `ws://127.0.0.1:${port}/rpc`, token: Redacted.make(token) }))
    return Context.get(context, JobQueue.JobQueue)
  })

const enqueueSingle = withQueue((queue) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    const start = performance.now()
    yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
      Effect.suspend(() => {
        const t = performance.now()
        return Effect.map(queue.enqueue(Task, payload(i)), () => void latencies.push(performance.now() - t))
      }), { concurrency, discard: true })
    const seconds = (performance.now() - start) / 1000
    latencies.sort((a, b) => a - b)
    const pending = (yield* queue.stats("bench")).pending
    if (pending !== n) throw new Error(`expected ${n} pending, found ${pending}`)
    return { jobsPerSec: Math.round(n / seconds), p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
  }))

const enqueueBatches = withQueue((queue) =>
  Effect.gen(function*() {
    const start = performance.now()
    for (let i = 0; i < n; i += 500) yield* queue.enqueueBatch(Task, Array.from({ length: Math.min(500, n - i) }, (_, j) => payload(i + j)))
    return { jobsPerSec: Math.round(n / ((performance.now() - start) / 1000)) }
  }))

const worker = (queue: JobQueue.Service, onStart: (job: { readonly t: number }) => void, stop: () => boolean) =>
  Effect.gen(function*() {
    while (!stop()) {
      const claims = yield* queue.claim(Task, { max: 1, wait: "50 millis" })
      for (const claim of claims) {
        onStart(claim.job.payload)
        yield* queue.ack(claim)
      }
    }
  })

const drain = withQueue((queue) =>
  Effect.gen(function*() {
    for (let i = 0; i < n; i += 500) yield* queue.enqueueBatch(Task, Array.from({ length: Math.min(500, n - i) }, (_, j) => payload(i + j)))
    let handled = 0
    const start = performance.now()
    yield* Effect.all(Array.from({ length: concurrency }, () => worker(queue, () => void handled++, () => handled >= n)), { concurrency: "unbounded" })
    while ((yield* queue.stats("bench")).claimed + (yield* queue.stats("bench")).pending > 0) yield* Effect.sleep("5 millis")
    return { jobsPerSec: Math.round(n / ((performance.now() - start) / 1000)) }
  }))

const latency = withQueue((queue) =>
  Effect.gen(function*() {
    const jobs = 2000
    const latencies: Array<number> = []
    const workers = yield* Effect.forkChild(Effect.all(
      Array.from({ length: concurrency }, () =>
        worker(queue, (job) => void latencies.push(performance.timeOrigin + performance.now() - job.t), () => latencies.length >= jobs)),
      { concurrency: "unbounded" }
    ))
    yield* Effect.sleep("1 second")
    const start = performance.now()
    for (let i = 0; i < jobs; i++) {
      const due = start + i * 5 // 200 jobs/s, open loop on an absolute schedule
      const wait = due - performance.now()
      if (wait > 0) yield* Effect.sleep(`${wait} millis`)
      yield* Effect.forkChild(queue.enqueue(Task, payload(i)))
    }
    yield* Fiber.join(workers)
    latencies.sort((a, b) => a - b)
    return { p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p99: percentile(latencies, 0.99), max: latencies.at(-1)! }
  }))

const main = Effect.gen(function*() {
  const w1 = selected("w1") ? yield* enqueueSingle : undefined
  if (w1) console.log(`W1 enqueue c=${concurrency}: ${w1.jobsPerSec} jobs/s, ack p50 ${w1.p50.toFixed(3)} ms, p99 ${w1.p99.toFixed(3)} ms`)
  const w2 = selected("w2") ? yield* enqueueBatches : undefined
  if (w2) console.log(`W2 batch enqueue (500): ${w2.jobsPerSec} jobs/s`)
  const w3 = selected("w3") ? yield* drain : undefined
  if (w3) console.log(`W3 drain c=${concurrency}: ${w3.jobsPerSec} jobs/s`)
  const w4 = selected("w4") ? yield* latency : undefined
  if (w4) console.log(`W4 latency at 200 jobs/s: p50 ${w4.p50.toFixed(3)} p90 ${w4.p90.toFixed(3)} p99 ${w4.p99.toFixed(3)} max ${w4.max.toFixed(3)} ms`)
  fs.mkdirSync(resultsDir, { recursive: true })
  fs.writeFileSync(path.join(resultsDir, `queue-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), JSON.stringify({ n, w1, w2, w3, w4 }, null, 2))
})

await Effect.runPromise(main)
