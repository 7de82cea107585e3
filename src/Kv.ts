/**
 * A transactional, ordered key-value store on an `ObjectStore`, with one writer at a time.
 *
 * **Details**
 *
 * Keys and values are bytes; keys sort in byte order. A commit is synchronous in memory
 * (conflict check, sequence number, apply) and, by default, completes only once the WAL object
 * holding it is in the store: commits are group-committed, one WAL put in flight at a time, and
 * everything committed meanwhile goes in the next object. Reads see committed state (which can be
 * ahead of durable state); since WAL objects become durable in order, a durable commit implies
 * that everything it read is durable.
 *
 * Opening (building the layer) raises the writer epoch with a new manifest and fences the WAL, so
 * a previous writer of the same store fails with `Fenced` from its next write on and acknowledges
 * nothing more; one with nothing to write finds out within `fenceCheckInterval`. A stopped writer
 * (`failure`, `stopped`) touches the store no more. Recovery yields exactly a prefix of the
 * commit history that contains every acknowledged commit. The state lives in the store's sorted
 * runs, read a block at a time on demand through a block cache (`cacheBytes`) and merged under
 * the memtable of recent commits; the runs are compacted as they pile up (see `Options`). Memory
 * is bounded by the options, not by the size of the state, and opening reads the manifest, the
 * runs' indexes and the WAL tail, not the state.
 *
 * `makeReadOnly` (`layerReadOnly`) loads the committed state without opening the store as its
 * writer: it writes nothing at all, so it fences no one, and serves reads of that snapshot.
 *
 * When the context also holds an `ObjectStore.LocalLog` (the directory backend's layers provide
 * one), the writer appends its WAL there instead of putting WAL objects (see
 * `Options.useLocalLog`), and every open reads it; it is looked up, never required.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Option, type Scope } from "effect"
import { checkOneEffect } from "./internal/effectCopy.ts"
import type { InvalidOption } from "./InvalidOption.ts"
import { serviceOver } from "./kv/bytes.ts"
import * as Engine from "./kv/engine.ts"
import { kvOptionsError } from "./kv/options.ts"
import * as BlockCache from "./kv/blockCache.ts"
import { recover, type RunReads } from "./kv/recovery.ts"
import { makeStats } from "./kv/runReader.ts"
import { loadSnapshot } from "./kv/snapshot.ts"
import { startWriter } from "./kv/writer.ts"
import type { Closed, Corrupt, Fenced, TransactionConflict, ValueTooLarge, WriteConditionFailed } from "./KvError.ts"
import { LocalLog, ObjectStore } from "./ObjectStore.ts"
import type { InvalidKey, InvalidMetadata, InvalidRange, ObjectStoreError } from "./ObjectStoreError.ts"

/**
 * Options of `layer`. Sizes and counts are whole numbers from 1 to 2^31 − 1, durations finite and
 * non-negative; anything else fails the layer with `InvalidOption` before the store is touched.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Longest key (default 4 KiB). */
  readonly maxKeyBytes?: number | undefined
  /** Longest value (default 256 KiB). */
  readonly maxValueBytes?: number | undefined
  /** Most bytes in one commit (default 16 MiB). */
  readonly maxCommitBytes?: number | undefined
  /** Commits wait while more than this many committed bytes are not durable (default 64 MiB). */
  readonly maxUnflushedBytes?: number | undefined
  /** Least time between two WAL puts, for stores priced per request (default 0: no timer). */
  readonly minFlushInterval?: Duration.Input | undefined
  /**
   * WAL objects put at once (default 4). More than one lets a commit start its put while earlier
   * ones are still in flight, instead of waiting for them; commits are still acknowledged in order.
   */
  readonly maxWalPutsInFlight?: number | undefined
  /**
   * Write the WAL to the store's local log when the context has one (`ObjectStore.LocalLog`, which
   * the directory backend's layers provide; default true): one append and `fdatasync` per group
   * commit instead of one new object. With false the WAL goes to objects, but the log is still
   * read on open (an older writer may have appended to it) and its covered parts collected.
   */
  readonly useLocalLog?: boolean | undefined
  /**
   * The memtable (the commits not yet in a run) is written as a sorted run once its changes reach
   * this many bytes (default 8 MiB)...
   */
  readonly memtableBytes?: number | undefined
  /** ...or after this many WAL objects (default 512). */
  readonly runFlushSegments?: number | undefined
  /**
   * Runs are merged (compacted) as they pile up: the newest runs of similar size, four at a time,
   * and all of them once there are more than this many (default 24), so that a read merges few.
   */
  readonly maxRuns?: number | undefined
  /** The largest run object a compaction writes (default 32 MiB): a bigger sorted run is split into several. */
  readonly maxRunBytes?: number | undefined
  /**
   * Memory for the blocks of runs read from the store (default 64 MiB), shared by every run: the
   * state itself lives in the store's runs, read on demand, and only the memtables, the runs'
   * block indexes and this cache are held in memory.
   */
  readonly cacheBytes?: number | undefined
  /** Objects no manifest needs are deleted once this old (default 10 minutes). */
  readonly gcMinAge?: Duration.Input | undefined
  /** Manifests always kept (default 10). */
  readonly keepManifests?: number | undefined
  /** Tries to win the race to open against other openers (default 10). */
  readonly openAttempts?: number | undefined
  /**
   * How often the writer checks that no newer writer opened the store (default 10 seconds;
   * `false`: never): one read of a small object, so that a writer with nothing to write learns
   * within this long that it was fenced. A writer that writes finds out at its next write anyway.
   */
  readonly fenceCheckInterval?: Duration.Input | false | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Entry {
  readonly key: Uint8Array
  readonly value: Uint8Array
}

