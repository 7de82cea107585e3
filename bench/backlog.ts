// npm run bench:backlog [-- --sizes 100000,1000000 --batch 1000 --samples 2000 --dir <path> --keep
//                          --latency --latency-max 100000 --latency-samples 300 --out <file.json>
//                          --max-rss-mb 8192 --phases fill,reopen,steady --no-empty --heap-snapshot <prefix>]
//
// Issue 17's backlog benchmark: the job queue on the directory backend with N jobs pending
// (100-byte payloads: a 98-character string, msgpack'd), for each N of `--sizes`:
//   fill    enqueue N jobs with `enqueueBatch`, `--batch` at a time, into a fresh directory:
//           jobs/s overall and per tenth of the fill, batch latency, peak RSS;
//   reopen  open that directory again: time until the layer is built, the first `stats` and the
//           first `claim` are answered (the claim is released), peak RSS;
//   steady  `--samples` rounds of: enqueue one job (untimed), then claim one and ack it (timed),
//           so the backlog stays at N: claim+ack latency p50/p99/max, RSS. The same against an
//           empty queue (N = 0) gives the baseline the issue's ratio is taken against.
// Each phase runs in a fresh child process (this script with `--phase`), so its RSS is its own:
// `process.memoryUsage.rss()` sampled every 100 ms and VmHWM of /proc/self/status at the end.
// The parent kills a child whose RSS passes `--max-rss-mb` (default 8192) and says so; children
// get `--max-old-space-size` of the same size (unless a Node flag sets one), so that the RSS
// limit, not V8's default heap limit, is what stops a large run. Node flags of the parent
// (e.g. `--cpu-prof`) are passed on to the children.
//
// With `--latency`, also a steady phase over the memory store with S3-like latency injected
// (FaultInjection with bench/s3Like.ts: PUT p50 30 ms / p99 150 ms, other kinds 15 / 80 ms),
// filled in the same process with the latency off, at min(N, `--latency-max`) and at 0, for
// `--latency-samples` rounds: the same latencies, and the store requests by kind per claim+ack
// (counted around the claim+ack only) and per enqueue.
//
// `--dir` puts the queues' directories there (default: a temporary directory); the directories
// this run creates are removed at the end unless `--keep`. `--phases` picks phases (with `--dir`
// and `--keep`, a later run can reopen a kept fill: `--phases reopen,steady`). Results: JSON to
// `--out` (default bench/results/backlog/<date>/backlog-<time>.json) and the markdown table
// beside it (.md), also printed. `--heap-snapshot <prefix>`: the fill phase also writes a heap
// snapshot of the full queue (`<prefix>-<N>.heapsnapshot`; V8 collects garbage first), which
// `node bench/heapSummary.mjs <file>` sums by kind of object.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PerformanceObserver } from "node:perf_hooks"
import * as v8 from "node:v8"
import { Cause, Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import * as FaultInjection from "../src/FaultInjection.ts"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { s3Like } from "./s3Like.ts"

// ---------------------------------------------------------------------------------------------
// Arguments

const args = process.argv.slice(2)
const option = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback
}
const flag = (name: string) => args.includes(`--${name}`)
const numbers = (text: string) => text.split(",").filter((s) => s.length > 0).map((s) => Number(s.replace(/_/g, "")))

const batch = Number(option("batch", "1000"))
const samples = Number(option("samples", "2000"))
const maxRssMb = Number(option("max-rss-mb", "8192"))
/** With a path prefix, the fill phase writes a heap snapshot (`<prefix>-<N>.heapsnapshot`) once full. */
const heapSnapshot = option("heap-snapshot", "")

// ---------------------------------------------------------------------------------------------
// The workload

const Task = Job.define("backlog", { payload: Schema.String })
const filler = "x".repeat(86)
/** 98 characters, unique per `i`: msgpack str8, 100 bytes encoded. */
const payloadOf = (i: number) => String(i).padStart(12, "0") + filler

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits
const mb = (bytes: number) => Math.round(bytes / 2 ** 20)

/** p50/p90/p99/max/mean of latencies in ms. */
const summary = (values: Array<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 0.5), 3),
    p90: round(percentile(sorted, 0.9), 3),
    p99: round(percentile(sorted, 0.99), 3),
    max: round(sorted.at(-1) ?? NaN, 3),
    mean: round(mean, 3)
  }
}

