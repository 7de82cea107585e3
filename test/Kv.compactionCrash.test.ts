// A crash at every store operation of a maintenance pass that compacts. Three flushes leave three
// sorted runs; the fourth (maxRuns 3) makes the maintainer write the frozen memtable as a run and
// its manifest, merge all four runs into one sorted run of several objects and commit it with the
// next manifest, then collect what no manifest needs. A clean pass is recorded first (its store
// operations, in order, and its three manifests); then for every operation k of it, with the
// request at k hanging unapplied and with it applied but unanswered, the writer dies there (its
// store stops, its scope never closes) and the store is reopened. Contract:
// (a) the recovered state is exactly the reference map (every write was acknowledged), by gets
//     and by a full scan;
// (b) the manifest the crash left in force names exactly the runs of one of the pass's manifests:
//     before it, after the flush, or after the compaction (never some of the compaction's inputs
//     beside its output, never a part of a sorted run);
// (c) every run it names is there and decodes (no NotFound);
// (d) the store works on: a write, then flushes whose runs are compacted, a clean close and a
//     reopen that reads it all; the runs the crash left unnamed are collected by then.
// The same again with every manifest put's response lost (applied, then `Unavailable`): the
// retry policy settles its outcome by its write token.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Manifest from "../schema/Manifest.ts"
import * as Run from "../schema/Run.ts"
import type * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { bytes, text } from "./utils/exits.ts"
import { drive, driveOrDie, faultyOver, openKv } from "./utils/kv.ts"

/** Every flush a run at once, everything merged past three sorted runs, every block read from the store. */
const options: Kv.Options = {
  runFlushSegments: 1,
  maxRuns: 3,
  maxRunBytes: 256,
  cacheBytes: 1,
  gcMinAge: 0,
  keepManifests: 1,
  fenceCheckInterval: false
}

const keys = Array.from({ length: 16 }, (_, i) => `k${String(i).padStart(2, "0")}`)

/** Batch `round`: puts over a stretch of the keys, deletes of a few older ones (tombstones the bottom merge drops). */
const batchOf = (round: number): Array<readonly [string, string | null]> =>
  keys.flatMap((key, i): Array<readonly [string, string | null]> => {
    if ((i + round) % 4 === 0) return [[key, `round ${round} of ${key}: ${"v".repeat(24)}`]]
    if (round > 1 && (i + round) % 7 === 0) return [[key, null]]
    return []
  })

const opsOf = (batch: ReadonlyArray<readonly [string, string | null]>): Array<Kv.WriteOp> =>
  batch.map(([k, v]) => v === null ? { _tag: "Delete", key: bytes(k) } : { _tag: "Put", key: bytes(k), value: bytes(v) })

const apply = (reference: Map<string, string>, batch: ReadonlyArray<readonly [string, string | null]>) => {
  for (const [k, v] of batch) {
    if (v === null) reference.delete(k)
    else reference.set(k, v)
  }
}

/** The store's requests as they are applied, `op key` (below the fault injector: what reached the objects). */
const recording = (store: ObjectStore.Service) => {
  const log: Array<string> = []
  // what each put wrote: the pass's first manifest is collected before the pass ends
  const written = new Map<string, Uint8Array>()
  const note = <A, E>(entry: string, effect: Effect.Effect<A, E>) => Effect.andThen(Effect.sync(() => log.push(entry)), effect)
  const recorded: ObjectStore.Service = {
    get: (key, o) => note(`get ${key}`, store.get(key, o)),
    head: (key) => note(`head ${key}`, store.head(key)),
    put: (key, b, condition, metadata) =>
      note(`put ${key}`, Effect.tap(store.put(key, b, condition, metadata), () => Effect.sync(() => written.set(key, b)))),
    delete: (key) => note(`delete ${key}`, store.delete(key)),
    list: (prefix, o) => Stream.unwrap(note(`list ${prefix}`, Effect.succeed(store.list(prefix, o))))
  }
  return { store: recorded, log, written }
}

/** The latest manifest in `store`. */
const latestManifest = (store: ObjectStore.Service) =>
  Effect.gen(function*() {
    const latest = (yield* Stream.runCollect(store.list("manifest/"))).map((e) => e.key).at(-1)
    assert.isDefined(latest, "a manifest is in force")
    return Manifest.decode((yield* store.get(latest!)).bytes)
  })

const runIds = (manifest: Manifest.Manifest) => manifest.runs.map((r) => r.id).join(" ")

/** Sorted runs of a manifest: objects sharing a group count once. */
const sortedRuns = (manifest: Manifest.Manifest) => new Set(manifest.runs.map((r) => r.group ?? r.id)).size

