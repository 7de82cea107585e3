// npm run bench:store [-- --n 2000 --s3-n 500 --size 1024 --backends memory,directory,s3]
//
// put / get / put-if-absent latency (p50, p99) and throughput for each backend at concurrency 1
// and 16, with the machine's fsync baseline (the same durable create done with bare node:fs).
// Starts the S3 test server (../shared/s3) unless S3_ENDPOINT is set, and stops it afterwards.
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, type Layer } from "effect"
import * as ObjectStore from "../src/ObjectStore.ts"
import { s3Options, startS3 } from "./s3Server.ts"

/** Results go to bench/results/ (npm runs the benchmarks from the repository root). */
const resultsDir = path.resolve("bench/results")

const args = process.argv.slice(2)
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const n = Number(option("n", "2000"))
const s3N = Number(option("s3-n", "500"))
const size = Number(option("size", "1024"))
const backends = option("backends", "memory,directory,s3").split(",")
const concurrencies = [1, 16]

interface Row {
  readonly backend: string
  readonly op: string
  readonly concurrency: number
  readonly ops: number
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

const summarize = (backend: string, op: string, concurrency: number, latencies: Array<number>, wallMs: number): Row => {
  latencies.sort((a, b) => a - b)
  return {
    backend,
    op,
    concurrency,
    ops: latencies.length,
    opsPerSec: Math.round(latencies.length / (wallMs / 1000)),
    p50Ms: Number(percentile(latencies, 0.5).toFixed(3)),
    p99Ms: Number(percentile(latencies, 0.99).toFixed(3))
  }
}

/** Runs `count` operations with `concurrency` in flight, timing each. */
const measure = <E>(count: number, concurrency: number, op: (i: number) => Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    const start = performance.now()
    yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) =>
        Effect.suspend(() => {
          const t = performance.now()
          return Effect.tap(op(i), () => Effect.sync(() => latencies.push(performance.now() - t)))
        }),
      { concurrency, discard: true }
    )
    return { latencies, wallMs: performance.now() - start }
  })

const body = new Uint8Array(size).fill(7)

const benchStore = (backend: string, count: number, layer: Layer.Layer<ObjectStore.ObjectStore, unknown>) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore.ObjectStore
    const rows: Array<Row> = []
    for (const concurrency of concurrencies) {
      const run = concurrency === 1 ? "c1" : "c16"
      const warm = Math.min(50, count)
      yield* measure(warm, concurrency, (i) => store.put(`warm/${run}/${i}`, body))
      const put = yield* measure(count, concurrency, (i) => store.put(`put/${run}/${i % 100}`, body))
      rows.push(summarize(backend, "put", concurrency, put.latencies, put.wallMs))
      const pia = yield* measure(count, concurrency, (i) => store.put(`pia/${run}/${i}`, body, { ifNoneMatch: "*" }))
      rows.push(summarize(backend, "put-if-absent", concurrency, pia.latencies, pia.wallMs))
      const get = yield* measure(count, concurrency, (i) => store.get(`pia/${run}/${i}`))
      rows.push(summarize(backend, "get", concurrency, get.latencies, get.wallMs))
    }
    return rows
  }).pipe(Effect.provide(layer))

/** The durable create of the directory backend done with bare synchronous node:fs calls. */
const fsyncBaseline = (dir: string, count: number): Array<Row> => {
  const rows: Array<Row> = []
  const latencies: Array<number> = []
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    const tmp = path.join(dir, `t${i}`)
    const fd = fs.openSync(tmp, "wx")
    fs.writeSync(fd, body)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fs.linkSync(tmp, path.join(dir, `f${i}`))
    fs.unlinkSync(tmp)
    const d = fs.openSync(dir, "r")
    fs.fsyncSync(d)
    fs.closeSync(d)
    latencies.push(performance.now() - t)
  }
  rows.push(summarize("node:fs baseline", "write+fsync+link+fsync(dir)", 1, latencies, performance.now() - start))
  const fsyncOnly: Array<number> = []
  const fd = fs.openSync(path.join(dir, "fsync-only"), "w")
  const t0 = performance.now()
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    fs.writeSync(fd, body, 0, body.length, 0)
    fs.fsyncSync(fd)
    fsyncOnly.push(performance.now() - t)
  }
  fs.closeSync(fd)
  rows.push(summarize("node:fs baseline", "write+fsync (one file)", 1, fsyncOnly, performance.now() - t0))
  return rows
}

const main = Effect.gen(function*() {
  const rows: Array<Row> = []
  const dir = fs.mkdtempSync(path.join(tmpdir(), "bucketq-bench-"))
  try {
    rows.push(...fsyncBaseline(fs.mkdtempSync(path.join(dir, "baseline-")), Math.min(n, 1000)))
    if (backends.includes("memory")) rows.push(...yield* benchStore("memory", n, ObjectStore.layerMemory()))
    if (backends.includes("directory")) {
      rows.push(...yield* benchStore("directory", n, ObjectStore.layerFileSystem({ directory: path.join(dir, "store") })))
    }
    if (backends.includes("s3")) {
      const stop = startS3()
      try {
        rows.push(...yield* benchStore("s3 (Ceph RGW, loopback)", s3N, ObjectStore.layerS3(s3Options(`bench-${process.pid}`))))
      } finally {
        stop()
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return rows
})

const rows = await Effect.runPromise(main)
// Directory rows against the bare node:fs durable create measured in the same run: the disk's
// speed drifts between runs on a shared machine, the ratio much less.
const baseline = rows.find((r) => r.op === "write+fsync+link+fsync(dir)")!
const ratio = (r: Row) => r.backend === "directory" && r.op !== "get" && r.concurrency === 1 ? `${(r.p50Ms / baseline.p50Ms).toFixed(2)}×` : ""
const header = ["backend", "op", "c", "ops", "ops/s", "p50 ms", "p99 ms", "p50 / baseline"]
const table = [header, ...rows.map((r) => [r.backend, r.op, String(r.concurrency), String(r.ops), String(r.opsPerSec), r.p50Ms.toFixed(3), r.p99Ms.toFixed(3), ratio(r)])]
const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)))
for (const row of table) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "))
fs.mkdirSync(resultsDir, { recursive: true })
const file = path.join(resultsDir, `store-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
fs.writeFileSync(file, JSON.stringify({ size, n, s3N, node: process.version, rows }, null, 2))
console.log(`\n${size}-byte objects; results in ${fileURLToPath(file)}`)