// ---------------------------------------------------------------------------------------------
// Child side: memory, GC and the queue

/** Peak RSS sampled every 100 ms from now on. */
const rssSampler = () => {
  let peak = process.memoryUsage.rss()
  const timer = setInterval(() => {
    const rss = process.memoryUsage.rss()
    if (rss > peak) peak = rss
  }, 100)
  timer.unref()
  return () => {
    clearInterval(timer)
    return Math.max(peak, process.memoryUsage.rss())
  }
}

/** A field of /proc/self/status in bytes (VmHWM: the process's peak RSS), or NaN elsewhere. */
const procStatus = (field: string) => {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(fs.readFileSync("/proc/self/status", "utf8"))
    return match ? Number(match[1]) * 1024 : NaN
  } catch {
    return NaN
  }
}

/** Garbage collection pauses from now on: count and total ms. */
const gcObserver = () => {
  const gc = { count: 0, ms: 0 }
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++
      gc.ms += entry.duration
    }
  })
  observer.observe({ entryTypes: ["gc"] })
  return () => {
    observer.disconnect()
    return { count: gc.count, ms: Math.round(gc.ms) }
  }
}

/** The process's memory now, in MiB: RSS, V8 heap, the heap's spaces, buffers. */
const memoryNow = () => {
  const usage = process.memoryUsage()
  const spaces = Object.fromEntries(
    v8.getHeapSpaceStatistics().filter((s) => s.space_used_size > 2 ** 20).map((s) => [s.space_name, mb(s.space_used_size)])
  )
  return {
    rssMb: mb(usage.rss),
    heapUsedMb: mb(usage.heapUsed),
    heapTotalMb: mb(usage.heapTotal),
    externalMb: mb(usage.external),
    arrayBuffersMb: mb(usage.arrayBuffers),
    spacesUsedMb: spaces
  }
}

/** Files and bytes under `directory`, by top-level entry (runs, manifest, the local log…). */
const directoryUsage = (directory: string) => {
  const byEntry: Record<string, { files: number; mb: number }> = {}
  const walk = (dir: string, top: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      const key = top !== "" ? top : entry.name === "%wal" ? "local log" : entry.name.replace(/%$/, "")
      if (entry.isDirectory()) walk(full, key)
      else {
        const slot = (byEntry[key] ??= { files: 0, mb: 0 })
        slot.files++
        slot.mb += fs.statSync(full).size / 2 ** 20
      }
    }
  }
  walk(directory, "")
  for (const slot of Object.values(byEntry)) slot.mb = round(slot.mb, 1)
  return byEntry
}

/** The queue over the directory backend, as bench/queue.ts opens it (every option at its default), with its KV. */
const directoryLayer = (directory: string) =>
  JobQueue.layer().pipe(Layer.provideMerge(Kv.layer()), Layer.provide(ObjectStore.layerFileSystem({ directory })))

/** The queue over the memory store with the FaultInjection wrapper (no faults yet), as bench/s3.ts opens it. */
const latencyLayer = () => {
  const counted = FaultInjection.layer({ seed: 17, faults: {}, retry: false }).pipe(Layer.provide(ObjectStore.layerMemory()))
  return Layer.merge(JobQueue.layer().pipe(Layer.provideMerge(Kv.layer()), Layer.provide(counted)), counted)
}

/** Builds `layer` in a scope of its own: the services and the effect that closes them. */
const open = <ROut, E>(layer: Layer.Layer<ROut, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(layer, scope)
    return { context, close: Scope.close(scope, Exit.void) }
  })

