// npm run bench:s3 [-- --seconds 20 --concurrency 256 --only simulated,rgw --min-flush-ms 0 --inflight 4]
//
// The job queue on object storage, every enqueue and ack durable (one PUT per group commit), on
// two stores:
//   simulated  the memory store with S3-like latency injected (FaultInjection: PUT p50 30 ms,
//              p99 150 ms; GET, HEAD, LIST and DELETE p50 15 ms, p99 80 ms; log-normal)
//   rgw        the S3-compatible server of ../shared/s3 (Ceph RADOS Gateway) on loopback
// and three workloads on each, a fresh queue each:
//   sustained  `concurrency` producers enqueue in closed loops while a Worker of the same
//              concurrency drains, for `seconds`: jobs completed per second, and the end-to-end
//              latency of each job (from the enqueue call to its ack being durable: the queue's
//              `Completed` event);
//   paced      1,000 jobs/s offered (open loop) for `seconds`: the same latency, and the requests
//              per job by kind priced at S3 Standard list prices (PUT, POST, LIST: $0.005 per
//              1,000; GET, HEAD: $0.0004 per 1,000; DELETE: free), per million jobs;
//   idle       a queue with a Worker waiting and nothing to do, for `seconds`: requests per second.
// `--min-flush-ms` and `--inflight` set the KV's `minFlushInterval` and `maxWalPutsInFlight` (the
// cost knobs: fewer, larger WAL puts for some latency). Requests are counted by a FaultInjection wrapper over the store (every attempt). Results go to
// bench/results/s3-<time>.json.
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Exit, Fiber, Layer, Schema, Scope, Stream } from "effect"
import * as FaultInjection from "../src/FaultInjection.ts"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as Worker from "../src/Worker.ts"
import { s3Like } from "./s3Like.ts"
import { s3Options, startS3 } from "./s3Server.ts"

const args = process.argv.slice(2)
const option = (name: string, fallback: string) => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? args[at + 1]! : fallback
}
const seconds = Number(option("seconds", "20"))
const concurrency = Number(option("concurrency", "256"))
const stores = option("only", "simulated,rgw").split(",")
const pacedRate = 1_000
const kvOptions = { minFlushInterval: `${Number(option("min-flush-ms", "0"))} millis`, maxWalPutsInFlight: Number(option("inflight", "4")) } as const

const Task = Job.define("s3bench", { payload: Schema.Struct({ i: Schema.Number, pad: Schema.String }) })
const pad = "x".repeat(60)

const prices = { put: 0.005 / 1000, list: 0.005 / 1000, get: 0.0004 / 1000, head: 0.0004 / 1000, delete: 0 }

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits

/** A fresh queue on `store`, its store's request counters, and a scope for workers. */
const openQueue = (store: string, run: number) =>
  Effect.gen(function*() {
    const base = store === "simulated"
      ? ObjectStore.layerMemory()
      : ObjectStore.layerS3(s3Options(`bench-s3/${Date.now()}-${run}`))
    const counted = FaultInjection.layer({ seed: run, faults: store === "simulated" ? s3Like : {}, retry: false }).pipe(Layer.provide(base))
    const context = yield* Layer.build(
      Layer.merge(JobQueue.layer().pipe(Layer.provide(Kv.layer(kvOptions)), Layer.provide(counted)), counted)
    )
    return { queue: Context.get(context, JobQueue.JobQueue), faults: Context.get(context, FaultInjection.FaultInjection) }
  })

/** Requests by kind since the counters were reset, and their price. */
const requestsOf = (faults: FaultInjection.Service) =>
  Effect.map(faults.counters, (counters) => {
    const byKind = Object.fromEntries(Object.entries(counters).map(([kind, c]) => [kind, c.requests])) as Record<keyof typeof prices, number>
    const dollars = Object.entries(byKind).reduce((sum, [kind, n]) => sum + n * prices[kind as keyof typeof prices], 0)
    return { byKind, total: Object.values(byKind).reduce((a, b) => a + b, 0), dollars }
  })

/** Latencies from each enqueue call to its job's `Completed` event, collected while `body` runs. */
const withCompletions = <A, E>(queue: JobQueue.Service, body: (started: Map<string, number>) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const started = new Map<string, number>()
    const latencies: Array<number> = []
    const watcher = yield* Effect.forkChild(Stream.runForEach(queue.events, (event) =>
      Effect.sync(() => {
        if (event._tag !== "Completed") return
        const t = started.get(event.id)
        if (t !== undefined) latencies.push(performance.now() - t)
      })))
    yield* Effect.sleep("100 millis") // the subscription is in place
    const result = yield* body(started)
    yield* Effect.sleep("2 seconds") // the last completions
    yield* Fiber.interrupt(watcher)
    const sorted = latencies.sort((a, b) => a - b)
    return { result, completed: sorted.length, p50: round(percentile(sorted, 0.5)), p99: round(percentile(sorted, 0.99)) }
  })

