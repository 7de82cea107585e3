// npm run bench:kv [-- --quick] [-- --only directory,s3sim,memory]
//
// Small durable commits (one key, a 100-byte value) on the directory backend at concurrency 1, 16
// and 256, on the memory store with S3-like injected latency (PUT log-normal, p50 30 ms, p99
// 120 ms) at concurrency 1 and 1,000, and on the S3 test server (loopback) at 1 and 256:
// commits/s, p50/p99 latency, requests and bytes per commit. Then the memory the materialised
// state takes per million keys, against the raw key + value bytes.
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer, Stream } from "effect"
import * as FaultInjection from "../src/FaultInjection.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as ObjectStoreError from "../src/ObjectStoreError.ts"
import { s3Options, startS3 } from "./s3Server.ts"

/** Results go to bench/results/ (npm runs the benchmarks from the repository root). */
const resultsDir = path.resolve("bench/results")

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const onlyIndex = args.indexOf("--only")
const only = onlyIndex >= 0 ? args[onlyIndex + 1]!.split(",") : ["directory", "s3sim", "s3", "memory"]

interface Row {
  readonly scenario: string
  readonly concurrency: number
  readonly commits: number
  readonly commitsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly putsPerCommit: number
  readonly bytesPerCommit: number
}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
const value = new Uint8Array(100).fill(42)
const key = (i: number) => new TextEncoder().encode(`key/${String(i).padStart(10, "0")}`)

/** `count` durable one-key commits with `concurrency` in flight, on a fresh KV over `store`. */
const commits = (scenario: string, store: Layer.Layer<ObjectStore.ObjectStore, unknown>, concurrency: number, count: number) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      FaultInjection.layer({ seed: 1, retry: false }).pipe(Layer.provide(store))
    )
    const control = Context.get(context, FaultInjection.FaultInjection)
    const kvContext = yield* Layer.build(Kv.layer().pipe(Layer.provide(Layer.succeedContext(context))))
    const kv = Context.get(kvContext, Kv.Kv)
    // warm up, then count only the measured commits
    yield* Effect.forEach(Array.from({ length: Math.min(2000, count) }, (_, i) => i), (i) =>
      kv.write([{ _tag: "Put", key: key(-i - 1), value }]), { concurrency, discard: true })
    yield* control.resetCounters
    const latencies = new Array<number>(count)
    const start = performance.now()
    yield* Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
      Effect.suspend(() => {
        const t = performance.now()
        return Effect.map(kv.write([{ _tag: "Put", key: key(i), value }]), () => void (latencies[i] = performance.now() - t))
      }), { concurrency, discard: true })
    const wall = performance.now() - start
    const counters = yield* control.counters
    latencies.sort((a, b) => a - b)
    return {
      scenario,
      concurrency,
      commits: count,
      commitsPerSec: Math.round(count / (wall / 1000)),
      p50Ms: Number(percentile(latencies, 0.5).toFixed(3)),
      p99Ms: Number(percentile(latencies, 0.99).toFixed(3)),
      putsPerCommit: Number((counters.put.requests / count).toFixed(4)),
      bytesPerCommit: Math.round(counters.put.bytesWritten / count)
    } satisfies Row
  }).pipe(Effect.scoped)