/** Enqueues jobs `from` to `from + n - 1` in batches: per-tenth throughput and batch latencies. */
const fillQueue = (queue: JobQueue.Service, from: number, n: number, onProgress: (done: number) => void) =>
  Effect.gen(function*() {
    const batchMs: Array<number> = []
    const tenths: Array<{ jobs: number; ms: number; jobsPerSec: number; rssMb: number }> = []
    const start = performance.now()
    let last = { jobs: 0, ms: 0 }
    for (let done = 0; done < n;) {
      const size = Math.min(batch, n - done)
      const payloads = Array.from({ length: size }, (_, j) => payloadOf(from + done + j))
      const t = performance.now()
      yield* queue.enqueueBatch(Task, payloads)
      const now = performance.now()
      batchMs.push(now - t)
      done += size
      onProgress(done)
      if (done >= ((tenths.length + 1) * n) / 10) {
        const ms = now - start
        tenths.push({ jobs: done, ms: Math.round(ms), jobsPerSec: Math.round(((done - last.jobs) * 1000) / (ms - last.ms)), rssMb: mb(process.memoryUsage.rss()) })
        last = { jobs: done, ms }
      }
    }
    const seconds = (performance.now() - start) / 1000
    return { jobs: n, seconds: round(seconds, 1), jobsPerSec: Math.round(n / Math.max(seconds, 1e-9)), batchMs: summary(batchMs), tenths }
  })

type RequestCounts = Record<string, number>
const countsOf = (counters: FaultInjection.Counters): RequestCounts =>
  Object.fromEntries(Object.entries(counters).map(([kind, c]) => [kind, c.requests]))
const addDelta = (into: RequestCounts, before: RequestCounts, after: RequestCounts) => {
  for (const kind of Object.keys(after)) into[kind] = (into[kind] ?? 0) + after[kind]! - (before[kind] ?? 0)
}
const perRound = (counts: RequestCounts, rounds: number) =>
  Object.fromEntries(Object.entries(counts).map(([kind, n]) => [kind, round(n / Math.max(1, rounds), 3)]))

/**
 * `rounds` (after `warmup` untimed ones) of: enqueue one job, claim one, ack it. Latencies of the
 * claim, the ack and both; with `faults`, the store requests counted around the claim+ack and
 * around the enqueue.
 */
const steadyRounds = (queue: JobQueue.Service, base: number, rounds: number, warmup: number, faults?: FaultInjection.Service) =>
  Effect.gen(function*() {
    const claimAck: Array<number> = [], claim: Array<number> = [], ack: Array<number> = [], enqueue: Array<number> = []
    const claimAckRequests: RequestCounts = {}, enqueueRequests: RequestCounts = {}
    const counts = faults === undefined ? Effect.succeed({} as RequestCounts) : Effect.map(faults.counters, countsOf)
    const start = performance.now()
    for (let r = -warmup; r < rounds; r++) {
      const c0 = yield* counts
      const e0 = performance.now()
      yield* queue.enqueue(Task, payloadOf(base + warmup + r))
      const e1 = performance.now()
      const c1 = yield* counts
      const t0 = performance.now()
      const claims = yield* queue.claim(Task, { max: 1 })
      const t1 = performance.now()
      if (claims.length !== 1) return yield* Effect.die(new Error(`claim gave ${claims.length} jobs, expected 1`))
      yield* queue.ack(claims[0]!)
      const t2 = performance.now()
      const c2 = yield* counts
      if (r < 0) continue
      enqueue.push(e1 - e0)
      claim.push(t1 - t0)
      ack.push(t2 - t1)
      claimAck.push(t2 - t0)
      addDelta(enqueueRequests, c0, c1)
      addDelta(claimAckRequests, c1, c2)
    }
    return {
      rounds,
      warmup,
      seconds: round((performance.now() - start) / 1000, 1),
      claimAckMs: summary(claimAck),
      claimMs: summary(claim),
      ackMs: summary(ack),
      enqueueMs: summary(enqueue),
      ...(faults === undefined ? {} : {
        requestsPerClaimAck: perRound(claimAckRequests, rounds),
        requestsPerEnqueue: perRound(enqueueRequests, rounds)
      })
    }
  })

interface ChildArgs {
  readonly phase: string
  readonly n: number
  readonly dir: string
  readonly samples: number
}

/** One phase in this (child) process; its result, with memory and GC figures added. */
const runPhase = (child: ChildArgs) =>
  Effect.gen(function*() {
    const peakRss = rssSampler()
    const gc = gcObserver()
    const body = yield* phaseBody(child)
    const peakRssBytes = peakRss()
    return { ...body, peakRssMb: mb(peakRssBytes), vmHwmMb: mb(procStatus("VmHWM")), gc: gc() }
  })

