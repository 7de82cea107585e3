/**
 * Loading the KV's state without opening it as its writer (`Kv.makeReadOnly`): the latest
 * manifest, its runs opened for reading on demand, then the WAL objects and local-log parts after its replay point, replayed
 * as the writer's recovery would (`recovery.ts`), but writing nothing at all: no manifest, no
 * fence, no seal, no sync. So a writer running meanwhile, or starting meanwhile, is never fenced
 * by it, and the store's objects and log files are left byte for byte as they were.
 *
 * **What it sees.** A prefix of the commit history: everything durable when the objects were
 * read, up to the first hole (a WAL object still in flight, a log append not yet in its part).
 * A live writer's commits after that are not seen. Since a writer may garbage-collect what an
 * older manifest needed while this reads, a load that fails while a newer manifest appeared
 * starts over from that one (a few times), and since a live writer's log is read unsynced, a log
 * part that does not check is read again (a few times); otherwise damage fails it with `Corrupt`.
 *
 * @internal
 */
import { Effect, Exit, Option, Stream } from "effect"
import type * as Manifest from "../../schema/Manifest.ts"
import type * as WalSegment from "../../schema/WalSegment.ts"
import { Corrupt } from "../KvError.ts"
import type { Service as Store } from "../ObjectStore.ts"
import { logPrefix, type Service as LocalLog } from "../ObjectStore/LocalLog.ts"
import { walKey, walPrefix } from "./paths.ts"
import {
  applyCommits,
  checkAcknowledged,
  collectWalObject,
  idsUnder,
  openRuns,
  logSegments,
  readLatestManifest,
  replayOrder,
  type RunReads
} from "./recovery.ts"
import type { ReadOnlyState } from "./engine.ts"
import { newTree } from "./state.ts"

/**
 * The state as loaded: the writer epoch of the manifest it started from, the last commit
 * replayed, the replayed memtable over the manifest's runs.
 */
export type Snapshot = ReadOnlyState

/** One attempt at loading from the manifest `latest`. */
const loadFrom = (
  store: Store,
  log: LocalLog | undefined,
  latest: Option.Option<{ readonly id: number; readonly manifest: Manifest.Manifest }>,
  reads: RunReads
) =>
  Effect.gen(function*() {
    const mem = newTree()
    const state = { mem, frozen: [], reads }
    if (Option.isNone(latest)) return { ...state, epoch: 0, lastSeq: 0, runs: [] } satisfies Snapshot
    const { manifest } = latest.value
    const runs = yield* openRuns(store, manifest, reads)
    const replayAfter = manifest.replayAfterWalId
    const ids = yield* idsUnder(store, walPrefix, replayAfter > 0 ? walKey(replayAfter) : undefined)
    const segments: Array<WalSegment.Segment> = []
    const fences = new Set<number>()
    // an id absent from the listing is a hole: a segment in flight (or lost), nothing after it replayed
    const listed = new Set(ids)
    const frontier = ids[ids.length - 1] ?? replayAfter
    for (let id = replayAfter + 1; id < frontier; id++) if (!listed.has(id)) fences.add(id)
    yield* Stream.fromIterable(ids).pipe(
      Stream.mapEffect((id) => store.get(walKey(id)), { concurrency: 16 }),
      Stream.runForEach((object) => collectWalObject(object, segments, fences))
    )
    const lost = checkAcknowledged(segments, fences, replayAfter)
    if (lost !== undefined) return yield* lost
    const logs = log === undefined
      ? { segments: [] }
      : yield* Effect.flatMap(log.epochs, (epochs) => logSegments(epochs.filter((e) => e <= manifest.writerEpoch), log.read))
    segments.push(...logs.segments)
    const order = replayOrder(segments, manifest.lastSeq, new Set(logs.segments))
    if (order instanceof Corrupt) return yield* order
    const { lastSeq } = applyCommits(order, mem, manifest.lastSeq, runs.length > 0)
    return { ...state, epoch: manifest.writerEpoch, lastSeq, runs } satisfies Snapshot
  })

/** Whether the newest manifest is still the one with `id` (none: there was none). */
const manifestUnchanged = (store: Store, id: number | undefined) =>
  Effect.map(readLatestManifest(store), (latest) => Option.getOrUndefined(Option.map(latest, (m) => m.id)) === id)

/** Whether a failed load failed on a local-log part (`Corrupt` naming a file under `%wal/`). */
const failedOnLog = (exit: Exit.Exit<unknown, { readonly _tag: string }>): boolean =>
  Exit.isFailure(exit) && exit.cause.reasons.some((r) =>
    r._tag === "Fail" && r.error._tag === "Corrupt" && (r.error as Corrupt).key.startsWith(logPrefix)
  )

/**
 * Loads the committed state of the store, and of `log` (its local log, if it has one), without
 * writing anything. A load that fails while a
 * newer manifest appeared (the writer moved on and collected what the older one needed) starts
 * over from it, up to 5 times; so does one that found a local-log part not checking, after 50 ms
 * (a live writer's append read half-way, unsynced: read again, it checks; damage does not);
 * otherwise its failure stands.
 */
export const loadSnapshot = (store: Store, log: LocalLog | undefined, reads: RunReads) =>
  Effect.gen(function*() {
    for (let attempt = 1;; attempt++) {
      const latest = yield* readLatestManifest(store)
      const id = Option.getOrUndefined(Option.map(latest, (m) => m.id))
      const loaded = yield* Effect.exit(loadFrom(store, log, latest, reads))
      if (loaded._tag === "Success") return loaded.value
      if (attempt >= 5) return yield* loaded
      if (failedOnLog(loaded)) yield* Effect.sleep("50 millis")
      else if (yield* manifestUnchanged(store, id)) return yield* loaded
    }
  })
