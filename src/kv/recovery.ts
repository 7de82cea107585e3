/**
 * Opening a writer: raise the epoch with a new manifest, fence the WAL, open the runs (their
 * footers and block indexes only: their blocks are read on demand), replay the WAL tail into the
 * memtable (slatedb.md §8.1, "Open (writer)"). The steps that only read (opening runs, decoding
 * WAL objects and log parts, checking and ordering the replay, applying it) are exported for the
 * read-only load (`snapshot.ts`), which replays exactly as a writer would.
 *
 * @internal
 */
import { Clock, Effect, Option, Schedule, Stream } from "effect"
import * as Manifest from "../../schema/Manifest.ts"
import * as WalSegment from "../../schema/WalSegment.ts"
import { DecodeError } from "../internal/binary.ts"
import { Corrupt, Fenced } from "../KvError.ts"
import type { Service as Store } from "../ObjectStore.ts"
import {
  epochPath,
  type LogCorrupt,
  type Part as LocalLogPart,
  partPath,
  type Service as LocalLog
} from "../ObjectStore/LocalLog.ts"
import { isPreconditionFailed, type ObjectStoreError } from "../ObjectStoreError.ts"
import { idOf, manifestKey, manifestPrefix, runKey, walKey, walPrefix } from "./paths.ts"
import * as BlockCache from "./blockCache.ts"
import type { Memtable } from "./merge.ts"
import * as RunReader from "./runReader.ts"
import { applyOp, newTree, opBytes } from "./state.ts"

/** Decodes with `decode`, turning a `DecodeError` into `Corrupt` for `key`. */
export const decodeOrCorrupt = <A>(key: string, bytes: Uint8Array, decode: (bytes: Uint8Array) => A) =>
  Effect.try({
    try: () => decode(bytes),
    catch: (error) => new Corrupt({ key, detail: error instanceof DecodeError ? error.message : String(error) })
  })

/** The highest id under `prefix` (`manifest/` or `wal/`), if any. */
export const latestId = (store: Store, prefix: string) =>
  Stream.runFold(
    store.list(prefix),
    () => Option.none<number>(),
    (latest, entry) => {
      const id = idOf(entry.key, prefix)
      return id === undefined ? latest : Option.some(id)
    }
  )

/** The latest manifest and its id, if the store has one. */
export const readLatestManifest = (store: Store) =>
  Effect.gen(function*() {
    const id = yield* latestId(store, manifestPrefix)
    if (Option.isNone(id)) return Option.none()
    const key = manifestKey(id.value)
    const object = yield* store.get(key)
    const manifest = yield* decodeOrCorrupt(key, object.bytes, Manifest.decode)
    return Option.some({ id: id.value, manifest })
  })

/** What recovery hands to the writer. */
export interface Recovered {
  readonly manifestId: number
  readonly manifest: Manifest.Manifest
  readonly epoch: number
  /** The runs of the manifest, newest first, opened for reading on demand. */
  readonly runs: ReadonlyArray<RunReader.RunReader>
  /** What the replayed WAL changed, not yet in any run, and the bytes of its ops. */
  readonly mem: Memtable
  readonly memBytes: number
  readonly lastSeq: number
  /** The WAL id of the fence this writer wrote; its own batches start after it. */
  readonly fenceId: number
  readonly replayedSegments: number
  /** The parts of older writers' local logs, with the last sequence number in each. */
  readonly logParts: ReadonlyArray<LogPart>
}

/** A part of a writer's local log (see `ObjectStore.LocalLog`). */
export interface LogPart {
  readonly epoch: number
  readonly part: number
  maxSeq: number
}

/**
 * The segments of the local logs of `epochs`, each epoch's parts read with `read` (a takeover, or
 * a read-only look), with the last sequence number in each part.
 */