const phaseBody = (child: ChildArgs): Effect.Effect<Record<string, unknown>, unknown> => {
  switch (child.phase) {
    case "fill":
      return fillPhase(child)
    case "reopen":
      return reopenPhase(child)
    case "steady":
      return steadyPhase(child)
    case "latency":
      return latencyPhase(child)
    default:
      return Effect.die(new Error(`unknown phase ${child.phase}`))
  }
}

const warmupOf = (rounds: number) => Math.min(100, Math.floor(rounds / 10))

const fillPhase = ({ dir, n }: ChildArgs) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    const { close, context } = yield* open(directoryLayer(dir))
    const openMs = performance.now() - t0
    const queue = Context.get(context, JobQueue.JobQueue)
    const fill = yield* fillQueue(queue, 0, n, () => {})
    const stats = yield* queue.stats(Task.queue)
    if (stats.pending !== n) return yield* Effect.die(new Error(`expected ${n} pending, found ${stats.pending}`))
    const kvKeys = (yield* Context.get(context, Kv.Kv).stats).keys
    const memory = memoryNow()
    const snapshot = heapSnapshot === "" ? undefined : v8.writeHeapSnapshot(`${heapSnapshot}-${n}.heapsnapshot`)
    const c0 = performance.now()
    yield* close
    const closeMs = performance.now() - c0
    return {
      n,
      openMs: Math.round(openMs),
      ...fill,
      kvKeys,
      memoryAtEnd: memory,
      ...(snapshot === undefined ? {} : { heapSnapshot: snapshot }),
      closeMs: Math.round(closeMs),
      directory: directoryUsage(dir)
    }
  })

const reopenPhase = ({ dir }: ChildArgs) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    const { close, context } = yield* open(directoryLayer(dir))
    const t1 = performance.now()
    const queue = Context.get(context, JobQueue.JobQueue)
    const stats = yield* queue.stats(Task.queue)
    const t2 = performance.now()
    const claims = yield* queue.claim(Task, { max: 1 })
    const t3 = performance.now()
    for (const claim of claims) yield* queue.release(claim)
    const memory = memoryNow()
    const kvKeys = (yield* Context.get(context, Kv.Kv).stats).keys
    yield* close
    return {
      pending: stats.pending,
      openMs: Math.round(t1 - t0),
      firstStatsMs: Math.round(t2 - t0),
      firstClaimMs: Math.round(t3 - t0),
      kvKeys,
      memoryAfterOpen: memory,
      directory: directoryUsage(dir)
    }
  })

const steadyPhase = ({ dir, n, samples: rounds }: ChildArgs) =>
  Effect.gen(function*() {
    fs.mkdirSync(dir, { recursive: true })
    const t0 = performance.now()
    const { close, context } = yield* open(directoryLayer(dir))
    const openMs = performance.now() - t0
    const queue = Context.get(context, JobQueue.JobQueue)
    const before = (yield* queue.stats(Task.queue)).pending
    if (before !== n) return yield* Effect.die(new Error(`expected ${n} pending, found ${before}`))
    const steady = yield* steadyRounds(queue, n, rounds, warmupOf(rounds))
    const after = (yield* queue.stats(Task.queue)).pending
    const memory = memoryNow()
    yield* close
    return { n, openMs: Math.round(openMs), pendingAfter: after, ...steady, memoryAtEnd: memory }
  })

const latencyPhase = ({ n, samples: rounds }: ChildArgs) =>
  Effect.gen(function*() {
    const { close, context } = yield* open(latencyLayer())
    const queue = Context.get(context, JobQueue.JobQueue)
    const faults = Context.get(context, FaultInjection.FaultInjection)
    const fill = yield* fillQueue(queue, 0, n, () => {})
    yield* Context.get(context, Kv.Kv).flush
    yield* faults.setFaults(s3Like)
    yield* faults.resetCounters
    const steady = yield* steadyRounds(queue, n, rounds, warmupOf(rounds), faults)
    const whole = countsOf(yield* faults.counters)
    const memory = memoryNow()
    yield* close
    return {
      n,
      fill: { jobsPerSec: fill.jobsPerSec, seconds: fill.seconds },
      ...steady,
      requestsPerRoundAll: perRound(whole, rounds + warmupOf(rounds)),
      memoryAtEnd: memory
    }
  })

