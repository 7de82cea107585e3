// Model-based randomized schedules of the KV (puts, deletes, scans, transactions) against a plain
// sorted map, on a fault-injecting store with a crash at a random operation k: memtables frozen and
// written as runs, runs compacted and collected, all at random points under faults; in half the
// schedules (all of them on a real backend) the block cache holds next to nothing, so reads fetch
// blocks of runs from the store. Invariants (slatedb.md §8.1): no acknowledged write lost, recovery
// is exactly a prefix of the commit history, reads see own writes, and the store works on after
// recovery. One schedule per seed; on memory (TestClock) the same seed always replays the same
// schedule; on a real backend (live clock, real requests) the seed fixes the draws, not the timing.
//
// Written once, run per backend (`kvModelSuite`): memory (test/Kv.model.test.ts, 1,000 schedules),
// directory and S3 (test/backend.*.test.ts, a few dozen), each schedule on a new empty store
// (directory, S3 prefix) emptied or removed after it. The fault injector wraps the backend's raw
// store. The directory backend's local log is not an object store, so the injector does not see
// it: the directory runs twice, once with the WAL as objects (`useLocalLog: false`: every WAL put
// meets the faults and the crash) and once with the WAL in the log, which `cutAtCrash` cuts at the
// same crash as the store (nothing appended, synced, read or deleted after it), the crash falling
// on a store request or on a log append.
import { Context, Effect, Layer, Option, type Scope, Stream } from "effect"
import * as Manifest from "../../schema/Manifest.ts"
import { assert, describe, it } from "@effect/vitest"
import type * as FaultInjection from "../../src/FaultInjection.ts"
import type * as Kv from "../../src/Kv.ts"
import { makePrng } from "../../src/internal/prng.ts"
import * as ObjectStore from "../../src/ObjectStore.ts"
import { bytes, text } from "../utils/exits.ts"
import { cutAtCrash, type Driver, driveOrDieWith, faultyOver, liveTime, openKv, virtualTime } from "../utils/kv.ts"
import { type AnyStore, type Backend, memory, serviceOf } from "../utils/stores.ts"

type ModelOp = readonly [key: string, value: string | null]

/** A value in a model op that means "add one to the counter" (an update, resolved at commit). */
const increment = "\u0000+1"