export const logSegments = (
  epochs: ReadonlyArray<number>,
  read: (epoch: number) => Effect.Effect<ReadonlyArray<LocalLogPart>, ObjectStoreError | LogCorrupt>
) =>
  Effect.gen(function*() {
    const segments: Array<WalSegment.Segment> = []
    const parts: Array<LogPart> = []
    for (const epoch of epochs) {
      const taken = yield* read(epoch).pipe(
        Effect.catchIf(
          (error) => error._tag === "LogCorrupt",
          (error) => Effect.fail(new Corrupt({ key: error.file, detail: `at byte ${error.offset}: ${error.detail}` }))
        )
      )
      for (const { part, records } of taken) {
        const logPart: LogPart = { epoch, part, maxSeq: 0 }
        for (const record of records) {
          const segment = yield* decodeOrCorrupt(partPath(epoch, part), record, WalSegment.decode)
          segments.push(segment)
          logPart.maxSeq = Math.max(logPart.maxSeq, segment.commits[segment.commits.length - 1]?.seq ?? 0)
        }
        parts.push(logPart)
      }
    }
    return { segments, parts }
  })

/**
 * Takes over the local logs of every older writer: fences each, reads it up to its seal (sealing
 * it where it ends now if no one did), and decodes its segments. Newer writers' logs are left
 * alone: that writer has fenced us, which the first manifest or WAL write will find.
 */
const takeOverLogs = (log: LocalLog, epoch: number) =>
  Effect.flatMap(log.epochs, (epochs) => logSegments(epochs.filter((e) => e < epoch), log.takeOver))

/**
 * Raises the epoch: creates manifest latest + 1 (or 1) with `writerEpoch + 1`. Another opener
 * winning the same id makes it start over from the new latest, up to `attempts` times.
 */
const raiseEpoch = (store: Store, attempts: number) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const latest = yield* readLatestManifest(store)
    const base: Manifest.Manifest = Option.isSome(latest)
      ? latest.value.manifest
      : { writerEpoch: 0, replayAfterWalId: 0, lastSeq: 0, runs: [], createdAt: now }
    const id = Option.isSome(latest) ? latest.value.id + 1 : 1
    const manifest: Manifest.Manifest = { ...base, writerEpoch: base.writerEpoch + 1, createdAt: now }
    yield* store.put(manifestKey(id), Manifest.encode(manifest), { ifNoneMatch: "*" })
    return { id, manifest }
  }).pipe(
    Effect.retry({
      while: isPreconditionFailed,
      schedule: Schedule.exponential("10 millis").pipe(Schedule.jittered, Schedule.upTo({ times: attempts - 1 }))
    }),
    Effect.catchIf(
      isPreconditionFailed,
      () => Effect.fail(new Fenced({ epoch: 0, detail: `lost the race to open the store ${attempts} times` }))
    )
  )

/** The ids under `prefix` (`manifest/` or `wal/`), ascending; those after `startAfter` if given. */
export const idsUnder = (store: Store, prefix: string, startAfter?: string) =>
  Effect.map(
    Stream.runCollect(store.list(prefix, startAfter === undefined ? {} : { startAfter })),
    (entries) => entries.flatMap((entry) => {
      const id = idOf(entry.key, prefix)
      return id === undefined ? [] : [id]
    })
  )

/** Put-if-absent of an empty object at `id`: true if it was written, false if the id was taken. */
const putFence = (store: Store, id: number) =>
  store.put(walKey(id), new Uint8Array(0), { ifNoneMatch: "*" }).pipe(
    Effect.as(true),
    Effect.catchIf(isPreconditionFailed, () => Effect.succeed(false))
  )

/**
 * Fences the WAL. A writer keeps several segments in flight, so a crash (or a writer that is
 * still running) can leave gaps below the last id: each gap gets an empty object first, so that
 * a put still in flight there fails instead of landing behind this recovery's read and being
 * acknowledged. Then the fence proper: an empty object at the first free id after the last one.
 * A taken id there means an older writer got there first; unless a newer epoch exists (then we
 * are fenced), try the next one.
 */