// ---------------------------------------------------------------------------------------------
// Parent side: children, the RSS watchdog, the table

interface ChildOutcome {
  readonly ok: boolean
  readonly wallMs: number
  readonly result?: Record<string, any>
  readonly error?: string
  readonly killedAtRssMb?: number
  readonly parentSeenPeakRssMb: number
}

/** VmRSS of process `pid` in bytes (0 once it is gone). */
const rssOf = (pid: number) => {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return match ? Number(match[1]) * 1024 : 0
  } catch {
    return 0
  }
}

const childNodeFlags = () =>
  process.execArgv.some((a) => a.startsWith("--max-old-space-size"))
    ? process.execArgv
    : [...process.execArgv, `--max-old-space-size=${maxRssMb}`]

/** Runs one phase in a fresh Node process; kills it past `--max-rss-mb`. */
const runChild = (phase: string, n: number, dir: string, rounds: number): Promise<ChildOutcome> =>
  new Promise((resolve) => {
    const resultFile = path.join(os.tmpdir(), `bucketq-backlog-${process.pid}-${phase}-${n}-${performance.now().toFixed(0)}.json`)
    const start = performance.now()
    const child = spawn(process.execPath, [
      ...childNodeFlags(),
      process.argv[1]!,
      "--phase", phase, "--n", String(n), "--dir", dir, "--samples", String(rounds), "--batch", String(batch), "--result", resultFile,
      ...(heapSnapshot === "" ? [] : ["--heap-snapshot", path.resolve(heapSnapshot)])
    ], { stdio: ["ignore", "inherit", "inherit"] })
    let peak = 0
    let killedAt: number | undefined
    const watchdog = setInterval(() => {
      const rss = rssOf(child.pid!)
      if (rss > peak) peak = rss
      if (rss > maxRssMb * 2 ** 20 && killedAt === undefined) {
        killedAt = rss
        console.error(`  ${phase} ${n}: RSS ${mb(rss)} MiB over --max-rss-mb ${maxRssMb}: killed`)
        child.kill("SIGKILL")
      }
    }, 250)
    child.on("exit", (code, signal) => {
      clearInterval(watchdog)
      const wallMs = Math.round(performance.now() - start)
      const parentSeenPeakRssMb = mb(peak)
      let result: Record<string, any> | undefined
      try {
        result = JSON.parse(fs.readFileSync(resultFile, "utf8"))
        fs.rmSync(resultFile, { force: true })
      } catch {
        result = undefined
      }
      if (code === 0 && result !== undefined && result.error === undefined) {
        resolve({ ok: true, wallMs, result, parentSeenPeakRssMb })
      } else {
        resolve({
          ok: false,
          wallMs,
          error: killedAt !== undefined
            ? `killed at RSS ${mb(killedAt)} MiB (limit ${maxRssMb})`
            : (result?.error as string | undefined) ?? `exit code ${code}, signal ${signal}`,
          ...(killedAt === undefined ? {} : { killedAtRssMb: mb(killedAt) }),
          parentSeenPeakRssMb
        })
      }
    })
  })

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || Number.isNaN(x) ? "–" : x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

interface SizeResult {
  readonly n: number
  readonly fill?: ChildOutcome
  readonly reopen?: ChildOutcome
  readonly steady?: ChildOutcome
}