/**
 * A key range: every key with `prefix`, or the keys in `[start, end)` (either bound may be left
 * out).
 *
 * @category models
 * @since 0.1.0
 */
export type Range =
  | { readonly prefix: Uint8Array }
  | { readonly start?: Uint8Array | undefined; readonly end?: Uint8Array | undefined }

/**
 * @category models
 * @since 0.1.0
 */
export interface ScanOptions {
  /** Most entries returned (default: all). */
  readonly limit?: number | undefined
  /** Highest key first. */
  readonly reverse?: boolean | undefined
}

/**
 * One write of a batch.
 *
 * @category models
 * @since 0.1.0
 */
export type WriteOp =
  | { readonly _tag: "Put"; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly _tag: "Delete"; readonly key: Uint8Array }
  | { readonly _tag: "Update"; readonly key: Uint8Array; readonly update: Updater }

/**
 * A new value from the current one, computed when the commit is applied (see `Transaction.update`).
 *
 * @category models
 * @since 0.1.0
 */
export type Updater = (current: Option.Option<Uint8Array>) => Uint8Array

/**
 * @category models
 * @since 0.1.0
 */
export interface WriteOptions {
  /** Complete only once durable (default true); `false` returns after the in-memory commit. */
  readonly durable?: boolean | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export interface WriteResult {
  /** The commit's sequence number: commits are applied, and recovered, in this order. */
  readonly seq: number
}

/**
 * @category models
 * @since 0.1.0
 */
export interface TransactionOptions extends WriteOptions {
  /**
   * `snapshot` (default): a conflict is another commit of a key this one writes.
   * `serializable`: also of a key this one read or a range it scanned (no write skew).
   */
  readonly isolation?: "snapshot" | "serializable" | undefined
  /** Re-runs of the function on conflict before failing `TransactionConflict` (default 10). */
  readonly maxRetries?: number | undefined
}

/**
 * What a transaction function reads and writes through. Reads see the state when the attempt
 * began plus the attempt's own writes (read-your-writes, repeatable reads).
 *
 * @category models
 * @since 0.1.0
 */
export interface Transaction {
  readonly get: (key: Uint8Array) => Effect.Effect<Option.Option<Uint8Array>, ReadError>
  readonly scan: (range: Range, options?: ScanOptions) => Effect.Effect<ReadonlyArray<Entry>, InvalidOption | ReadError>
  readonly put: (key: Uint8Array, value: Uint8Array) => Effect.Effect<void, ValueTooLarge>
  readonly delete: (key: Uint8Array) => Effect.Effect<void, ValueTooLarge>
  /**
   * Writes `update(current)`, with `current` the committed value at the moment the transaction
   * commits (after this transaction's own writes of the key), like a merge operator: it never
   * conflicts, so concurrent transactions updating one key (a counter) all commit, each update
   * applied exactly once, in commit order.
   */
  readonly update: (key: Uint8Array, update: Updater) => Effect.Effect<void, ValueTooLarge>
}

/**
 * Figures of the open writer.
 *
 * @category models
 * @since 0.1.0
 */
export interface Stats {
  readonly epoch: number
  readonly lastSeq: number
  readonly durableSeq: number
  readonly nextWalId: number
  readonly unflushedBytes: number
  /**
   * Entries in memory and in the runs: an upper bound of the keys (a key written or deleted again
   * since the runs holding it were last compacted counts once in each).
   */
  readonly keys: number
  /** Sorted runs of the current manifest, and their bytes. */
  readonly runs: number
  readonly runBytes: number
  /** Bytes of run blocks held in the block cache (at most `cacheBytes`). */
  readonly cacheBytes: number
  /** Blocks of runs read from the store since the KV opened. */
  readonly blockReads: number
}

/**
 * Any error of a commit: the writer stopped, a write too large, or what the commit had to read
 * (its expectations, the current values its updates start from) could not be read.
 *
 * @category errors
 * @since 0.1.0
 */
export type CommitError = Fenced | Closed | ValueTooLarge | ReadError

/**
 * Errors of a read: the state lives in the store's sorted runs as well as in memory, so a read
 * may have to fetch a block of a run, and that can fail: the store unreachable past its retries
 * (`ObjectStoreError`), or the bytes damaged (`Corrupt`: never a wrong value).
 *
 * @category errors
 * @since 0.4.0
 */
export type ReadError = Corrupt | ObjectStoreError

/**
 * Why a writer stopped for good: `Fenced` (a newer writer opened the store) or `Closed` (its layer
 * was closed, or it stopped after a failure it cannot recover from).
 *
 * @category errors
 * @since 0.1.0
 */
export type StopError = Fenced | Closed

/**
 * Whether `error` says that the writer stopped for good (`Fenced` or `Closed`): a commit that
 * failed so may still stand (applied, its WAL write landed), and nothing more can be committed.
 *
 * @category errors
 * @since 0.1.0
 */
export const isStopError = (error: unknown): error is StopError =>
  typeof error === "object" && error !== null && "_tag" in error && (error._tag === "Fenced" || error._tag === "Closed")

/**
 * @category models
 * @since 0.1.0
 */
export interface Service {
  /** The value of `key` in the committed state (a new copy). */
  readonly get: (key: Uint8Array) => Effect.Effect<Option.Option<Uint8Array>, ReadError>
  /** The entries of `range` in key order (or reversed), committed state. */
  readonly scan: (range: Range, options?: ScanOptions) => Effect.Effect<ReadonlyArray<Entry>, InvalidOption | ReadError>
  /**
   * Runs `f` as an optimistic transaction and commits its writes atomically, re-running it on
   * conflict up to `maxRetries` times. `f` may run several times: keep side effects out of it.
   */
  readonly transaction: <A, E, R>(
    f: (tx: Transaction) => Effect.Effect<A, E, R>,
    options?: TransactionOptions
  ) => Effect.Effect<A, E | CommitError | TransactionConflict | InvalidOption, R>
  /**
   * `transaction`, also telling the commit's sequence number (`undefined` when the transaction
   * wrote nothing).
   */
  readonly transactionWithSeq: <A, E, R>(
    f: (tx: Transaction) => Effect.Effect<A, E, R>,
    options?: TransactionOptions
  ) => Effect.Effect<{ readonly value: A; readonly seq: number | undefined }, E | CommitError | TransactionConflict | InvalidOption, R>
  /** Commits a batch of writes atomically; succeeds with its sequence number. */
  readonly write: (batch: ReadonlyArray<WriteOp>, options?: WriteOptions) => Effect.Effect<WriteResult, CommitError | InvalidOption>
  /**
   * `write`, only if each key of `expect` is present (or absent) at the moment of the commit,
   * checked and committed as one step: a cheap compare-and-write where a transaction would only
   * read to check existence.
   */
  readonly writeIf: (
    batch: ReadonlyArray<WriteOp>,
    expect: ReadonlyArray<{ readonly key: Uint8Array; readonly present: boolean }>,
    options?: WriteOptions & {
      /** Also checked at the moment of the commit; `false` fails it like an expectation. */
      readonly guard?: (() => boolean) | undefined
    }
  ) => Effect.Effect<WriteResult, CommitError | WriteConditionFailed | InvalidOption>
  /** Waits until everything committed so far is durable. */
  readonly flush: Effect.Effect<void, Fenced | Closed>
  readonly stats: Effect.Effect<Stats>
  /**
   * Why the writer stopped for good (`Fenced` or `Closed`), or none while it runs. Once it has
   * stopped, every commit fails with this at once and the store is not touched any more; reads
   * still see the last committed state, which may be stale (a newer writer may have changed it).
   */
  readonly failure: Effect.Effect<Option.Option<StopError>>
  /**
   * Waits until the writer stops for good, then fails with why; never succeeds. Race a wait
   * against it to end the wait when the writer is fenced.
   */
  readonly stopped: Effect.Effect<never, StopError>
}

/**
 * The KV service.
 *
 * @category services
 * @since 0.1.0
 */
export class Kv extends Context.Service<Kv, Service>()("bucketq/Kv") {}

/**
 * Errors of opening the store (`InvalidOption`: an option of `Options` broke its rule).
 *
 * @category errors
 * @since 0.1.0
 */
export type OpenError = Fenced | Corrupt | ObjectStoreError | InvalidKey | InvalidMetadata | InvalidRange | InvalidOption

/** The size limits of `options`, defaults filled in. */
const limitsOf = (options: Options | undefined): Engine.Limits => ({
  maxKeyBytes: options?.maxKeyBytes ?? 4096,
  maxValueBytes: options?.maxValueBytes ?? 256 * 1024,
  maxCommitBytes: options?.maxCommitBytes ?? 16 * 1024 * 1024
})

/** The block cache of `options` and the count of its reads, for one open KV. */
const runReads = (options: Options | undefined): RunReads => ({
  cache: BlockCache.make(options?.cacheBytes ?? 64 * 1024 * 1024),
  stats: makeStats()
})

/**
 * Opens the store as its writer and serves it, with the store's `LocalLog` if the context has one.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options?: Options): Effect.Effect<Service, OpenError, ObjectStore | Scope.Scope> =>
  Effect.gen(function*() {
    yield* checkOneEffect
    const invalid = kvOptionsError(options)
    if (invalid !== undefined) return yield* invalid
    const store = yield* ObjectStore
    const log = Option.getOrUndefined(yield* Effect.serviceOption(LocalLog))
    const reads = runReads(options)
    const recovered = yield* recover(store, log, { openAttempts: options?.openAttempts ?? 10, reads })
    const writer = yield* startWriter(store, log, recovered, {
      minFlushInterval: Duration.fromInputUnsafe(options?.minFlushInterval ?? 0),
      maxWalPutsInFlight: Math.max(1, options?.maxWalPutsInFlight ?? 4),
      useLocalLog: options?.useLocalLog ?? true,
      maxUnflushedBytes: options?.maxUnflushedBytes ?? 64 * 1024 * 1024,
      runFlushSegments: options?.runFlushSegments ?? 512,
      memtableBytes: options?.memtableBytes ?? 8 * 1024 * 1024,
      maxRuns: Math.max(1, options?.maxRuns ?? 24),
      maxRunBytes: options?.maxRunBytes ?? 32 * 1024 * 1024,
      reads,
      gcMinAge: Duration.fromInputUnsafe(options?.gcMinAge ?? "10 minutes"),
      keepManifests: options?.keepManifests ?? 10,
      fenceCheckInterval: options?.fenceCheckInterval === false
        ? undefined
        : Duration.fromInputUnsafe(options?.fenceCheckInterval ?? "10 seconds")
    })
    return serviceOver(Engine.make(writer, limitsOf(options)))
  })

/**
 * The KV over the `ObjectStore` in context: opened when the layer is built, flushed and closed
 * when its scope closes.
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<Kv, OpenError, ObjectStore> => Layer.effect(Kv, make(options))



/**
 * Errors of a read-only open: the store's, or `Corrupt` when an object or log part it reads fails
 * its checks (or history it needs is missing).
 *
 * @category errors
 * @since 0.3.0
 */
export type ReadOnlyOpenError = Corrupt | ObjectStoreError | InvalidKey | InvalidRange

/**
 * Loads the committed state of the store in context (and of its `LocalLog`, if the context has
 * one) and serves reads of it, without opening it as its writer: nothing is written at all (no
 * manifest, no WAL fence, no local-log fence or seal), so a writer running or starting meanwhile
 * is never fenced by it, and the store is left byte for byte as it was.
 *
 * **Details**
 *
 * The state is a snapshot: what was durable when it was loaded (up to the first WAL segment or
 * log append still in flight). `get` and `scan` read it; every write (`write`, `writeIf`,
 * `transaction`) fails with `Closed` saying the store is open read-only, `flush` does nothing,
 * `failure` is none and `stopped` never completes. `stats` gives the snapshot's epoch and last
 * sequence number.
 *
 * @category constructors
 * @since 0.3.0
 */
export const makeReadOnly: Effect.Effect<Service, ReadOnlyOpenError, ObjectStore> = Effect.gen(function*() {
  const snapshot = yield* loadSnapshot(yield* ObjectStore, Option.getOrUndefined(yield* Effect.serviceOption(LocalLog)), runReads(undefined))
  return serviceOver(Engine.makeReadOnly(snapshot, limitsOf(undefined)))
})

/**
 * The KV over the `ObjectStore` in context, read-only: see `makeReadOnly`.
 *
 * @category layers
 * @since 0.3.0
 */
export const layerReadOnly: Layer.Layer<Kv, ReadOnlyOpenError, ObjectStore> = Layer.effect(Kv, makeReadOnly)
