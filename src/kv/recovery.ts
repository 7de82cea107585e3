/**
 * Opening a writer: raise the epoch with a new manifest, fence the WAL, load the runs, replay the
 * WAL tail (slatedb.md §8.1, "Open (writer)").
 *
 * @internal
 */
import { Clock, Effect, Option, Schedule, Stream } from "effect"
import * as Manifest from "../../schema/Manifest.ts"
import * as Run from "../../schema/Run.ts"
import * as WalSegment from "../../schema/WalSegment.ts"
import { DecodeError } from "../internal/binary.ts"
import type { BTree } from "../internal/btree.ts"
import { Corrupt, Fenced } from "../KvError.ts"
import type { Service as Store } from "../ObjectStore.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import { idOf, manifestKey, manifestPrefix, runKey, walKey, walPrefix } from "./paths.ts"
import { newTree, opBytes } from "./state.ts"

/** Decodes with `decode`, turning a `DecodeError` into `Corrupt` for `key`. */
export const decodeOrCorrupt = <A>(key: string, bytes: Uint8Array, decode: (bytes: Uint8Array) => A) =>
  Effect.try({
    try: () => decode(bytes),
    catch: (error) => new Corrupt({ key, detail: error instanceof DecodeError ? error.message : String(error) })
  })

const isPreconditionFailed = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "ObjectStoreError" &&
  (error as ObjectStoreError).reason._tag === "PreconditionFailed"

/** The highest id under `prefix` (`manifest/` or `wal/`) after `afterId`, if any. */
export const latestId = (store: Store, prefix: string, afterId = 0) =>
  Stream.runFold(
    store.list(prefix, afterId > 0 ? { startAfter: prefix === walPrefix ? walKey(afterId) : manifestKey(afterId) } : {}),
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
  readonly live: BTree<string, string>
  readonly lastSeq: number
  /** The WAL id of the fence this writer wrote; its own batches start after it. */
  readonly fenceId: number
  /** What the replayed WAL changed, not yet in any run. */
  readonly delta: Map<string, string | null>
  readonly deltaBytes: number
  readonly replayedSegments: number
}

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

/**
 * Writes the fence: an empty object at the first free WAL id after the replay point. A taken id
 * means an older writer got there first; unless a newer epoch exists (then we are fenced), try
 * the next one.
 */
const writeFence = (store: Store, manifest: Manifest.Manifest) =>
  Effect.gen(function*() {
    const frontier = yield* latestId(store, walPrefix, manifest.replayAfterWalId)
    let id = Option.getOrElse(frontier, () => manifest.replayAfterWalId) + 1
    while (true) {
      const taken = yield* store.put(walKey(id), new Uint8Array(0), { ifNoneMatch: "*" }).pipe(
        Effect.as(false),
        Effect.catchIf(isPreconditionFailed, () => Effect.succeed(true))
      )
      if (!taken) return id
      const latest = yield* readLatestManifest(store)
      if (Option.isSome(latest) && latest.value.manifest.writerEpoch > manifest.writerEpoch) {
        return yield* new Fenced({ epoch: manifest.writerEpoch, detail: "a newer writer opened while this one was fencing" })
      }
      id++
    }
  })

/** Applies the runs of a manifest, oldest first (fetched 8 at a time). */
const loadRuns = (store: Store, manifest: Manifest.Manifest, live: BTree<string, string>) =>
  Stream.fromIterable([...manifest.runs].reverse()).pipe(
    Stream.mapEffect((ref) => {
      const key = runKey(ref.id)
      return Effect.flatMap(store.get(key), (object) => decodeOrCorrupt(key, object.bytes, Run.decode))
    }, { concurrency: 8 }),
    Stream.runForEach((entries) =>
      Effect.sync(() => {
        for (const [k, v] of entries) {
          if (v === null) live.delete(k)
          else live.set(k, v)
        }
      })
    )
  )

/**
 * Opens the store as its writer. Fails with `Fenced` if another writer keeps winning the race to
 * open, `Corrupt` if an object fails its checks or a WAL segment of the replay range is missing.
 */
export const recover = (store: Store, options: { readonly openAttempts: number }) =>
  Effect.gen(function*() {
    const { id: manifestId, manifest } = yield* raiseEpoch(store, options.openAttempts)
    const fenceId = yield* writeFence(store, manifest)
    const live = newTree()
    yield* loadRuns(store, manifest, live)
    const delta = new Map<string, string | null>()
    let deltaBytes = 0
    let lastSeq = manifest.lastSeq
    let replayedSegments = 0
    const ids = Array.from({ length: fenceId - manifest.replayAfterWalId - 1 }, (_, i) => manifest.replayAfterWalId + 1 + i)
    // fetch ahead with bounded parallelism, apply strictly in id order
    yield* Stream.fromIterable(ids).pipe(
      Stream.mapEffect((id) =>
        store.get(walKey(id)).pipe(
          Effect.catchReason("ObjectStoreError", "NotFound", () =>
            Effect.fail(new Corrupt({ key: walKey(id), detail: "WAL segment of the replay range is missing" })))
        ), { concurrency: 16 }),
      Stream.runForEach((object) =>
        Effect.gen(function*() {
          if (object.bytes.length === 0) return // a fence
          const segment = yield* decodeOrCorrupt(object.key, object.bytes, WalSegment.decode)
          replayedSegments++
          for (const commit of segment.commits) {
            if (commit.seq <= lastSeq) continue
            lastSeq = commit.seq
            for (const op of commit.ops) {
              const [key, value] = op
              if (value === null) live.delete(key)
              else live.set(key, value)
              delta.set(key, value)
              deltaBytes += opBytes(op)
            }
          }
        }))
    )
    return {
      manifestId,
      manifest,
      epoch: manifest.writerEpoch,
      live,
      lastSeq,
      fenceId,
      delta,
      deltaBytes,
      replayedSegments
    } satisfies Recovered
  })
