// Model-based randomized schedules of the KV (puts, deletes, scans, transactions) against a plain
// sorted map, on a fault-injecting store with a crash at a random operation k: memtables frozen and
// written as runs, runs compacted and collected, all at random points under faults; in half the
// schedules the block cache holds next to nothing, so reads fetch blocks of runs from the store. Invariants (slatedb.md §8.1): no acknowledged write
// lost, recovery is exactly a prefix of the commit history, reads see own writes, and the store
// works on after recovery. One schedule per seed; the same seed always replays the same schedule.
import { Effect, Stream } from "effect"
import * as Manifest from "../../schema/Manifest.ts"
import type * as FaultInjection from "../../src/FaultInjection.ts"
import type * as Kv from "../../src/Kv.ts"
import { makePrng } from "../../src/internal/prng.ts"
import { bytes, text } from "../utils/exits.ts"
import { drive, driveOrDie, faultyMemory, openKv } from "../utils/kv.ts"

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

export interface ScheduleReport {
  readonly seed: number
  readonly issued: number
  readonly acked: number
  readonly recoveredAt: number
  readonly crashed: boolean
}

/** One randomized schedule; fails (as a defect) with a description when an invariant breaks. */
export const runSchedule = (seed: number) =>
  Effect.gen(function*() {
    const prng = makePrng(`kv-model-${seed}`)
    const faults: FaultInjection.Faults = {
      put: { latency: { _tag: "Uniform", min: 0, max: 3 }, lostResponseRate: 0.05, errorRate: 0.03 },
      get: { latency: { _tag: "Uniform", min: 0, max: 1 }, errorRate: 0.02 },
      list: { errorRate: 0.02 },
      head: { errorRate: 0.02 }
    }
    const { control, reliable, store } = yield* faultyMemory({ seed, faults, retry: { base: "1 millis", maxAttempts: 8 } })
    const options: Kv.Options = {
      runFlushSegments: 1 + prng.int(0, 4),
      maxRuns: 1 + prng.int(0, 3),
      gcMinAge: 0,
      keepManifests: 1 + prng.int(0, 2),
      maxUnflushedBytes: prng.next() < 0.3 ? 200 : 64 * 1024 * 1024,
      maxWalPutsInFlight: 1 + prng.int(0, 5),
      // half the schedules read cold: a cache of a few blocks at most (1 byte: none), small
      // memtables and runs split into objects of a few hundred bytes
      ...(prng.next() < 0.5 ? { cacheBytes: 1 + prng.int(0, 16_000), memtableBytes: 64 + prng.int(0, 1_000), maxRunBytes: 128 + prng.int(0, 1_000) } : {})
    }
    const opened = yield* driveOrDie(openKv(store, options), `seed ${seed}: open`)
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
            return yield* Effect.die(new Error(`seed ${seed}: read ${seen} but the model has ${expected}`))
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
      return yield* Effect.die(new Error(`seed ${seed}: the workload failed: ${String(done.cause)}`))
    }
    // background work (runs, manifests, GC) goes on until the crash point
    yield* drive(Effect.sleep("200 millis"), 300)
    const crashed = yield* control.frozen
    // the crash: the store stops and the old writer is abandoned with its scope never closed
    yield* control.freeze

    const reopened = yield* driveOrDie(openKv(reliable, options), `seed ${seed}: reopen`)
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
        new Error(`seed ${seed}: recovered ${recovered} is no prefix of the history in [${acked}, ${issued}]`)
      )
    }
    // it works on: more writes, a clean close, and a third open that sees them all
    const more = Array.from({ length: 3 }, (_, i) => ({ _tag: "Put" as const, key: bytes(`after${i}`), value: bytes(`${seed}`) }))
    yield* driveOrDie(reopened.kv.write(more), `seed ${seed}: write after reopen`)
    yield* driveOrDie(reopened.close, `seed ${seed}: close`)
    const third = yield* driveOrDie(openKv(reliable, options), `seed ${seed}: third open`)
    const final = yield* dump(third.kv)
    const expected = [...recovered, ...more.map((m) => `${text(m.key)}=${seed}`)].sort()
    if (final.join() !== expected.join()) {
      return yield* Effect.die(new Error(`seed ${seed}: after reopen ${final}, expected ${expected}`))
    }
    yield* driveOrDie(third.close, `seed ${seed}: close third`)
    // epochs never decrease with the manifest id
    const manifests = yield* Stream.runCollect(reliable.list("manifest/"))
    let epoch = 0
    for (const entry of manifests) {
      const m = Manifest.decode((yield* reliable.get(entry.key)).bytes)
      if (m.writerEpoch < epoch) return yield* Effect.die(new Error(`seed ${seed}: ${entry.key} has epoch ${m.writerEpoch} < ${epoch}`))
      epoch = m.writerEpoch
    }
    return { seed, issued, acked, recoveredAt, crashed } satisfies ScheduleReport
  })