/** The state after applying the commits of `history` with seq ≤ `upTo`, as sorted "k=v" lines. */
const modelAt = (history: ReadonlyMap<number, ReadonlyArray<ModelOp>>, upTo: number): Array<string> => {
  const state = new Map<string, string>()
  for (let seq = 1; seq <= upTo; seq++) {
    for (const [k, v] of history.get(seq) ?? []) {
      if (v === null) state.delete(k)
      else if (v === increment) state.set(k, String(Number(state.get(k) ?? "0") + 1))
      else state.set(k, v)
    }
  }
  return [...state.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`)
}

const dump = (kv: Kv.Service) =>
  Effect.map(kv.scan({ prefix: new Uint8Array(0) }), (entries) => entries.map((e) => `${text(e.key)}=${text(e.value)}`))

/** Where a schedule runs. */
export interface ModelBackend {
  readonly backend: Backend
  /** TestClock for memory; the live clock for a real store. */
  readonly driver: Driver
  /** Small memtables, runs and cache in every schedule (else in half of them). */
  readonly alwaysCold: boolean
  /** Options every schedule adds (the directory's `useLocalLog`). */
  readonly options?: Kv.Options | undefined
}

/** How a schedule's title names its variant: the directory's WAL in objects or in its local log. */
const variantOf = (on: ModelBackend) =>
  !on.backend.localLog ? "" : on.options?.useLocalLog === false ? " (WAL objects)" : " (WAL in the local log, cut at the crash)"

/** The memory backend as the CI's 1,000 schedules and the soak run it: TestClock, half the schedules cold. */
export const memoryModel: ModelBackend = { backend: memory, driver: virtualTime, alwaysCold: false }

/** What the store saw of a schedule (below the faults, recovery included). */
interface Seen {
  /** Reads of run objects: blocks read on demand, and compaction inputs. */
  runGets: number
  /** Manifests that landed with fewer sorted runs than the one before: compactions committed. */
  compactions: number
  /** Crashes that fell on an append to the local log (0 or 1). */
  logCrashes: number
}

/** Counts run reads and committed compactions of the requests that reach `store`. */
const watched = (store: ObjectStore.Service) => {
  const seen: Seen = { runGets: 0, compactions: 0, logCrashes: 0 }
  let sortedRuns: number | undefined
  const watchedStore: ObjectStore.Service = {
    ...store,
    get: (key, options) => Effect.suspend(() => {
      if (key.startsWith("runs/")) seen.runGets++
      return store.get(key, options)
    }),
    put: (key, data, condition, metadata) =>
      Effect.tap(store.put(key, data, condition, metadata), () =>
        Effect.sync(() => {
          if (!key.startsWith("manifest/")) return
          const runs = Manifest.decode(data).runs
          const sorted = new Set(runs.map((r) => r.group ?? r.id)).size
          if (sortedRuns !== undefined && sorted < sortedRuns) seen.compactions++
          sortedRuns = sorted
        }))
  }
  return { store: watchedStore, seen }
}

/** The stores of one schedule. */
interface ModelStores {
  /** What the writer under test opens: faults and the crash (and the local log, cut with it). */
  readonly store: AnyStore
  /** The same objects (and log) without faults: what recovery opens. */
  readonly reliable: AnyStore
  readonly control: FaultInjection.Service
  readonly seen: Seen
}

/**
 * A new, empty store of `backend` in the current scope, the fault injector over its raw store, and
 * its local log if it has one, cut at the crash (which may fall on the log's append number drawn
 * here). When the scope closes, a directory is removed and an S3 prefix emptied.
 */
const modelStores = (backend: Backend, seed: number, faults: FaultInjection.Faults) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(backend.layer({ retry: false }))
    const watch = watched(serviceOf(context))
    const { control, reliable, store } = yield* faultyOver(watch.store, { seed, faults, retry: { base: "1 millis", maxAttempts: 8 } })
    // a directory goes with the scope; an S3 prefix is emptied
    if (backend.name === "s3") yield* Effect.addFinalizer(() => emptied(reliable))
    const log = Context.getOption(context, ObjectStore.LocalLog)
    if (Option.isNone(log)) return { store, reliable, control, seen: watch.seen } satisfies ModelStores
    const prng = makePrng(`kv-model-log-${seed}`)
    const crash = { crashAtAppend: prng.int(0, 16), applyFirst: prng.next() < 0.5, onCrash: () => void watch.seen.logCrashes++ }
    return {
      store: Context.make(ObjectStore.ObjectStore, store).pipe(Context.add(ObjectStore.LocalLog, cutAtCrash(log.value, control, crash))),
      reliable: Context.make(ObjectStore.ObjectStore, reliable).pipe(Context.add(ObjectStore.LocalLog, log.value)),
      control,
      seen: watch.seen
    } satisfies ModelStores
  })

/** Deletes every object of `store` (a schedule's S3 prefix), a few at a time; failures are ignored. */
const emptied = (store: ObjectStore.Service) =>
  Stream.runCollect(store.list("")).pipe(
    Effect.flatMap((entries) => Effect.forEach(entries, (e) => Effect.ignore(store.delete(e.key)), { concurrency: 16, discard: true })),
    Effect.ignore
  )

export interface ScheduleReport {
  readonly seed: number
  readonly issued: number
  readonly acked: number
  readonly recoveredAt: number
  readonly crashed: boolean
  /** Run objects read (blocks on demand, compaction inputs), compactions committed, crashes on a log append. */
  readonly runGets: number
  readonly compactions: number
  readonly logCrashes: number
}

/**
 * One randomized schedule on `on` (memory, TestClock by default), on stores of its own that are
 * released when it ends; fails (as a defect) with a description when an invariant breaks.
 */
export const runSchedule = (seed: number, on: ModelBackend = memoryModel) =>
  Effect.scoped(schedule(seed, on))

const schedule = (seed: number, on: ModelBackend): Effect.Effect<ScheduleReport, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const { driver } = on
    const where = `seed ${seed} on ${on.backend.name}${variantOf(on)}`
    const drive = <A, E>(effect: Effect.Effect<A, E>, maxMillis: number) => driver.drive(effect, maxMillis, control.frozen)
    const driveOrDie = <A, E>(effect: Effect.Effect<A, E>, what: string) => driveOrDieWith(driver, effect, what)
    const prng = makePrng(`kv-model-${seed}`)
    const faults: FaultInjection.Faults = {
      put: { latency: { _tag: "Uniform", min: 0, max: 3 }, lostResponseRate: 0.05, errorRate: 0.03 },
      get: { latency: { _tag: "Uniform", min: 0, max: 1 }, errorRate: 0.02 },
      list: { errorRate: 0.02 },
      head: { errorRate: 0.02 }
    }
    const { control, reliable, seen: observed, store } = yield* modelStores(on.backend, seed, faults)
    const options: Kv.Options = {
      ...on.options,
      runFlushSegments: 1 + prng.int(0, 4),
      maxRuns: 1 + prng.int(0, 3),
      gcMinAge: 0,
      keepManifests: 1 + prng.int(0, 2),
      maxUnflushedBytes: prng.next() < 0.3 ? 200 : 64 * 1024 * 1024,
      maxWalPutsInFlight: 1 + prng.int(0, 5),
      // half the schedules (every one with `alwaysCold`) read cold: a cache of a few blocks at most (1 byte: none), small
      // memtables and runs split into objects of a few hundred bytes
      ...(prng.next() < 0.5 || on.alwaysCold ? { cacheBytes: 1 + prng.int(0, 16_000), memtableBytes: 64 + prng.int(0, 1_000), maxRunBytes: 128 + prng.int(0, 1_000) } : {})
    }
    const opened = yield* driveOrDie(openKv(store, options), `${where}: open`)
    const kv = opened.kv
    const history = new Map<number, ReadonlyArray<ModelOp>>()
    let issued = 0
    let acked = 0
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`)
    const workers = 1 + prng.int(0, 3)
    const steps = 4 + prng.int(0, 12)
    // crash at a store operation somewhere in the workload or in the background work after it
    const crashAt = (yield* control.operations) + prng.int(0, 3 * workers * steps + 10)
    yield* control.freezeAt(crashAt, { applyFirst: prng.next() < 0.5 })

    const step = (worker: number, i: number) =>
      Effect.gen(function*() {
        const roll = prng.next()
        if (roll < 0.25) {
          const target = issued
          yield* kv.flush
          acked = Math.max(acked, target)
          return
        }
        if (roll < 0.35 && workers === 1) {
          // read-your-writes: with one worker the live state is the whole history
          const seen = yield* dump(kv)
          const expected = modelAt(history, issued)
          if (seen.join() !== expected.join()) {
            return yield* Effect.die(new Error(`${where}: read ${seen} but the model has ${expected}`))
          }
          return
        }
        if (roll < 0.55) {
          // a transaction: read a key and a range in its snapshot, write from what it read
          const from = keys[prng.int(0, keys.length)]!
          const to = keys[prng.int(0, keys.length)]!
          const isolation = prng.next() < 0.5 ? "serializable" as const : "snapshot" as const
          const result = yield* kv.transactionWithSeq((tx) =>
            Effect.gen(function*() {
              const read = yield* tx.get(bytes(from))
              const scanned = yield* tx.scan({ start: bytes("k0"), end: bytes("k4") }, { limit: 3 })
              yield* Effect.yieldNow // let other workers commit in between
              const ops: Array<ModelOp> = read._tag === "Some"
                ? [[to, `${text(read.value)}+${scanned.length}`]]
                : [[to, null], [from, `t${worker}.${i}`]]
              for (const [k, v] of ops) {
                if (v === null) yield* tx.delete(bytes(k))
                else yield* tx.put(bytes(k), bytes(v))
              }
              if (prng.next() < 0.5) {
                // a counter updated at commit: never a conflict, each increment applied once
                yield* tx.update(bytes("counter"), (current) =>
                  bytes(String(Number(current._tag === "Some" ? text(current.value) : "0") + 1)))
                ops.push(["counter", increment])
              }
              return ops
            }), { durable: false, isolation, maxRetries: 50 })
          if (result.seq !== undefined) {
            history.set(result.seq, result.value)
            issued = Math.max(issued, result.seq)
          }
          return
        }
        const ops: Array<ModelOp> = Array.from({ length: 1 + prng.int(0, 3) }, (_, j) => {
          const key = keys[prng.int(0, keys.length)]!
          return [key, prng.next() < 0.25 ? null : `w${worker}.${i}.${j}`] as const
        })
        const batch: Array<Kv.WriteOp> = ops.map(([k, v]) =>
          v === null ? { _tag: "Delete", key: bytes(k) } : { _tag: "Put", key: bytes(k), value: bytes(v) }
        )
        if (prng.next() < 0.3) {
          // a conditional write: committed only while the first key is (or is not) there
          const present = prng.next() < 0.5
          const result = yield* kv.writeIf(batch, [{ key: bytes(ops[0]![0]), present }], { durable: false }).pipe(
            Effect.catchTag("WriteConditionFailed", () => Effect.succeed(undefined))
          )
          if (result === undefined) return
          history.set(result.seq, ops)
          issued = Math.max(issued, result.seq)
          return
        }
        const { seq } = yield* kv.write(batch, { durable: false })
        history.set(seq, ops)
        issued = Math.max(issued, seq)
      })
    const workload = Effect.forEach(
      Array.from({ length: workers }, (_, w) => w),
      (w) => Effect.forEach(Array.from({ length: steps }, (_, i) => i), (i) => step(w, i), { discard: true }),
      { concurrency: "unbounded", discard: true }
    )
    const done = yield* drive(workload, 3_000)
    if (done !== undefined && done._tag === "Failure") {
      return yield* Effect.die(new Error(`${where}: the workload failed: ${String(done.cause)}`))
    }
    // background work (runs, manifests, GC) goes on until the crash point
    yield* drive(Effect.sleep("200 millis"), 300)
    const crashed = yield* control.frozen
    // the crash: the store stops and the old writer is abandoned with its scope never closed
    yield* control.freeze

    const reopened = yield* driveOrDie(openKv(reliable, options), `${where}: reopen`)
    const recovered = yield* dump(reopened.kv)
    let recoveredAt = -1
    for (let s = acked; s <= issued; s++) {
      if (modelAt(history, s).join() === recovered.join()) {
        recoveredAt = s
        break
      }
    }
    if (recoveredAt < 0) {
      return yield* Effect.die(
        new Error(`${where}: recovered ${recovered} is no prefix of the history in [${acked}, ${issued}]`)
      )
    }
    // it works on: more writes, a clean close, and a third open that sees them all
    const more = Array.from({ length: 3 }, (_, i) => ({ _tag: "Put" as const, key: bytes(`after${i}`), value: bytes(`${seed}`) }))
    yield* driveOrDie(reopened.kv.write(more), `${where}: write after reopen`)
    yield* driveOrDie(reopened.close, `${where}: close`)
    const third = yield* driveOrDie(openKv(reliable, options), `${where}: third open`)
    const final = yield* dump(third.kv)
    const expected = [...recovered, ...more.map((m) => `${text(m.key)}=${seed}`)].sort()
    if (final.join() !== expected.join()) {
      return yield* Effect.die(new Error(`${where}: after reopen ${final}, expected ${expected}`))
    }
    yield* driveOrDie(third.close, `${where}: close third`)
    // epochs never decrease with the manifest id
    const manifests = yield* Stream.runCollect(serviceOf(reliable).list("manifest/"))
    let epoch = 0
    for (const entry of manifests) {
      const m = Manifest.decode((yield* serviceOf(reliable).get(entry.key)).bytes)
      if (m.writerEpoch < epoch) return yield* Effect.die(new Error(`${where}: ${entry.key} has epoch ${m.writerEpoch} < ${epoch}`))
      epoch = m.writerEpoch
    }
    return { seed, issued, acked, recoveredAt, crashed, ...observed } satisfies ScheduleReport
  })