/** (c): every run the manifest names is in the store, of the size it says, and decodes. */
const checkRunsRead = (store: ObjectStore.Service, manifest: Manifest.Manifest, what: string) =>
  Effect.forEach(manifest.runs, (ref) =>
    Effect.gen(function*() {
      const object = yield* store.get(`runs/${ref.id}`).pipe(
        Effect.catch((error) => Effect.die(new Error(`${what}: runs/${ref.id} does not read: ${String(error)}`)))
      )
      assert.strictEqual(object.bytes.length, ref.bytes, `${what}: size of runs/${ref.id}`)
      assert.strictEqual(Run.decode(object.bytes).length, ref.entries, `${what}: entries of runs/${ref.id}`)
    }), { discard: true })

/** (a): every key by `get`, and a full scan, against the reference. */
const checkState = (kv: Kv.Service, reference: ReadonlyMap<string, string>, what: string) =>
  Effect.gen(function*() {
    for (const key of [...keys, "after/0", "after/1", "after/2", "after/3"]) {
      const got = yield* driveOrDie(kv.get(bytes(key)), `${what}: get ${key}`)
      assert.deepStrictEqual(Option.getOrUndefined(Option.map(got, text)), reference.get(key), `${what}: get ${key}`)
    }
    const scanned = yield* driveOrDie(kv.scan({ prefix: new Uint8Array(0) }), `${what}: scan`)
    const expected = [...reference].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`)
    assert.deepStrictEqual(scanned.map((e) => `${text(e.key)}=${text(e.value)}`), expected, `${what}: scan`)
  })

/** How far a run of the scenario went, and what it left. */
interface Outcome {
  /** The store without faults, and the raw one (no retries). */
  readonly reliable: ObjectStore.Service
  readonly raw: ObjectStore.Service
  /** Every write: all of them acknowledged. */
  readonly reference: ReadonlyMap<string, string>
  /** Store requests below the faults, in the order they were applied (`op key`). */
  readonly log: ReadonlyArray<string>
  /** What each put that landed wrote. */
  readonly written: ReadonlyMap<string, Uint8Array>
  /** The pass: operations [start, end), the first one right after the fourth write was acknowledged. */
  readonly start: number
  readonly end: number
  /** The manifest in force before the pass. */
  readonly before: Manifest.Manifest
}

const rawMemory = Effect.provide(Effect.map(ObjectStore.ObjectStore, (s) => s), ObjectStore.layerMemory({ retry: false }))

/**
 * Builds the three runs, then writes the fourth batch and lets the maintenance pass run, crashed
 * at operation `crash.at` if given: the writer's store stops there and the writer is abandoned.
 */
const scenario = (crash: { readonly at: number; readonly applyFirst: boolean } | undefined, lostManifestResponses: boolean) =>
  Effect.gen(function*() {
    const raw = yield* rawMemory
    const rec = recording(raw)
    const { control, reliable, store } = yield* faultyOver(rec.store, { seed: 17, retry: { base: "1 millis" } })
    const reference = new Map<string, string>()
    const a = yield* driveOrDie(openKv(store, options), "open")
    for (let round = 1; round <= 3; round++) {
      const batch = batchOf(round)
      yield* driveOrDie(a.kv.write(opsOf(batch)), `write ${round}`)
      apply(reference, batch)
      yield* drive(Effect.sleep("50 millis"), 100)
    }
    const before = yield* latestManifest(raw)
    assert.strictEqual(sortedRuns(before), 3, "three sorted runs before the pass")
    if (lostManifestResponses) yield* control.setFaults({ put: { keyPrefix: "manifest/", lostResponseRate: 1 } })
    const start = (yield* control.operations) + 1 // the fourth batch's WAL put comes first
    if (crash !== undefined) {
      assert.isAtLeast(crash.at, start)
      yield* control.freezeAt(crash.at, { applyFirst: crash.applyFirst })
    }
    const batch = batchOf(4)
    yield* driveOrDie(a.kv.write(opsOf(batch)), "write 4")
    apply(reference, batch)
    yield* drive(Effect.sleep("200 millis"), 300)
    const end = yield* control.operations
    if (crash !== undefined) assert.isTrue(yield* control.frozen, `the pass reached operation ${crash.at}`)
    // the crash (or, clean, the end of the pass): the store stops, the writer is abandoned
    yield* control.freeze
    return { reliable, raw, reference, log: rec.log, written: rec.written, start, end, before } satisfies Outcome
  }).pipe(Random.withSeed(17), Effect.provide(TestClock.layer())) // each run at the same time, with the same draws: the same run ids

/** The clean pass: its operations and the manifests it commits (after the flush, after the compaction). */
const cleanPass = (lostManifestResponses: boolean) =>
  Effect.gen(function*() {
    const outcome = yield* scenario(undefined, lostManifestResponses)
    const pass = outcome.log.slice(outcome.start - 1)
    assert.match(pass[0]!, /^put wal\//, "the pass starts after the fourth batch's WAL put")
    const manifestPuts = pass.filter((op) => op.startsWith("put manifest/"))
    const distinct = [...new Set(manifestPuts)]
    assert.strictEqual(distinct.length, 2, `a flush and a compaction: ${pass.join(", ")}`)
    const [flushed, compacted] = distinct.map((op) => Manifest.decode(outcome.written.get(op.slice(4))!)) as [Manifest.Manifest, Manifest.Manifest]
    assert.strictEqual(sortedRuns(flushed), 4, "the flush adds a fourth sorted run")
    assert.strictEqual(sortedRuns(compacted), 1, "the compaction merges the four into one")
    assert.isAbove(compacted.runs.length, 1, "written as several objects (a group)")
    assert.isTrue(pass.some((op) => op.startsWith("delete runs/")), "the merged-away runs are collected in the pass")
    return { ...outcome, manifests: [outcome.before, flushed, compacted] }
  })

const describeOp = (log: ReadonlyArray<string>, k: number) => log[k] ?? `operation ${k}`

const crashAtEveryStep = (lostManifestResponses: boolean) =>
  Effect.gen(function*() {
    const clean = yield* cleanPass(lostManifestResponses)
    const allowed = clean.manifests.map(runIds)
    const count = clean.end - clean.start
    assert.isAbove(count, 8, "the pass makes a few requests")
    let crashes = 0
    const seen = new Set<number>()
    for (let k = clean.start; k < clean.end; k++) {
      for (const applyFirst of [false, true]) {
        const what = `crash at ${k} (${describeOp(clean.log, k)}${applyFirst ? ", applied" : ""})`
        const crashed = yield* scenario({ at: k, applyFirst }, lostManifestResponses)
        // the same schedule up to the crash: the same requests
        assert.deepStrictEqual(crashed.log.slice(0, k), clean.log.slice(0, k), `${what}: replays the clean pass`)
        // (b) one of the pass's manifests, whole; (c) its runs all read
        const inForce = yield* latestManifest(crashed.raw)
        const which = allowed.indexOf(runIds(inForce))
        assert.isAtLeast(which, 0, `${what}: the manifest in force names ${runIds(inForce)}, not the runs of one of ${allowed.join(" | ")}`)
        seen.add(which)
        yield* checkRunsRead(crashed.raw, inForce, what)
        // (a) reopened from the reliable store: exactly the reference
        const reopened = yield* driveOrDie(openKv(crashed.reliable, options), `${what}: reopen`)
        yield* checkState(reopened.kv, crashed.reference, `${what}, recovered`)
        // (d) it works on: a write, then runs compacted again
        const reference = new Map(crashed.reference)
        for (let i = 0; i < 4; i++) {
          const batch = [[`after/${i}`, `${k}.${i}`] as const, ...batchOf(5 + i)]
          yield* driveOrDie(reopened.kv.write(opsOf(batch)), `${what}: write ${i} after reopen`)
          apply(reference, batch)
          yield* drive(Effect.sleep("50 millis"), 100)
        }
        const after = yield* latestManifest(crashed.raw)
        assert.isAtMost(sortedRuns(after), options.maxRuns!, `${what}: runs are compacted after recovery`)
        yield* checkRunsRead(crashed.raw, after, `${what}, after reopen`)
        yield* checkState(reopened.kv, reference, `${what}, after reopen`)
        yield* driveOrDie(reopened.close, `${what}: close`)
        // what the crash left unnamed (a compaction's output without its manifest) is collected
        const stored = (yield* Stream.runCollect(crashed.raw.list("runs/"))).map((e) => e.key.slice("runs/".length))
        assert.deepStrictEqual(stored.sort(), after.runs.map((r) => r.id).sort(), `${what}: the runs stored are the ones named`)
        const third = yield* driveOrDie(openKv(crashed.reliable, options), `${what}: third open`)
        yield* checkState(third.kv, reference, `${what}, third open`)
        yield* driveOrDie(third.close, `${what}: close third`)
        crashes++
      }
    }
    // every state of the pass was left by some crash
    assert.deepStrictEqual([...seen].sort(), [0, 1, 2], "crashes left the manifest before the pass, after its flush, after its compaction")
    return { count, crashes }
  })

describe("Kv: a crash at every step of a compaction", () => {
  it.effect("at every request of a pass that flushes, compacts and collects: the state is whole, the manifest names one side, its runs read", () =>
    Effect.gen(function*() {
      const { count, crashes } = yield* crashAtEveryStep(false)
      console.log(`compaction pass of ${count} requests: ${crashes} crashes`)
    }), 120_000)

  it.effect("the same with every manifest put's response lost: its outcome is settled, and a crash anywhere in that leaves one side", () =>
    Effect.gen(function*() {
      const { count, crashes } = yield* crashAtEveryStep(true)
      console.log(`compaction pass with lost manifest responses, ${count} requests: ${crashes} crashes`)
    }), 120_000)
})
