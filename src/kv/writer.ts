/**
 * The background side of an open KV writer:
 *
 * - the flusher writes WAL batches (group commit: everything committed while the puts in flight
 *   are under way goes in the next object), each with put-if-absent at the next id, up to
 *   `maxWalPutsInFlight` at once; a batch is acknowledged when it and every batch before it have
 *   landed. A fence or a newer writer's segment at our id means another writer fenced us; an
 *   older writer's segment that landed after we opened is skipped over. On a store with a local
 *   log (the directory backend) the batches are appended to this writer's log instead, written
 *   in commit order at once and made durable by `fdatasync`s that may overlap, and the log's
 *   fence stops a writer that a newer one took over;
 * - at batch boundaries, once the memtable holds `memtableBytes` (or `runFlushSegments` batches),
 *   it is frozen (still read, see `state.ts`); the maintainer writes the oldest frozen memtable as
 *   a sorted run, then the next manifest naming it, and swaps it for the run in what reads merge;
 *   then it compacts (`compaction.ts` chooses: the newest runs of similar size are merged into
 *   one, split into objects of at most `maxRunBytes`, and a merge that reaches the oldest run
 *   drops the tombstones; the runs are merged on their bytes, `rawMerge.ts`, each written into
 *   the buffer of the run before it), committed through a manifest like every other change; then collects
 *   garbage (runs no kept manifest names, once they are `gcMinAge` out of use);
 * - the fence watch (every `fenceCheckInterval`) reads the manifest slot after ours: a newer
 *   writer's open created it, so a writer that has nothing to write still learns that it was
 *   fenced. Once the writer stops, for whatever reason, nothing here puts, lists or deletes
 *   again (retries of puts in flight end too), and the watch ends.
 *
 * @internal
 */
import { Clock, Deferred, Duration, Effect, Option, Random, Schedule, Scope, Stream } from "effect"
import { decodeTime, monotonicFactory } from "ulid"
import * as Manifest from "../../schema/Manifest.ts"
import * as Run from "../../schema/Run.ts"
import * as WalSegment from "../../schema/WalSegment.ts"
import { equalBytes } from "../internal/binary.ts"
import { makeSignal } from "../internal/signal.ts"
import { Closed, type Corrupt, Fenced } from "../KvError.ts"
import type { Service as Store } from "../ObjectStore.ts"
import type { Service as LocalLog } from "../ObjectStore/LocalLog.ts"
import { type InvalidKey, type InvalidRange, isPreconditionFailed, isRetryable, ObjectStoreError } from "../ObjectStoreError.ts"
import { idOf, manifestKey, manifestPrefix, runKey, runPrefix, walKey, walPrefix } from "./paths.ts"
import { decodeOrCorrupt, idsUnder, readLatestManifest } from "./recovery.ts"
import type { LogPart, Recovered, RunReads } from "./recovery.ts"
import * as BlockCache from "./blockCache.ts"
import { compactionOf } from "./compaction.ts"
import * as Merge from "./merge.ts"
import * as RawMerge from "./rawMerge.ts"
import * as RunReader from "./runReader.ts"
import { type Batch, type Failure, type Frozen, makeState, newBatch, newTree, refreshSources, type State } from "./state.ts"

/**
 * Entries a compaction merges and encodes between two yields (a few hundred microseconds of
 * work): every step of a commit in flight (its WAL write, its sync, the next claim) waits for at
 * most one such slice.
 */
const compactionChunk = 256

/** Objects a garbage collection pass deletes at once. */
const gcConcurrency = 8

/** Tuning of the writer (all resolved). */
export interface WriterOptions {
  readonly minFlushInterval: Duration.Duration
  readonly maxWalPutsInFlight: number
  /**
   * Write the WAL to the store's local log when it has one; else to WAL objects (the log, if any,
   * still recovered and its covered parts collected).
   */
  readonly useLocalLog: boolean
  readonly maxUnflushedBytes: number
  readonly runFlushSegments: number
  readonly memtableBytes: number
  readonly maxRuns: number
  readonly maxRunBytes: number
  /** The block cache shared by every run, and where their GETs are counted. */
  readonly reads: RunReads
  readonly gcMinAge: Duration.Duration
  readonly keepManifests: number
  /** How often an idle writer checks that no newer writer opened the store (undefined: never). */
  readonly fenceCheckInterval: Duration.Duration | undefined
}

/** A WAL batch being put. */
interface Flight {
  readonly batch: Batch
  readonly lastSeq: number
  /** Its WAL id: moved past an id that an older writer's late segment took. */
  walId: number
  landed: boolean
}

const retryForever = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(10))))
)

