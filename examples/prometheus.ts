// Metrics for Prometheus: a queue with a worker, and GET /metrics serving Effect's metrics in
// Prometheus' text format through `effect/observability` (bucketq_jobs_total, bucketq_queue_depth,
// bucketq_oldest_pending_seconds, bucketq_operation_seconds, bucketq_store_requests_total,
// bucketq_store_bytes_total), and the store's requests and dollars per job logged every 10 s.
//   npx tsx examples/prometheus.ts      then      curl localhost:9464/metrics
//   (BUCKETQ_URL=memory: by default here; file:./.bucketq works too)
import { createServer } from "node:http"
import { pathToFileURL } from "node:url"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Metric, Schedule, Schema } from "effect"
import { HttpRouter } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { Job, JobQueue, QueueLive, Worker } from "../src/index.ts"

/**
 * GET /metrics on `port` (0: a free one), in Prometheus' text format: every metric of the registry
 * in context, the queue's among them. The HTTP server is provided too, to read its address.
 */
export const metricsEndpoint = (port: number) =>
  HttpRouter.serve(PrometheusMetrics.layerHttp({ path: "/metrics" }), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port }))
  )

/** Prices per 1000 requests of each kind (S3 Standard's list prices at the time of writing; set your own). */
export const s3Prices = { put: 0.005, list: 0.005, get: 0.0004, head: 0.0004, delete: 0 } as const

/**
 * The store's requests per job completed so far in this process, and what they cost at `prices`
 * (per 1000 requests): read off `bucketq_store_requests_total` and `bucketq_jobs_total`.
 */
export const costPerJob = (prices: Readonly<Record<string, number>> = s3Prices) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    let requests = 0
    let dollars = 0
    let completed = 0
    for (const s of snapshots) {
      const count = "count" in s.state && typeof s.state.count === "number" && s.type === "Counter" ? s.state.count : 0
      if (s.id === "bucketq_store_requests_total") {
        requests += count
        dollars += (count * (prices[s.attributes?.kind ?? ""] ?? 0)) / 1000
      }
      if (s.id === "bucketq_jobs_total" && s.attributes?.event === "completed") completed += count
    }
    return completed === 0 ? undefined : { requests: requests / completed, dollars: dollars / completed }
  })

const Thumbnail = Job.define("thumbnails", {
  payload: Schema.Struct({ image: Schema.String }),
  maxAttempts: 3,
  backoff: Job.Backoff.fixed("1 second")
})

// one image in five fails its first attempt (retried), the rest succeed
const render = (payload: { readonly image: string }, ctx: Worker.JobContext) =>
  payload.image.endsWith("0") && ctx.attempt === 1 ? Effect.fail(`could not read ${payload.image}`) : Effect.sleep("50 millis")

/** Enqueues a few images every second, forever. */
const producer = Effect.gen(function*() {
  const queue = yield* JobQueue.JobQueue
  let n = 0
  yield* Effect.repeat(
    Effect.suspend(() => queue.enqueueBatch(Thumbnail, Array.from({ length: 5 }, () => ({ image: `img-${n++}` })))),
    Schedule.spaced("1 second")
  )
})

/** Logs the store's requests and dollars per job every 10 seconds. */
const report = Effect.repeat(
  Effect.flatMap(costPerJob(), (cost) =>
    cost === undefined
      ? Effect.void
      : Effect.log(`per job: ${cost.requests.toFixed(2)} store requests, $${cost.dollars.toFixed(8)} at S3 list prices`)),
  Schedule.spaced("10 seconds")
)

const main = Layer.launch(
  Layer.mergeAll(
    metricsEndpoint(9464),
    Worker.layer(Thumbnail, render, { concurrency: 4 }),
    Layer.effectDiscard(Effect.forkScoped(producer)),
    Layer.effectDiscard(Effect.forkScoped(report))
  ).pipe(Layer.provide(QueueLive))
)

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.env.BUCKETQ_URL ??= "memory:"
  Effect.runPromise(Effect.andThen(Effect.log("metrics on http://localhost:9464/metrics"), main)).catch((error) => {
    console.error(String(error))
    process.exit(1)
  })
}