const writeFence = (store: Store, manifest: Manifest.Manifest) =>
  Effect.gen(function*() {
    const present = yield* idsUnder(store, walPrefix, manifest.replayAfterWalId > 0 ? walKey(manifest.replayAfterWalId) : undefined)
    const frontier = present[present.length - 1] ?? manifest.replayAfterWalId
    const have = new Set(present)
    const gaps: Array<number> = []
    for (let id = manifest.replayAfterWalId + 1; id < frontier; id++) if (!have.has(id)) gaps.push(id)
    yield* Effect.forEach(gaps, (id) => putFence(store, id), { concurrency: 16, discard: true })
    let id = frontier + 1
    while (!(yield* putFence(store, id))) {
      const latest = yield* readLatestManifest(store)
      if (Option.isSome(latest) && latest.value.manifest.writerEpoch > manifest.writerEpoch) {
        return yield* new Fenced({ epoch: manifest.writerEpoch, detail: "a newer writer opened while this one was fencing" })
      }
      id++
    }
    return id
  })

/**
 * Checks that no acknowledged segment is missing: every id between a segment's writer's fence
 * and its `landedThrough` held a segment (of that writer, or an older one's that it skipped), so
 * a fence there stands where a segment was lost (and the gap was fenced above).
 */
export const checkAcknowledged = (
  segments: ReadonlyArray<WalSegment.Segment>,
  fences: ReadonlySet<number>,
  replayAfter: number
): Corrupt | undefined => {
  let checkedThrough = replayAfter
  for (const segment of [...segments].sort((a, b) => a.landedThrough - b.landedThrough)) {
    for (let id = Math.max(checkedThrough, segment.fenceId) + 1; id <= segment.landedThrough; id++) {
      if (fences.has(id)) {
        return new Corrupt({ key: walKey(id), detail: `WAL segment ${id} is missing, though segment ${segment.walId} says it landed` })
      }
    }
    checkedThrough = Math.max(checkedThrough, segment.landedThrough)
  }
  return undefined
}

/**
 * The commits to replay, in order: writers (epochs) oldest first, and each writer's commits in
 * sequence order for as long as they follow on without a hole. A hole among WAL objects is a
 * segment that never landed (its writer crashed or was fenced with it in flight): nothing after
 * it was acknowledged. A local log has no such holes (it is read up to its torn tail), so a hole
 * before a commit read from a log is history that went missing: `Corrupt`.
 */
export const replayOrder = (
  segments: ReadonlyArray<WalSegment.Segment>,
  afterSeq: number,
  fromLog: ReadonlySet<WalSegment.Segment>
): Array<WalSegment.Commit> | Corrupt => {
  const byEpoch = new Map<number, Array<{ commit: WalSegment.Commit; logged: boolean }>>()
  for (const segment of segments) {
    const commits = byEpoch.get(segment.epoch) ?? []
    for (const commit of segment.commits) commits.push({ commit, logged: fromLog.has(segment) })
    byEpoch.set(segment.epoch, commits)
  }
  const order: Array<WalSegment.Commit> = []
  let lastSeq = afterSeq
  for (const epoch of [...byEpoch.keys()].sort((a, b) => a - b)) {
    const commits = byEpoch.get(epoch)!.sort((a, b) => a.commit.seq - b.commit.seq)
    for (const [i, { commit }] of commits.entries()) {
      if (commit.seq <= lastSeq) continue
      if (commit.seq !== lastSeq + 1) {
        if (commits.slice(i).some((c) => c.logged)) {
          return new Corrupt({
            key: epochPath(epoch),
            detail: `commits ${lastSeq + 1} to ${commit.seq - 1} are missing, though the writer's log holds commit ${commit.seq}`
          })
        }
        break
      }
      order.push(commit)
      lastSeq = commit.seq
    }
  }
  return order
}

/** A fetched WAL object: an empty one is a fence (its id goes to `fences`), else a segment to decode. */
export const collectWalObject = (
  object: { readonly key: string; readonly bytes: Uint8Array },
  segments: Array<WalSegment.Segment>,
  fences: Set<number>
) =>
  Effect.gen(function*() {
    if (object.bytes.length === 0) return void fences.add(idOf(object.key, walPrefix)!)
    segments.push(yield* decodeOrCorrupt(object.key, object.bytes, WalSegment.decode))
  })

/**
 * Applies commits in replay order to `mem` (deletes as tombstones when `older` sources exist, see
 * `state.applyOp`); the last sequence number and the bytes of the ops applied.
 */