/** Frozen memtables that may wait for their runs before commits are held back: bounds memory at `memtableBytes` × this. */
const maxFrozen = 4

const retryable = (error: unknown) => error instanceof ObjectStoreError && isRetryable(error)


/** The running writer: its state and what the public API needs of it. */
export interface Writer {
  readonly state: State
  /**
   * Whether commits must wait (`backpressure`): more than `maxUnflushedBytes` not durable yet, or
   * more than `maxFrozen` memtables waiting for their runs (the store or compaction behind).
   */
  readonly overloaded: () => boolean
  /** Waits while `overloaded`. */
  readonly backpressure: Effect.Effect<void, Failure>
  /** Waits until everything committed so far is durable. */
  readonly flush: Effect.Effect<void, Failure>
  /** Waits until `batch` is durable. */
  readonly durable: (batch: Batch) => Effect.Effect<void, Failure>
  /** Fails once the writer has stopped for good, with why; never succeeds. */
  readonly stopped: Effect.Effect<never, Failure>
}

/**
 * Starts the flusher and the maintainer in the current scope; closing it flushes what is
 * committed. `log` is the store's local log, if it has one: appended to unless
 * `options.useLocalLog` is false, and its parts that runs cover are deleted either way.
 */
export const startWriter = (
  store: Store,
  log: LocalLog | undefined,
  recovered: Recovered,
  options: WriterOptions
): Effect.Effect<Writer, ObjectStoreError | InvalidKey | InvalidRange | Fenced | Corrupt, Scope.Scope> =>
  Effect.gen(function*() {
    const committed = makeSignal()
    const flushed = makeSignal()
    const frozenReady = makeSignal()
    // a frozen memtable became a run (or the writer stopped): commits held back may go on
    const runWritten = makeSignal()
    const state = makeState({
      mem: recovered.mem,
      memBytes: recovered.memBytes,
      segmentsSinceFreeze: recovered.replayedSegments,
      runs: recovered.runs,
      reads: options.reads,
      lastSeq: recovered.lastSeq,
      epoch: recovered.epoch,
      nextWalId: recovered.fenceId + 1,
      onCommit: committed.notify
    })
    // the puts in flight, in commit order; acknowledged from the front as they land
    const inFlight: Array<Flight> = []
    // closed after the final flush (finalizers run last-in first-out), so puts can finish first
    const putScope = yield* Scope.fork(yield* Scope.Scope)
    const appender = options.useLocalLog && log !== undefined ? yield* log.appender(recovered.epoch) : undefined
    if (appender !== undefined) {
      // A newer writer takes over (fences) only the logs it finds when it opens. Ours exists now:
      // if no newer manifest is there yet, a newer writer raises it after this and finds our log;
      // if one is, that writer may have looked before our log existed, and would never see what
      // we append: we are fenced before acknowledging anything.
      const latest = yield* readLatestManifest(store)
      if (Option.isSome(latest) && latest.value.manifest.writerEpoch > recovered.epoch) {
        return yield* new Fenced({ epoch: recovered.epoch, detail: "a newer writer opened while this one was opening" })
      }
    }
    // the log parts that exist, with the last sequence number in each: GC deletes covered ones
    const logParts: Array<LogPart> = [...recovered.logParts]
    if (appender !== undefined) logParts.push({ epoch: recovered.epoch, part: appender.currentPart(), maxSeq: 0 })
    let rotateBeforeWrite = false
    // runs taken out of the manifest by a compaction, with when: deleted once out of use for `gcMinAge`
    const retired = new Map<string, number>()
    let current = { id: recovered.manifestId, manifest: recovered.manifest }
    const knownManifests = new Map<number, Manifest.Manifest>([[current.id, current.manifest]])
    // WAL ids up to this one have been looked at by GC (those a previous writer left are looked at once)
    let walCollectedUpTo = 0
    // the earliest time a GC pass may find something to delete (0: at the first step)
    let gcDueAt = 0
    /** Something (a manifest, a run) may be collected from `at` on: a GC pass is due then. */
    const gcDue = (at: number) => {
      if (at < gcDueAt) gcDueAt = at
    }
    const random = yield* Random.Random
    const newRunId = monotonicFactory(() => random.nextDoubleUnsafe())
    // failed with the writer's failure when it stops: what `Kv.stopped` waits on
    const stopped = Deferred.makeUnsafe<never, Failure>()

    /** Stops the writer: every batch not yet durable fails with `failure`. */
    const stop = (failure: Failure) => {
      if (state.failure !== undefined) return
      state.failure = failure
      Deferred.doneUnsafe(stopped, Effect.fail(failure))
      for (const flight of inFlight) Deferred.doneUnsafe(flight.batch.done, Effect.fail(failure))
      Deferred.doneUnsafe(state.batch.done, Effect.fail(failure))
      committed.notify()
      flushed.notify()
      frozenReady.notify()
      runWritten.notify()
    }
    const fenced = (detail: string) => stop(new Fenced({ epoch: state.epoch, detail }))

    // A defect in a background fiber is a bug: it stops the writer (nothing more is acknowledged)
    // and is logged, rather than leaving commits waiting on a dead fiber.
    const supervised = (name: string, effect: Effect.Effect<void>) =>
      effect.pipe(
        Effect.catchCause((cause) =>
          Effect.andThen(
            Effect.logError(`kv ${name} failed; the writer stops`, cause),
            Effect.sync(() => stop(new Closed({ detail: `the ${name} failed: ${String(cause)}` })))
          )
        )
      )

    /** A transient store failure, worth another try while the writer has not stopped. */
    const retryWhileRunning = (error: unknown) => retryable(error) && state.failure === undefined

    /**
     * Puts one object until it lands: transient failures (past the store's own retries) are
     * retried with backoff and logged, since a WAL id can be neither skipped nor reordered, until
     * the writer stops (then nothing more is put). A conditional put can find the key `taken`;
     * any other failure stops the writer.
     */
    const putUntilDone = (key: string, bytes: Uint8Array, conditional: boolean): Effect.Effect<"landed" | "taken" | "failed"> =>
      Effect.suspend(() => state.failure !== undefined ? Effect.succeed("failed" as const) : putOnce(key, bytes, conditional))

    const putOnce = (key: string, bytes: Uint8Array, conditional: boolean) => {
      // Set once an attempt failed past the store's own retries in a way that may have applied it
      // (a lost response): then the key taken at a later attempt may be our own object.
      let uncertain = false
      return store.put(key, bytes, conditional ? { ifNoneMatch: "*" } : {}).pipe(
        Effect.tapError((error) => {
          if (!retryable(error)) return Effect.void
          uncertain = true
          return Effect.logWarning(`put ${key} failed; retrying`, error)
        }),
        // a plain put (a run) whose response was lost may have landed: read back, it is ours
        Effect.catchIf(
          (error) => !conditional && retryable(error),
          (error) => Effect.flatMap(holdsBytes(key, bytes), (ours) => (ours ? Effect.void : Effect.fail(error)))
        ),
        Effect.retry({ while: retryWhileRunning, schedule: retryForever }),
        Effect.as("landed" as const),
        Effect.catch((error) => {
          if (conditional && isPreconditionFailed(error)) {
            return uncertain ? Effect.map(holdsBytes(key, bytes), (ours) => (ours ? "landed" as const : "taken" as const)) : Effect.succeed("taken" as const)
          }
          stop(new Closed({ detail: `put ${key} failed: ${String(error)}` }))
          return Effect.succeed("failed" as const)
        })
      )
    }

    /**
     * Whether `key` holds exactly `bytes`: our own earlier attempt, applied though its response was
     * lost (a segment or manifest names this writer's epoch and its contents, so another writer's
     * object never equals it). Unreadable: not known to be ours.
     */
    const holdsBytes = (key: string, bytes: Uint8Array) =>
      store.get(key).pipe(
        Effect.retry({ while: retryWhileRunning, schedule: retryForever }),
        Effect.map((object) => equalBytes(object.bytes, bytes)),
        Effect.catch(() => Effect.succeed(false))
      )

    /** Whether the segment that took our WAL id is an older writer's, which landed late. */
    const isOlderSegment = (walId: number) =>
      store.get(walKey(walId)).pipe(
        Effect.retry({ while: retryWhileRunning, schedule: retryForever }),
        Effect.map((object) => {
          if (object.bytes.length === 0) return false // a fence: a newer writer
          try {
            return WalSegment.decode(object.bytes).epoch < state.epoch
          } catch {
            return false
          }
        }),
        Effect.catch(() => Effect.succeed(false))
      )

    // ---- flusher ---------------------------------------------------------------------------

    /**
     * Freezes the memtable at a batch boundary (the batch with `walId` ends it): reads go on
     * merging it until its run is in a manifest, and a new memtable takes the commits after it.
     */
    const freeze = (walId: number, lastSeq: number) => {
      state.frozen.unshift({ tree: state.mem, walId, lastSeq, bytes: state.memBytes })
      state.mem = newTree()
      state.memBytes = 0
      state.segmentsSinceFreeze = 0
      refreshSources(state)
      frozenReady.notify()
    }

    /** Every WAL id up to this one holds a segment: ours, or one we skipped over. */
    const landedThrough = () => {
      let lowest = state.nextWalId
      for (const flight of inFlight) if (!flight.landed) lowest = Math.min(lowest, flight.walId)
      return lowest - 1
    }

    /** Acknowledges, in commit order, the batches that landed with all before them. */
    const acknowledgeLanded = () => {
      while (inFlight.length > 0 && inFlight[0]!.landed) {
        const flight = inFlight.shift()!
        state.durableSeq = flight.lastSeq
        state.durableWalId = Math.max(state.durableWalId, flight.walId)
        state.unflushedBytes -= flight.batch.bytes
        Deferred.doneUnsafe(flight.batch.done, Effect.void)
      }
      flushed.notify()
    }

    const putSegment = (flight: Flight) =>
      Effect.gen(function*() {
        while (state.failure === undefined) {
          const bytes = WalSegment.encode({
            epoch: state.epoch,
            walId: flight.walId,
            fenceId: recovered.fenceId,
            landedThrough: landedThrough(),
            commits: flight.batch.commits
          })
          const outcome = yield* putUntilDone(walKey(flight.walId), bytes, true)
          if (outcome === "failed") return
          if (outcome === "landed") {
            flight.landed = true
            return acknowledgeLanded()
          }
          if (!(yield* isOlderSegment(flight.walId))) return fenced(`WAL id ${flight.walId} is taken`)
          // an older writer's put that was in flight when we opened: its id is not ours to use
          flight.walId = state.nextWalId++
        }
      })

    /**
     * Writes a batch to this writer's local log at once, in commit order, and returns what makes
     * it durable (several run at once, like WAL puts); undefined if the write failed.
     */
    const writeToLog = (log: NonNullable<typeof appender>, flight: Flight) => {
      const bytes = WalSegment.encode({ epoch: state.epoch, walId: 0, fenceId: 0, landedThrough: 0, commits: flight.batch.commits })
      try {
        const written = log.write(bytes, rotateBeforeWrite)
        // a new part: asked for, or the log's own when the frame did not fit in the last one
        if (written.part !== logParts[logParts.length - 1]?.part) logParts.push({ epoch: state.epoch, part: written.part, maxSeq: 0 })
        rotateBeforeWrite = false
        logParts[logParts.length - 1]!.maxSeq = flight.lastSeq
        return written
      } catch (error) {
        stop(new Closed({ detail: `WAL write failed: ${String(error)}` }))
        return undefined
      }
    }

    const syncLog = (written: ReturnType<typeof writeToLog>, flight: Flight) =>
      Effect.gen(function*() {
        if (written === undefined) return
        const outcome = yield* written.durable.pipe(
          Effect.catch((error) => Effect.sync(() => stop(new Closed({ detail: `WAL sync failed: ${String(error)}` }))))
        )
        if (outcome === undefined) return
        if (outcome === "Fenced") return fenced("a newer writer fenced this writer's log")
        flight.landed = true
        acknowledgeLanded()
      })

    const startFlight = Effect.suspend(() => {
      const batch = state.batch
      state.batch = newBatch()
      const walId = appender === undefined ? state.nextWalId++ : recovered.fenceId
      const flight: Flight = { batch, lastSeq: batch.commits[batch.commits.length - 1]!.seq, walId, landed: false }
      inFlight.push(flight)
      state.segmentsSinceFreeze++
      const full = state.segmentsSinceFreeze >= options.runFlushSegments || state.memBytes >= options.memtableBytes
      if (full) freeze(flight.walId, flight.lastSeq)
      const put = appender === undefined ? putSegment(flight) : syncLog(writeToLog(appender, flight), flight)
      // the log part holding a frozen memtable's boundary can go once its run is in a manifest
      if (full) rotateBeforeWrite = true
      return Effect.forkIn(supervised("WAL write", put), putScope)
    })

    const maxInFlight = options.maxWalPutsInFlight
    let lastFlushStart = Number.NEGATIVE_INFINITY
    const flusherStep = Effect.gen(function*() {
      if (state.failure !== undefined) return yield* Effect.never
      if (state.batch.commits.length === 0) return yield* committed.wait
      if (inFlight.length >= maxInFlight) return yield* flushed.wait
      const interval = Duration.toMillis(options.minFlushInterval)
      if (interval > 0) {
        const wait = lastFlushStart + interval - (yield* Clock.currentTimeMillis)
        if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
        lastFlushStart = yield* Clock.currentTimeMillis
      }
      yield* startFlight
    })

    // ---- maintainer: runs, manifests, GC ---------------------------------------------------------

    /** A run written: its reference in the manifest, and its reader. */
    interface Written {
      readonly ref: Manifest.RunRef
      readonly reader: RunReader.RunReader
    }

    /** What the writer of a run knows of it: its manifest fields, and whether to read it into the cache. */
    interface RunMeta {
      readonly maxSeq: number
      readonly full: boolean
      /** Whether the store, this run counted, is small enough to be held in the cache (`BlockCache.holdsAll`). */
      readonly warm: boolean
    }

    /** The bytes of the runs in force. */
    const runBytes = () => current.manifest.runs.reduce((n, ref) => n + ref.bytes, 0)

    /**
     * The buffer of the last run put, written over by the next one: each run written into fresh
     * memory paid for faulting its pages in (2.8 ms a MiB measured, most of a compaction's time)
     * and, being large, could start a full collection of the heap. The maintainer fiber alone
     * writes runs, one at a time. Costs the largest run's bytes (at most `maxRunBytes`), held.
     */
    let spareRunBuffer: Uint8Array | undefined

    /** Puts the run `encoder` holds, read into the cache if `meta.warm`; undefined when the writer stopped meanwhile. */
    const putRun = (encoder: Run.Encoder, meta: RunMeta) =>
      Effect.gen(function*() {
        const bytes = encoder.finish()
        const bornAt = Math.floor(yield* Clock.currentTimeMillis)
        const id = newRunId(bornAt)
        // if no manifest ever names it (the writer stops first), it is garbage once old enough
        gcDue(bornAt + Duration.toMillis(options.gcMinAge))
        if ((yield* putUntilDone(runKey(id), bytes, false)) !== "landed") return undefined
        const reader = yield* RunReader.fromObject(store, runKey(id), bytes, { cache: options.reads.cache, id, stats: options.reads.stats })
        if (meta.warm) yield* RunReader.warm(reader, options.reads.cache, () => BlockCache.hasRoom(options.reads.cache), bytes)
        const ref: Manifest.RunRef = { id, entries: encoder.entries, bytes: bytes.length, maxSeq: meta.maxSeq, full: meta.full }
        return { ref, reader } satisfies Written
      })

    /**
     * Writes what `pull` gives (entries in key order) as runs of at most `maxRunBytes` each, one
     * sorted run: several objects share a `group`. Undefined when the writer stopped meanwhile.
     */
    const writeRuns = (feed: Merge.Feed, meta: RunMeta & { readonly inputBytes: number }) =>
      Effect.gen(function*() {
        const written: Array<Written> = []
        // sized for the input (a merge only shrinks it) up to an object, with room for the index
        const capacity = Math.ceil(Math.min(meta.inputBytes, options.maxRunBytes) * 1.05)
        let encoder = new Run.Encoder(capacity, spareRunBuffer)
        spareRunBuffer = undefined
        for (;;) {
          const more = yield* feed(encoder, options.maxRunBytes)
          if (encoder.bytes >= options.maxRunBytes || (!more && encoder.entries > 0)) {
            const run = yield* putRun(encoder, meta)
            if (run === undefined) return undefined
            written.push(run)
            // landed: neither the store (`ObjectStore.put`'s contract) nor the run's reader holds its bytes
            if (more) encoder = new Run.Encoder(capacity, encoder.buffer)
          }
          if (!more) break
          // a big merge yields between chunks so commits are not held up
          yield* Effect.yieldNow
        }
        // the last encoder's buffer: its run landed, or nothing was put from it
        spareRunBuffer = encoder.buffer
        const group = written.length > 1 ? written[0]!.ref.id : undefined
        return group === undefined ? written : written.map((w) => ({ ...w, ref: { ...w.ref, group } }))
      })

    /** Puts `manifest` as the next one; whether it landed (taken: a newer writer fenced us). */
    const putManifest = (manifest: Manifest.Manifest) =>
      Effect.gen(function*() {
        const id = current.id + 1
        const outcome = yield* putUntilDone(manifestKey(id), Manifest.encode(manifest), true)
        if (outcome === "taken") fenced(`manifest ${id} is taken`)
        if (outcome !== "landed") return false
        current = { id, manifest }
        knownManifests.set(id, manifest)
        // the manifest this one pushes out of the newest `keepManifests` may go once old enough
        const pushedOut = knownManifests.get(id - options.keepManifests)
        gcDue(pushedOut === undefined ? 0 : pushedOut.createdAt + Duration.toMillis(options.gcMinAge))
        return true
      })

    const readManifest = (id: number) =>
      Effect.suspend(() => {
        const known = knownManifests.get(id)
        if (known !== undefined) return Effect.succeed(Option.some(known))
        return store.get(manifestKey(id)).pipe(
          Effect.flatMap((o) => decodeOrCorrupt(o.key, o.bytes, Manifest.decode)),
          Effect.tap((m) => Effect.sync(() => knownManifests.set(id, m))),
          Effect.map(Option.some),
          Effect.catchReason("ObjectStoreError", "NotFound", () => Effect.succeed(Option.none()))
        )
      })

    /**
     * Runs `remove` on each of `items`, `gcConcurrency` at once: a pass after a burst of writes
     * deletes hundreds of objects (800 runs, 15 GB, after a 10M fill), which one at a time held
     * the maintainer, and the memtables waiting for it, for seconds.
     */
    const deleteAll = <A, E>(items: ReadonlyArray<A>, remove: (item: A) => Effect.Effect<unknown, E>) =>
      Effect.forEach(items, remove, { concurrency: gcConcurrency, discard: true })

    /**
     * Deletes what no kept manifest needs: manifests beyond the newest `keepManifests` once older
     * than `gcMinAge`; WAL objects at or below the oldest kept manifest's replay point, except
     * fences (empty) and the newest; runs no kept manifest names, older than `gcMinAge`. It
     * re-reads the manifest list first: a newer manifest than ours means we are fenced.
     *
     * It notes when the next pass may find something (`gcDueAt`): the time the first thing it
     * kept becomes old enough; manifests, runs and retirements made since lower it. A pass lists
     * every manifest and run and builds the set of runs the kept ones name (measured at 10M
     * pending, 550 manifests of 800 runs: 80-380 ms a pass, after every run written); a step
     * before that time would find nothing and skips it. (WAL objects below the horizon that were
     * not durable behind at a pass wait for the next one: at most `gcMinAge` after the next
     * manifest. A store with a local log writes none.)
     */
    const collectGarbage = Effect.gen(function*() {
      if (state.failure !== undefined) return
      const now = yield* Clock.currentTimeMillis
      const minAge = Duration.toMillis(options.gcMinAge)
      // raised to the earliest time something kept here may go; a failed pass leaves it at now
      gcDueAt = now
      let due = Number.POSITIVE_INFINITY
      const dueAt = (at: number) => {
        if (at < due) due = at
      }
      const manifestIds = yield* idsUnder(store, manifestPrefix)
      const newest = manifestIds[manifestIds.length - 1]
      if (newest !== undefined && newest > current.id) {
        return fenced(`manifest ${newest} is newer than this writer's ${current.id}`)
      }
      const older = manifestIds.filter((id) => id <= current.id - options.keepManifests)
      const doomedManifests: Array<number> = []
      const kept = manifestIds.filter((id) => id > current.id - options.keepManifests)
      for (const [i, id] of older.entries()) {
        // the first pass after an open reads and decodes every manifest (550 of 800 runs each,
        // 60 ms at 10M pending): in slices, between which commits go on
        if (i % 16 === 15) yield* Effect.yieldNow
        const manifest = yield* readManifest(id)
        if (Option.isSome(manifest) && now - manifest.value.createdAt < minAge) {
          kept.push(id)
          dueAt(manifest.value.createdAt + minAge)
        } else doomedManifests.push(id)
      }
      yield* deleteAll(doomedManifests, (id) =>
        Effect.andThen(store.delete(manifestKey(id)), Effect.sync(() => knownManifests.delete(id))))
      const keptManifests: Array<Manifest.Manifest> = []
      for (const [i, id] of kept.entries()) {
        if (i % 16 === 15) yield* Effect.yieldNow
        const m = yield* readManifest(id)
        if (Option.isSome(m)) keptManifests.push(m.value)
      }
      // the newest ones go once newer ones push them out, and they are old enough (see putManifest)
      const horizon = Math.min(...keptManifests.map((m) => m.replayAfterWalId))
      const referenced = new Set<string>()
      for (const [i, manifest] of keptManifests.entries()) {
        if (i % 16 === 15) yield* Effect.yieldNow
        for (const ref of manifest.runs) referenced.add(ref.id)
      }
      // only the WAL ids not looked at before, up to the horizon
      const upTo = Math.min(horizon, state.durableWalId - 1)
      if (upTo > walCollectedUpTo) {
        const walEntries = yield* Stream.runCollect(
          store.list(walPrefix, { startAfter: walKey(walCollectedUpTo) }).pipe(
            Stream.takeWhile((entry) => (idOf(entry.key, walPrefix) ?? 0) <= upTo)
          )
        )
        for (const entry of walEntries) {
          if (entry.size > 0) yield* store.delete(entry.key) // fences stay
        }
        walCollectedUpTo = upTo
      }
      // log parts are needed by a replay from the newest manifest only: an open or a read-only
      // load starts there (a load that began from an older one starts over from the newest)
      yield* collectLogParts(current.manifest.lastSeq)
      const runEntries = yield* collectEntries(store, runPrefix)
      // no kept manifest names these: no read can start on one, and those under way are in `inUse`
      const doomedRuns: Array<string> = []
      for (const entry of runEntries) {
        const id = entry.key.slice(runPrefix.length)
        if (referenced.has(id)) continue
        // young (maybe written for a manifest not put yet), or taken out of use not long ago
        // (a read that began before may still be reading it, here or in a read-only process)
        const born = safeDecodeTime(id)
        if (born !== undefined && now - born < minAge) {
          dueAt(born + minAge)
          continue
        }
        const retiredAt = retired.get(id)
        if (retiredAt !== undefined && now - retiredAt < minAge) {
          dueAt(retiredAt + minAge)
          continue
        }
        // a read waiting for one of its blocks, or an open transaction that may read it
        if ((state.inUse.get(id) ?? 0) > 0) {
          dueAt(now)
          continue
        }
        doomedRuns.push(id)
      }
      yield* deleteAll(doomedRuns, (id) =>
        Effect.andThen(
          store.delete(runKey(id)),
          Effect.sync(() => {
            retired.delete(id)
            options.reads.cache.dropRun(id)
          })
        ))
      gcDueAt = due
    }).pipe(Effect.catch((error) => Effect.logWarning("garbage collection failed; it runs again after the next manifest", error)))

    /** Deletes the log parts whose commits all are in runs (except the part appended to now). */
    const collectLogParts = (coveredSeq: number) =>
      Effect.gen(function*() {
        if (log === undefined) return
        const current = appender === undefined ? undefined : logParts[logParts.length - 1]
        for (const part of [...logParts]) {
          if (part === current || part.maxSeq > coveredSeq) continue
          yield* log.deletePart(part.epoch, part.part)
          logParts.splice(logParts.indexOf(part), 1)
        }
      })

    /**
     * Writes the oldest frozen memtable `f` as a run (its tombstones kept while older runs exist),
     * then the manifest that names it and moves the replay point past it, then reads it there
     * instead of in memory.
     */
    const writeFrozen = (f: Frozen) =>
      Effect.gen(function*() {
        const older = state.runs.length > 0
        const written = yield* writeRuns(Merge.feedOf(Merge.mergeAll([f.tree], { keepTombstones: older })), {
          maxSeq: f.lastSeq,
          full: !older,
          inputBytes: f.bytes,
          warm: BlockCache.holdsAll(options.reads.cache, runBytes() + f.bytes)
        })
        if (written === undefined) return
        const landed = yield* putManifest({
          writerEpoch: state.epoch,
          replayAfterWalId: f.walId,
          lastSeq: f.lastSeq,
          runs: [...written.map((w) => w.ref), ...current.manifest.runs],
          createdAt: yield* Clock.currentTimeMillis
        })
        if (!landed) return
        state.runs = [...written.map((w) => w.reader), ...state.runs]
        state.frozen.pop()
        refreshSources(state)
        runWritten.notify()
      })

    /**
     * Merges the runs the compaction policy picks (`compaction.ts`), as often as it picks some:
     * the newest runs, whose readers are the first of `state.runs` (same order as the manifest's).
     * Their output replaces them in the next manifest; they are retired (deleted by GC later).
     */
    const compact = Effect.gen(function*() {
      while (state.failure === undefined) {
        const plan = compactionOf(current.manifest.runs, options.maxRuns)
        if (plan === undefined) return
        const refs = current.manifest.runs.slice(0, plan.count)
        const inputs = state.runs.slice(0, plan.count)
        const feed = RawMerge.mergeRuns(inputs, { keepTombstones: !plan.bottom, readAhead: RunReader.wholeRunReadAhead, chunk: compactionChunk })
        const written = yield* writeRuns(feed, {
          maxSeq: Math.max(...refs.map((r) => r.maxSeq)),
          full: plan.bottom,
          inputBytes: refs.reduce((n, r) => n + r.bytes, 0),
          // the output replaces its inputs and is no larger
          warm: BlockCache.holdsAll(options.reads.cache, runBytes())
        })
        if (written === undefined) return
        const landed = yield* putManifest({
          ...current.manifest,
          writerEpoch: state.epoch,
          runs: [...written.map((w) => w.ref), ...current.manifest.runs.slice(plan.count)],
          createdAt: yield* Clock.currentTimeMillis
        })
        if (!landed) return
        const now = yield* Clock.currentTimeMillis
        for (const ref of refs) retired.set(ref.id, now)
        gcDue(now + Duration.toMillis(options.gcMinAge))
        state.runs = [...written.map((w) => w.reader), ...state.runs.slice(plan.count)]
        refreshSources(state)
      }
    })

    const maintainerStep = Effect.gen(function*() {
      if (state.failure !== undefined) return yield* Effect.never
      const next = state.frozen[state.frozen.length - 1]
      if (next === undefined) return yield* frozenReady.wait
      // a run may only be referenced once the WAL it replaces is durable
      if (state.durableSeq < next.lastSeq) return yield* flushed.wait
      // a run of our own memtable that does not decode is a bug: it stops the writer (supervised)
      yield* Effect.orDie(writeFrozen(next))
      // a run that cannot be read now (the store, or damage) is merged at a later try
      yield* compact.pipe(Effect.catch((error) => Effect.logWarning("compaction failed; it is tried again after the next run", error)))
      if ((yield* Clock.currentTimeMillis) >= gcDueAt) yield* collectGarbage
      // the local log's parts go as soon as runs hold their commits, whatever their age
      else {
        yield* collectLogParts(current.manifest.lastSeq).pipe(
          Effect.catch((error) => Effect.logWarning("deleting covered log parts failed; tried again after the next run", error))
        )
      }
    })

    // ---- fence watch: an idle writer finds out that a newer one opened the store ---------------

    /**
     * Whether a newer writer opened the store: every open creates the manifest after the latest
     * one, with a higher epoch (our own next manifest, landing meanwhile, has ours). A failed read
     * or an undecodable object proves nothing: the next check looks again.
     */
    const newerWriterOpened = Effect.suspend(() =>
      store.get(manifestKey(current.id + 1)).pipe(
        Effect.map((object) => {
          try {
            return Manifest.decode(object.bytes).writerEpoch > state.epoch
          } catch {
            return false
          }
        }),
        Effect.orElseSucceed(() => false)
      )
    )

    /**
     * Checks every `interval` for a newer writer (one small read), so that a writer with nothing
     * to write learns that it was fenced; it ends when the writer stops, however that happens.
     */
    const watchFence = (interval: Duration.Duration) =>
      Effect.gen(function*() {
        while (state.failure === undefined) {
          yield* Effect.sleep(interval)
          if (state.failure === undefined && (yield* newerWriterOpened)) {
            fenced(`a newer writer opened the store (manifest ${current.id + 1})`)
          }
        }
      }).pipe(Effect.raceFirst(Effect.ignore(Deferred.await(stopped))))

    yield* Effect.forkScoped(supervised("flusher", Effect.forever(flusherStep)))
    yield* Effect.forkScoped(supervised("maintainer", Effect.forever(maintainerStep)))
    if (options.fenceCheckInterval !== undefined) {
      yield* Effect.forkScoped(supervised("fence watch", watchFence(options.fenceCheckInterval)))
    }

    const flush: Effect.Effect<void, Failure> = Effect.suspend(() => {
      if (state.failure !== undefined && state.durableSeq < state.lastSeq) return Effect.fail(state.failure)
      if (state.batch.commits.length > 0) return Deferred.await(state.batch.done)
      const last = inFlight[inFlight.length - 1]
      if (last !== undefined) return Deferred.await(last.batch.done)
      return Effect.void
    })

    // Closing: flush what is committed (the flusher still runs: finalizers run before the
    // scope interrupts the fibers forked above), then refuse everything.
    yield* Effect.addFinalizer(() =>
      flush.pipe(Effect.ignore, Effect.andThen(Effect.sync(() => stop(new Closed({ detail: "the KV layer was closed" })))))
    )

    const overloaded = () => state.unflushedBytes > options.maxUnflushedBytes || state.frozen.length > maxFrozen

    const backpressure: Effect.Effect<void, Failure> = Effect.gen(function*() {
      while (overloaded()) {
        if (state.failure !== undefined) return yield* Effect.fail(state.failure)
        yield* Effect.raceFirst(flushed.wait, runWritten.wait)
      }
    })

    return {
      state,
      overloaded,
      backpressure,
      flush,
      durable: (batch) => Deferred.await(batch.done),
      stopped: Deferred.await(stopped)
    } satisfies Writer
  })

const safeDecodeTime = (id: string): number | undefined => {
  try {
    return decodeTime(id)
  } catch {
    return undefined
  }
}

/** Every entry under `prefix`, in key order. */
const collectEntries = (store: Store, prefix: string) => Stream.runCollect(store.list(prefix))