/** The markdown tables of a run. */
const tables = (empty: ChildOutcome | undefined, sizes: ReadonlyArray<SizeResult>, latency: ReadonlyArray<ChildOutcome>) => {
  const emptyP99 = empty?.result?.claimAckMs?.p99 as number | undefined
  const failed = (o: ChildOutcome | undefined) => (o === undefined ? "–" : o.ok ? undefined : `failed: ${o.error}`)
  const lines = [
    "| pending | fill jobs/s (last tenth) | fill peak RSS | reopen: open / first claim | reopen peak RSS | claim+ack p50 / p99 / max | p99 ÷ empty p99 | steady peak RSS |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|"
  ]
  if (empty !== undefined) {
    const s = empty.result
    lines.push(`| 0 (empty) | | | | | ${failed(empty) ?? `${fmt(s?.claimAckMs.p50, 2)} / ${fmt(s?.claimAckMs.p99, 2)} / ${fmt(s?.claimAckMs.max, 1)} ms`} | 1.00× | ${fmt(s?.peakRssMb)} MiB |`)
  }
  for (const { fill, n, reopen, steady } of sizes) {
    const f = fill?.result, r = reopen?.result, s = steady?.result
    const cells = [
      fmt(n),
      failed(fill) ?? `${fmt(f?.jobsPerSec)} (${fmt(f?.tenths?.at(-1)?.jobsPerSec)})`,
      failed(fill) === undefined ? `${fmt(f?.vmHwmMb)} MiB` : "–",
      failed(reopen) ?? `${fmt((r?.openMs ?? NaN) / 1000, 2)} / ${fmt((r?.firstClaimMs ?? NaN) / 1000, 2)} s`,
      failed(reopen) === undefined ? `${fmt(r?.vmHwmMb)} MiB` : "–",
      failed(steady) ?? `${fmt(s?.claimAckMs.p50, 2)} / ${fmt(s?.claimAckMs.p99, 2)} / ${fmt(s?.claimAckMs.max, 1)} ms`,
      failed(steady) === undefined && emptyP99 !== undefined ? `${fmt((s?.claimAckMs.p99 ?? NaN) / emptyP99, 2)}×` : "–",
      failed(steady) === undefined ? `${fmt(s?.vmHwmMb)} MiB` : "–"
    ]
    lines.push(`| ${cells.join(" | ")} |`)
  }
  if (latency.length > 0) {
    lines.push(
      "",
      "S3-like latency store (memory store + FaultInjection: PUT p50 30 / p99 150 ms, others 15 / 80 ms), filled in process:",
      "",
      "| pending | claim+ack p50 / p99 / max | claim p50 / ack p50 | requests per claim+ack | requests per enqueue | peak RSS |",
      "|---:|---:|---:|---|---|---:|"
    )
    for (const o of latency) {
      const s = o.result
      const kinds = (counts: Record<string, number> | undefined) =>
        counts === undefined ? "–" : Object.entries(counts).filter(([, v]) => v > 0).map(([k, v]) => `${k.toUpperCase()} ${v}`).join(", ") || "none"
      lines.push(o.ok
        ? `| ${fmt(s?.n)} | ${fmt(s?.claimAckMs.p50, 1)} / ${fmt(s?.claimAckMs.p99, 1)} / ${fmt(s?.claimAckMs.max, 1)} ms | ${fmt(s?.claimMs.p50, 1)} / ${fmt(s?.ackMs.p50, 1)} ms | ${kinds(s?.requestsPerClaimAck)} | ${kinds(s?.requestsPerEnqueue)} | ${fmt(s?.vmHwmMb)} MiB |`
        : `| ? | failed: ${o.error} | | | | |`)
    }
  }
  return lines.join("\n")
}

const gitCommit = () => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
}