export const applyCommits = (
  order: ReadonlyArray<WalSegment.Commit>,
  mem: Memtable,
  afterSeq: number,
  older: boolean
): { readonly lastSeq: number; readonly bytes: number } => {
  let lastSeq = afterSeq
  let bytes = 0
  for (const commit of order) {
    lastSeq = commit.seq
    for (const op of commit.ops) {
      applyOp(mem, op[0], op[1], older)
      bytes += opBytes(op)
    }
  }
  return { lastSeq, bytes }
}

/** What reads of runs share: the block cache, and where GETs are counted. */
export interface RunReads {
  readonly cache: BlockCache.BlockCache
  readonly stats: RunReader.ReadStats
}

/**
 * Opens the runs of a manifest for reading on demand, newest first (footer and index: two GETs
 * each, 8 runs at once). When all of them fit in half the cache, it then reads them into it
 * (in spans of 1 MiB, newest run first, while it is less than half full: `BlockCache.hasRoom`),
 * so a small store is read from memory alone. A larger store's blocks are read as reads need
 * them: warming a few of its blocks at open would cost the open time and guess at the hot ones.
 */
export const openRuns = (store: Store, manifest: Manifest.Manifest, reads: RunReads) =>
  Effect.tap(
    Effect.forEach(
      manifest.runs,
      (ref) => RunReader.open(store, runKey(ref.id), { bytes: ref.bytes, cache: reads.cache, id: ref.id, stats: reads.stats }),
      { concurrency: 8 }
    ),
    (runs) =>
      BlockCache.holdsAll(reads.cache, runs.reduce((n, run) => n + run.bytes, 0))
        ? Effect.forEach(runs, (run) => RunReader.warm(run, reads.cache, () => BlockCache.hasRoom(reads.cache)), { discard: true })
        : Effect.void
  )

/**
 * Opens the store as its writer, taking over the older writers' logs in `log` (the store's local
 * log, if it has one). Fails with `Fenced` if another writer keeps winning the race to open,
 * `Corrupt` if an object fails its checks or a WAL segment of the replay range is missing.
 */
export const recover = (store: Store, log: LocalLog | undefined, options: { readonly openAttempts: number; readonly reads: RunReads }) =>
  Effect.gen(function*() {
    const { id: manifestId, manifest } = yield* raiseEpoch(store, options.openAttempts)
    const fenceId = yield* writeFence(store, manifest)
    const runs = yield* openRuns(store, manifest, options.reads)
    const ids = Array.from({ length: fenceId - manifest.replayAfterWalId - 1 }, (_, i) => manifest.replayAfterWalId + 1 + i)
    const segments: Array<WalSegment.Segment> = []
    const fences = new Set<number>()
    // every id below the fence is taken now (gaps were fenced): fetch with bounded parallelism
    yield* Stream.fromIterable(ids).pipe(
      Stream.mapEffect((id) =>
        store.get(walKey(id)).pipe(
          Effect.catchReason("ObjectStoreError", "NotFound", () =>
            Effect.fail(new Corrupt({ key: walKey(id), detail: "WAL segment of the replay range is missing" })))
        ), { concurrency: 16 }),
      Stream.runForEach((object) => collectWalObject(object, segments, fences))
    )
    const lost = checkAcknowledged(segments, fences, manifest.replayAfterWalId)
    if (lost !== undefined) return yield* lost
    const logs = log === undefined ? { segments: [], parts: [] } : yield* takeOverLogs(log, manifest.writerEpoch)
    segments.push(...logs.segments)
    const order = replayOrder(segments, manifest.lastSeq, new Set(logs.segments))
    if (order instanceof Corrupt) return yield* order
    const mem = newTree()
    const { bytes: memBytes, lastSeq } = applyCommits(order, mem, manifest.lastSeq, runs.length > 0)
    const replayedSegments = segments.length
    return {
      manifestId,
      manifest,
      epoch: manifest.writerEpoch,
      runs,
      mem,
      memBytes,
      lastSeq,
      fenceId,
      replayedSegments,
      logParts: logs.parts
    } satisfies Recovered
  })