/** How many schedules a backend's model suite runs, from which seed. */
export interface ModelSuiteOptions {
  readonly schedules: number
  readonly base?: number | undefined
}

/**
 * Runs `count` schedules from seed `base` on `on`; the counts the suite asserts on: schedules that
 * crashed before the end of their work, that lost unacknowledged commits, run reads, compactions.
 */
export const runSchedules = (on: ModelBackend, base: number, count: number) =>
  Effect.gen(function*() {
    let crashed = 0
    let lostUnacked = 0
    let runGets = 0
    let compactions = 0
    let logCrashes = 0
    for (let seed = base; seed < base + count; seed++) {
      const report = yield* runSchedule(seed, on)
      if (report.crashed) crashed++
      if (report.recoveredAt < report.issued) lostUnacked++
      runGets += report.runGets
      compactions += report.compactions
      logCrashes += report.logCrashes
    }
    return { crashed, lostUnacked, runGets, compactions, logCrashes }
  })

/**
 * The model on `backend`: memory on TestClock, half the schedules cold (test/Kv.model.test.ts);
 * a real backend on the live clock, every schedule cold; the directory once with WAL objects and
 * once with its local log.
 */
export const kvModelSuite = (backend: Backend, options: ModelSuiteOptions) => {
  const base = options.base ?? 0
  const count = options.schedules
  const variants: ReadonlyArray<ModelBackend> = backend.name === "memory"
    ? [memoryModel]
    : backend.localLog
    ? [
      { backend, driver: liveTime, alwaysCold: true, options: { useLocalLog: false } },
      { backend, driver: liveTime, alwaysCold: true }
    ]
    : [{ backend, driver: liveTime, alwaysCold: true }]
  describe(`Kv model with crashes on ${backend.name}`, () => {
    for (const on of variants) {
      const title = variantOf(on)
      const test = backend.name === "memory" ? it.effect : it.live
      test(`${count} schedules from seed ${base}${title}: every acknowledged write survives, recovery is a prefix`, () =>
        Effect.gen(function*() {
          const started = performance.now()
          const { compactions, crashed, logCrashes, lostUnacked, runGets } = yield* runSchedules(on, base, count)
          const seconds = ((performance.now() - started) / 1000).toFixed(1)
          console.log(
            `${backend.name}${title}: ${count} schedules in ${seconds} s: ${crashed} crashed before the end of their work, ` +
              `${lostUnacked} lost unacknowledged commits, ${runGets} run reads, ${compactions} compactions` +
              (on.backend.localLog && on.options?.useLocalLog !== false ? `, ${logCrashes} crashes on a log append` : "")
          )
          // the schedules must actually crash mid-workload, read runs from the store and compact
          assert.isAbove(crashed, count / 5, `crashed ${crashed}`)
          assert.isAbove(runGets, 0, "runs were read from the store")
          assert.isAbove(compactions, 0, "runs were compacted")
          if (backend.name === "memory") assert.isAbove(lostUnacked, 0)
        }), { timeout: 600_000 })
    }
  })
}