const parent = async () => {
  const sizes = numbers(option("sizes", "100000,1000000"))
  const phases = new Set(option("phases", "fill,reopen,steady").split(","))
  const latency = flag("latency")
  const latencyMax = Number(option("latency-max", "100000"))
  const latencySamples = Number(option("latency-samples", "300"))
  const keep = flag("keep")
  const givenDir = option("dir", "")
  const root = givenDir === "" ? fs.mkdtempSync(path.join(os.tmpdir(), "bucketq-backlog-")) : path.resolve(givenDir)
  fs.mkdirSync(root, { recursive: true })
  const stamp = new Date()
  const day = stamp.toISOString().slice(0, 10)
  const out = path.resolve(option("out", path.join("bench/results/backlog", day, `backlog-${stamp.toISOString().slice(11, 19).replace(/:/g, "")}.json`)))
  const created: Array<string> = []
  const dirFor = (name: string) => {
    const dir = path.join(root, name)
    created.push(dir)
    return dir
  }
  const log = (text: string) => console.log(`[${((performance.now()) / 1000).toFixed(0)} s] ${text}`)
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    totalMemGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverageAtStart: os.loadavg().map((l) => round(l, 2)),
    node: process.version,
    nodeFlags: childNodeFlags(),
    commit: gitCommit()
  }
  log(`backlog bench: sizes ${sizes.join(", ")}, batch ${batch}, samples ${samples}, directories under ${root}`)

  let empty: ChildOutcome | undefined
  if (!flag("no-empty") && phases.has("steady")) {
    const dir = dirFor("empty")
    fs.rmSync(dir, { recursive: true, force: true })
    empty = await runChild("steady", 0, dir, samples)
    log(`empty: claim+ack ${JSON.stringify(empty.result?.claimAckMs ?? empty.error)}`)
  }
  const results: Array<SizeResult> = []
  for (const n of sizes) {
    const dir = dirFor(`pending-${n}`)
    const result: { n: number; fill?: ChildOutcome; reopen?: ChildOutcome; steady?: ChildOutcome } = { n }
    results.push(result)
    if (phases.has("fill")) {
      fs.rmSync(dir, { recursive: true, force: true })
      result.fill = await runChild("fill", n, dir, samples)
      const f = result.fill.result
      log(`${n} fill: ${result.fill.ok ? `${f?.jobsPerSec} jobs/s, peak RSS ${f?.vmHwmMb} MiB, close ${f?.closeMs} ms` : result.fill.error}`)
      if (!result.fill.ok) break // a larger size would fail the same way
    }
    if (phases.has("reopen")) {
      result.reopen = await runChild("reopen", n, dir, samples)
      const r = result.reopen.result
      log(`${n} reopen: ${result.reopen.ok ? `open ${r?.openMs} ms, first claim ${r?.firstClaimMs} ms, peak RSS ${r?.vmHwmMb} MiB` : result.reopen.error}`)
    }
    if (phases.has("steady")) {
      result.steady = await runChild("steady", n, dir, samples)
      const s = result.steady.result
      log(`${n} steady: ${result.steady.ok ? `claim+ack ${JSON.stringify(s?.claimAckMs)}, peak RSS ${s?.vmHwmMb} MiB` : result.steady.error}`)
    }
    if (!keep) fs.rmSync(dir, { recursive: true, force: true })
  }
  const latencyRuns: Array<ChildOutcome> = []
  if (latency) {
    const latencySizes = [...new Set([0, ...sizes.map((n) => Math.min(n, latencyMax))])]
    for (const n of latencySizes) {
      const outcome = await runChild("latency", n, "", latencySamples)
      latencyRuns.push(outcome)
      log(`${n} latency store: ${outcome.ok ? `claim+ack ${JSON.stringify(outcome.result?.claimAckMs)}, per claim+ack ${JSON.stringify(outcome.result?.requestsPerClaimAck)}` : outcome.error}`)
    }
  }
  if (!keep) {
    for (const dir of created) fs.rmSync(dir, { recursive: true, force: true })
    if (givenDir === "") fs.rmSync(root, { recursive: true, force: true })
  }
  const table = tables(empty, results, latencyRuns)
  console.log(`\n${table}\n`)
  const document = {
    date: stamp.toISOString(),
    argv: process.argv.slice(2),
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)) },
    options: { sizes, batch, samples, maxRssMb, latency, latencyMax, latencySamples, payloadBytes: 100 },
    empty,
    sizes: results,
    latency: latencyRuns
  }
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify(document, null, 2))
  fs.writeFileSync(out.replace(/\.json$/, "") + ".md", `${table}\n`)
  log(`wrote ${out} and its .md`)
}

// ---------------------------------------------------------------------------------------------
// Entry

const phase = option("phase", "")
if (phase === "") {
  await parent()
} else {
  const resultFile = option("result", "")
  const child: ChildArgs = { phase, n: Number(option("n", "0")), dir: option("dir", ""), samples }
  const exit = await Effect.runPromiseExit(runPhase(child))
  const document = Exit.isSuccess(exit) ? exit.value : { error: Cause.pretty(exit.cause) }
  fs.writeFileSync(resultFile, JSON.stringify(document))
  process.exit(Exit.isSuccess(exit) ? 0 : 1)
}