/** Loads `count` keys (16-byte keys, 100-byte values) and measures the memory it takes. */
const materialised = (count: number) =>
  Effect.gen(function*() {
    const gcOnce = (globalThis as { gc?: () => void }).gc
    const gc = gcOnce === undefined ? undefined : () => {
      for (let i = 0; i < 3; i++) gcOnce()
    }
    // a store that keeps nothing, so that only the KV's own state is measured
    const discard = Layer.succeed(ObjectStore.ObjectStore, {
      get: (k) => Effect.fail(ObjectStoreError.make("get", k, "NotFound")),
      head: (k) => Effect.fail(ObjectStoreError.make("head", k, "NotFound")),
      put: () => Effect.succeed("etag"),
      delete: () => Effect.void,
      list: () => Stream.empty
    })
    const kvContext = yield* Layer.build(Kv.layer().pipe(Layer.provide(discard)))
    const kv = Context.get(kvContext, Kv.Kv)
    gc?.()
    const before = process.memoryUsage()
    const batch = 1000
    for (let i = 0; i < count; i += batch) {
      yield* kv.write(Array.from({ length: batch }, (_, j) => ({
        _tag: "Put" as const,
        key: new TextEncoder().encode(`k${String(i + j).padStart(15, "0")}`),
        value: new Uint8Array(100).fill((i + j) & 0xff)
      })), { durable: false })
    }
    yield* kv.flush
    gc?.()
    const after = process.memoryUsage()
    const used = (after.heapUsed - before.heapUsed) + (after.arrayBuffers - before.arrayBuffers)
    const raw = count * (16 + 100)
    return { keys: count, bytesPerKey: Math.round(used / count), rawBytesPerKey: raw / count, ratio: Number((used / raw).toFixed(2)), gc: gc !== undefined }
  }).pipe(Effect.scoped)

const main = Effect.gen(function*() {
  const rows: Array<Row> = []
  const dir = fs.mkdtempSync(path.join(tmpdir(), "bucketq-bench-kv-"))
  try {
    if (only.includes("directory")) {
      for (const [c, n] of [[1, quick ? 500 : 2000], [16, quick ? 5000 : 20000], [256, quick ? 20000 : 100000]] as const) {
        rows.push(yield* commits("directory", ObjectStore.layerFileSystem({ directory: path.join(dir, `c${c}`) }), c, n))
      }
    }
    if (only.includes("s3sim")) {
      const s3like = FaultInjection.layer({
        seed: 2,
        retry: false,
        faults: {
          put: { latency: { _tag: "LogNormal", p50: 30, p99: 120 } },
          get: { latency: { _tag: "LogNormal", p50: 15, p99: 60 } },
          head: { latency: { _tag: "LogNormal", p50: 15, p99: 60 } },
          list: { latency: { _tag: "LogNormal", p50: 30, p99: 120 } },
          delete: { latency: { _tag: "LogNormal", p50: 20, p99: 80 } }
        }
      }).pipe(Layer.provide(ObjectStore.layerMemory({ retry: false })))
      for (const [c, n] of [[1, quick ? 50 : 200], [1000, quick ? 30000 : 100000]] as const) {
        rows.push(yield* commits("memory + S3-like latency", s3like, c, n))
      }
    }
    if (only.includes("s3")) {
      const stop = startS3()
      try {
        for (const [c, n] of [[1, quick ? 50 : 300], [256, quick ? 5000 : 20000]] as const) {
          rows.push(yield* commits("S3 (Ceph RGW, loopback)", ObjectStore.layerS3(s3Options(`bench-kv-${process.pid}-${c}`)), c, n))
        }
      } finally {
        stop()
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const memory = only.includes("memory") ? yield* materialised(quick ? 200_000 : 1_000_000) : undefined
  return { rows, memory }
})

const { memory, rows } = await Effect.runPromise(main)
const header = ["scenario", "c", "commits", "commits/s", "p50 ms", "p99 ms", "PUTs/commit", "bytes/commit"]
const table = [header, ...rows.map((r) => [r.scenario, String(r.concurrency), String(r.commits), String(r.commitsPerSec), r.p50Ms.toFixed(3), r.p99Ms.toFixed(3), String(r.putsPerCommit), String(r.bytesPerCommit)])]
const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)))
for (const row of table) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "))
if (memory) {
  console.log(`\nmaterialised state: ${memory.keys} keys, ${memory.bytesPerKey} bytes/key vs ${memory.rawBytesPerKey} raw: ${memory.ratio}x${memory.gc ? "" : " (run with --expose-gc for exact figures)"}`)
}
fs.mkdirSync(resultsDir, { recursive: true })
const file = path.join(resultsDir, `kv-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
fs.writeFileSync(file, JSON.stringify({ node: process.version, rows, memory }, null, 2))