const enqueueTimed = (queue: JobQueue.Service, started: Map<string, number>, i: number) =>
  Effect.suspend(() => {
    const t = performance.now()
    return Effect.map(queue.enqueue(Task, { i, pad }), ({ id }) => void started.set(id, t))
  })

const startWorker = (queue: JobQueue.Service) =>
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.as(
      Layer.buildWithScope(Worker.layer(Task, () => Effect.void, { concurrency }).pipe(Layer.provide(Layer.succeed(JobQueue.JobQueue, queue))), scope),
      scope
    ))

const sustained = (store: string) =>
  Effect.scoped(Effect.gen(function*() {
    const { faults, queue } = yield* openQueue(store, 1)
    const worker = yield* startWorker(queue)
    let i = 0
    const until = performance.now() + seconds * 1000
    const measured = yield* withCompletions(queue, (started) =>
      Effect.gen(function*() {
        yield* faults.resetCounters
        yield* Effect.all(Array.from({ length: concurrency }, () =>
          Effect.whileLoop({ while: () => performance.now() < until, body: () => enqueueTimed(queue, started, i++), step: () => {} })), {
          concurrency: "unbounded"
        })
        return yield* requestsOf(faults)
      }))
    yield* Scope.close(worker, Exit.void)
    return {
      jobsPerSec: round(measured.completed / seconds),
      enqueued: i,
      endToEndP50Ms: measured.p50,
      endToEndP99Ms: measured.p99,
      requestsPerJob: round(measured.result.total / Math.max(1, measured.completed), 3)
    }
  }))

const paced = (store: string) =>
  Effect.scoped(Effect.gen(function*() {
    const { faults, queue } = yield* openQueue(store, 2)
    const worker = yield* startWorker(queue)
    const jobs = pacedRate * seconds
    const measured = yield* withCompletions(queue, (started) =>
      Effect.gen(function*() {
        yield* faults.resetCounters
        const start = performance.now()
        const fibers: Array<Fiber.Fiber<void, unknown>> = []
        for (let i = 0; i < jobs; i++) {
          const wait = start + (i * 1000) / pacedRate - performance.now()
          if (wait > 0) yield* Effect.sleep(`${wait} millis`)
          fibers.push(yield* Effect.forkChild(enqueueTimed(queue, started, i)))
        }
        yield* Fiber.joinAll(fibers)
        yield* Effect.sleep("2 seconds")
        return yield* requestsOf(faults)
      }))
    yield* Scope.close(worker, Exit.void)
    const perMillion = 1_000_000 / Math.max(1, measured.completed)
    return {
      offeredPerSec: pacedRate,
      completed: measured.completed,
      endToEndP50Ms: measured.p50,
      endToEndP99Ms: measured.p99,
      requestsPerMillionJobs: Object.fromEntries(Object.entries(measured.result.byKind).map(([kind, n]) => [kind, Math.round(n * perMillion)])),
      dollarsPerMillionJobs: round(measured.result.dollars * perMillion, 3)
    }
  }))

const idle = (store: string) =>
  Effect.scoped(Effect.gen(function*() {
    const { faults, queue } = yield* openQueue(store, 3)
    const worker = yield* startWorker(queue)
    yield* Effect.sleep("2 seconds")
    yield* faults.resetCounters
    yield* Effect.sleep(`${seconds} seconds`)
    const { byKind, total } = yield* requestsOf(faults)
    yield* Scope.close(worker, Exit.void)
    return { requestsPerSec: round(total / seconds, 2), byKind }
  }))


const program = Effect.gen(function*() {
  const results: Record<string, unknown> = { seconds, concurrency, pacedRate, kvOptions }
  for (const store of stores) {
    const stop = store === "rgw" ? startS3() : () => {}
    try {
      const s = yield* sustained(store)
      console.log(`${store} sustained c=${concurrency}: ${s.jobsPerSec} jobs/s, end-to-end p50 ${s.endToEndP50Ms} ms, p99 ${s.endToEndP99Ms} ms, ${s.requestsPerJob} requests/job`)
      const p = yield* paced(store)
      console.log(`${store} paced ${pacedRate}/s: ${p.completed} done, end-to-end p50 ${p.endToEndP50Ms} ms, p99 ${p.endToEndP99Ms} ms, $${p.dollarsPerMillionJobs} per million jobs (${JSON.stringify(p.requestsPerMillionJobs)})`)
      const i = yield* idle(store)
      console.log(`${store} idle: ${i.requestsPerSec} requests/s (${JSON.stringify(i.byKind)})`)
      results[store] = { sustained: s, paced: p, idle: i }
    } finally {
      stop()
    }
  }
  const dir = path.resolve("bench/results")
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, `s3-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), JSON.stringify(results, null, 2))
})

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
