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
 * commit history that contains every acknowledged commit. The whole live state is kept in
 * memory; the on-storage runs already carry a block index and footer for bounded-memory reads
 * later.
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
import { fromLatin1, toLatin1 } from "./internal/binary.ts"
import type { BTree } from "./internal/btree.ts"
import { checkOneEffect } from "./internal/effectCopy.ts"
import * as Latin1Kv from "./internal/latin1Kv.ts"
import type { InvalidOption } from "./InvalidOption.ts"
import { kvOptionsError, scanOptionsError, transactionOptionsError, writeIfOptionsError } from "./kv/options.ts"
import { recover } from "./kv/recovery.ts"
import { loadSnapshot } from "./kv/snapshot.ts"
import {
  beginRead,
  commit as commitOps,
  endRead,
  inRange,
  type Op,
  opBytes,
  type ReadSet
} from "./kv/state.ts"
import { startWriter, type Writer } from "./kv/writer.ts"
import {
  Closed,
  type Corrupt,
  type Fenced,
  TransactionConflict,
  ValueTooLarge,
  WriteConditionFailed
} from "./KvError.ts"
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
  /** Write the changes as a sorted run after this many WAL objects (default 512)... */
  readonly runFlushSegments?: number | undefined
  /** ...or once they reach this many bytes (default 8 MiB). */
  readonly runFlushBytes?: number | undefined
  /**
   * With this many runs, the next one is a full image that replaces them (default 64); an image
   * is also written once the deltas since the last one weigh half as much as it.
   */
  readonly maxRuns?: number | undefined
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
  readonly get: (key: Uint8Array) => Effect.Effect<Option.Option<Uint8Array>>
  readonly scan: (range: Range, options?: ScanOptions) => Effect.Effect<ReadonlyArray<Entry>, InvalidOption>
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
  readonly keys: number
  readonly unflushedBytes: number
}

/**
 * Any error of a commit.
 *
 * @category errors
 * @since 0.1.0
 */
export type CommitError = Fenced | Closed | ValueTooLarge

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
  readonly get: (key: Uint8Array) => Effect.Effect<Option.Option<Uint8Array>>
  /** The entries of `range` in key order (or reversed), committed state. */
  readonly scan: (range: Range, options?: ScanOptions) => Effect.Effect<ReadonlyArray<Entry>, InvalidOption>
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

const increment = (prefix: string): string | undefined => {
  // the smallest latin1 string greater than every string with this prefix
  let i = prefix.length - 1
  while (i >= 0 && prefix.charCodeAt(i) === 0xff) i--
  return i < 0 ? undefined : prefix.slice(0, i) + String.fromCharCode(prefix.charCodeAt(i) + 1)
}

/** A range as latin1 bounds `[start, end)`. */
const bounds = (range: Range): readonly [string, string | undefined] => {
  if ("prefix" in range) {
    const prefix = toLatin1(range.prefix)
    return [prefix, increment(prefix)]
  }
  return [range.start === undefined ? "" : toLatin1(range.start), range.end === undefined ? undefined : toLatin1(range.end)]
}

/** Scans `tree` within bounds, with `overlay` (a transaction's writes) on top. */
const scanTree = (
  tree: BTree<string, string>,
  [start, end]: readonly [string, string | undefined],
  options: ScanOptions | undefined,
  overlay?: ReadonlyMap<string, string | null>
): Array<Entry> => {
  const limit = options?.limit ?? Number.POSITIVE_INFINITY
  const reverse = options?.reverse ?? false
  if (limit <= 0 || (end !== undefined && end <= start)) return []
  const pending = overlay === undefined ? [] : [...overlay.entries()].filter(([k]) => inRange(k, start, end))
  const shadowed = new Set(pending.map(([k]) => k))
  // enough from the tree that the overlay's deletes cannot leave the result short
  const want = limit + shadowed.size
  const fromTree: Array<readonly [string, string | null]> = []
  if (!reverse) {
    for (const [k, v] of tree.entries(start)) {
      if (end !== undefined && k >= end) break
      if (!shadowed.has(k)) fromTree.push([k, v])
      if (fromTree.length >= want) break
    }
  } else {
    const high = end === undefined ? tree.maxKey() : end
    if (high !== undefined) {
      for (const [k, v] of tree.entriesReversed(high, undefined, end !== undefined)) {
        if (k < start) break
        if (!shadowed.has(k)) fromTree.push([k, v])
        if (fromTree.length >= want) break
      }
    }
  }
  const merged = pending.length === 0 ? fromTree : [...fromTree, ...pending].sort(([a], [b]) =>
    reverse ? (a < b ? 1 : a > b ? -1 : 0) : (a < b ? -1 : a > b ? 1 : 0)
  )
  const out: Array<Entry> = []
  for (const [k, v] of merged) {
    if (v === null) continue
    out.push({ key: fromLatin1(k), value: fromLatin1(v) })
    if (out.length >= limit) break
  }
  return out
}

/** At most `limit` entries of `tree` in `[start, end)`, latin1 (the queue's fast path). */
const scanLatin1 = (tree: BTree<string, string>, start: string, end: string | undefined, limit: number) => {
  const out: Array<readonly [string, string]> = []
  if (limit <= 0) return out
  for (const entry of tree.entries(start)) {
    if (end !== undefined && entry[0] >= end) break
    out.push(entry)
    if (out.length >= limit) break
  }
  return out
}

/** `get` and `scan` over the committed state `tree()`. */
const reads = (tree: () => BTree<string, string>): Pick<Service, "get" | "scan"> => ({
  get: (key) =>
    Effect.sync(() => {
      const value = tree().get(toLatin1(key))
      return value === undefined ? Option.none() : Option.some(fromLatin1(value))
    }),
  scan: (range, options) =>
    Effect.suspend(() => {
      const invalid = scanOptionsError(options)
      return invalid === undefined ? Effect.succeed(scanTree(tree(), bounds(range), options)) : Effect.fail(invalid)
    })
})

interface Limits {
  readonly maxKeyBytes: number
  readonly maxValueBytes: number
  readonly maxCommitBytes: number
}

/** Why a key or value (bytes, or their latin1 string) is refused, or undefined. */
const tooLarge = (
  limits: Limits,
  key: { readonly length: number },
  value: { readonly length: number } | null | undefined
): ValueTooLarge | undefined =>
  key.length > limits.maxKeyBytes
    ? new ValueTooLarge({ what: "key", size: key.length, limit: limits.maxKeyBytes })
    : value !== undefined && value !== null && value.length > limits.maxValueBytes
    ? new ValueTooLarge({ what: "value", size: value.length, limit: limits.maxValueBytes })
    : undefined

/** Builds the service over an open writer. */
const makeService = (writer: Writer, limits: Limits): Service => {
  const state = writer.state

  /**
   * Commits in memory (after backpressure, if any), then waits for durability unless asked not
   * to. The common path allocates no generator: a commit is a few synchronous steps and one wait.
   */
  /** Resolves the updates against the state at this instant, into plain writes. */
  const resolveUpdates = (ops: Array<Op>, updates: ReadonlyMap<string, ReadonlyArray<Updater>>): ValueTooLarge | undefined => {
    for (const [key, updaters] of updates) {
      const own = ops.findIndex(([k]) => k === key)
      const base = own >= 0 ? ops[own]![1] : state.live.get(key)
      let value = base === undefined || base === null ? Option.none<Uint8Array>() : Option.some(fromLatin1(base))
      for (const f of updaters) value = Option.some(f(value))
      const bytes = Option.getOrThrow(value)
      if (bytes.length > limits.maxValueBytes) {
        return new ValueTooLarge({ what: "value", size: bytes.length, limit: limits.maxValueBytes })
      }
      const op: Op = [key, toLatin1(bytes)]
      if (own >= 0) ops[own] = op
      else ops.push(op)
    }
    return undefined
  }

  const commitAndWait = (
    writes: ReadonlyArray<Op>,
    durable: boolean,
    check?: { readonly readSeq: number; readonly reads?: ReadSet | undefined },
    updates?: ReadonlyMap<string, ReadonlyArray<Updater>>,
    expect?: ReadonlyArray<readonly [key: string, present: boolean]>,
    guard?: () => boolean
  ): Effect.Effect<"conflict" | number, CommitError | WriteConditionFailed> =>
    Effect.suspend(() => {
      if (state.failure !== undefined) return Effect.fail(state.failure)
      const ops: Array<Op> = updates === undefined || updates.size === 0 ? writes as Array<Op> : [...writes]
      if (ops.length === 0 && (updates === undefined || updates.size === 0)) return Effect.succeed(state.lastSeq)
      let bytes = 0
      for (const op of ops) bytes += opBytes(op)
      if (bytes > limits.maxCommitBytes) {
        return Effect.fail(new ValueTooLarge({ what: "commit", size: bytes, limit: limits.maxCommitBytes }))
      }
      const now = (): Effect.Effect<"conflict" | number, CommitError | WriteConditionFailed> => {
        if (state.failure !== undefined) return Effect.fail(state.failure)
        for (const [key, present] of expect ?? []) {
          if (state.live.has(key) !== present) return Effect.fail(new WriteConditionFailed({ key, expectedPresent: present }))
        }
        if (guard !== undefined && !guard()) return Effect.fail(new WriteConditionFailed({ key: "", expectedPresent: true }))
        // from here to the commit nothing yields: updates see exactly the state they commit onto
        if (updates !== undefined && updates.size > 0) {
          const refused = resolveUpdates(ops, updates)
          if (refused !== undefined) return Effect.fail(refused)
        }
        const batch = commitOps(state, ops, check, updates === undefined ? undefined : new Set(updates.keys()))
        if (batch === "conflict") return Effect.succeed("conflict")
        const seq = state.lastSeq
        return durable ? Effect.as(writer.durable(batch), seq) : Effect.succeed(seq)
      }
      return state.unflushedBytes > writer.maxUnflushedBytes ? Effect.flatMap(writer.backpressure, now) : now()
    })

  const write: Service["write"] = (batch, options) =>
    Effect.catchTag(writeIf(batch, [], options), "WriteConditionFailed", (e) => Effect.die(e))

  const writeIf: Service["writeIf"] = (batch, expect, options) =>
    Effect.suspend((): Effect.Effect<WriteResult, CommitError | WriteConditionFailed | InvalidOption> => {
      const invalid = writeIfOptionsError(options)
      if (invalid !== undefined) return Effect.fail(invalid)
      const ops: Array<Op> = []
      const updates = new Map<string, Array<Updater>>()
      for (const op of batch) {
        const refused = tooLarge(limits, op.key, op._tag === "Put" ? op.value : undefined)
        if (refused !== undefined) return Effect.fail(refused)
        const key = toLatin1(op.key)
        if (op._tag === "Update") {
          updates.set(key, [...(updates.get(key) ?? []), op.update])
          continue
        }
        if (updates.has(key)) {
          return Effect.die(new Error("a batch cannot put or delete a key after updating it"))
        }
        ops.push([key, op._tag === "Put" ? toLatin1(op.value) : null])
      }
      const expected = expect.map(({ key, present }) => [toLatin1(key), present] as const)
      return Effect.map(commitAndWait(ops, options?.durable ?? true, undefined, updates, expected, options?.guard), (seq) => ({
        seq: seq === "conflict" ? state.lastSeq : seq
      }))
    })

  const transactionWithSeq: Service["transactionWithSeq"] = (f, options) => {
    const serializable = options?.isolation === "serializable"
    const maxRetries = options?.maxRetries ?? 10
    const durable = options?.durable ?? true
    const attempt = () =>
      Effect.suspend(() => {
        if (state.failure !== undefined) return Effect.fail(state.failure)
        const readSeq = state.lastSeq
        const snapshot = state.live.clone()
        const writes = new Map<string, string | null>()
        const updates = new Map<string, Array<Updater>>()
        const readKeys = new Set<string>()
        const ranges: Array<readonly [string, string | undefined]> = []
        beginRead(state, readSeq)
        const tx: Transaction = {
          get: (key) =>
            Effect.sync(() => {
              const k = toLatin1(key)
              const value = writes.has(k) ? writes.get(k) : snapshot.get(k)
              if (serializable && !writes.has(k)) readKeys.add(k)
              let result = value === undefined || value === null ? Option.none<Uint8Array>() : Option.some(fromLatin1(value))
              for (const f of updates.get(k) ?? []) result = Option.some(f(result))
              return result
            }),
          scan: (range, scanOptions) =>
            Effect.suspend(() => {
              const invalid = scanOptionsError(scanOptions)
              if (invalid !== undefined) return Effect.fail(invalid)
              const b = bounds(range)
              if (serializable) ranges.push(b)
              return Effect.succeed(scanTree(snapshot, b, scanOptions, writes))
            }),
          put: (key, value) =>
            Effect.suspend(() => {
              const refused = tooLarge(limits, key, value)
              if (refused !== undefined) return Effect.fail(refused)
              const k = toLatin1(key)
              writes.set(k, toLatin1(value))
              updates.delete(k)
              return Effect.void
            }),
          delete: (key) =>
            Effect.suspend(() => {
              const refused = tooLarge(limits, key, undefined)
              if (refused !== undefined) return Effect.fail(refused)
              const k = toLatin1(key)
              writes.set(k, null)
              updates.delete(k)
              return Effect.void
            }),
          update: (key, update) =>
            Effect.suspend(() => {
              const refused = tooLarge(limits, key, undefined)
              if (refused !== undefined) return Effect.fail(refused)
              const k = toLatin1(key)
              updates.set(k, [...(updates.get(k) ?? []), update])
              return Effect.void
            })
        }
        return f(tx).pipe(
          Effect.flatMap((a) =>
            Effect.map(
              commitAndWait([...writes.entries()], durable, {
                readSeq,
                reads: serializable ? { keys: readKeys, ranges } : undefined
              }, updates).pipe(Effect.catchTag("WriteConditionFailed", (e) => Effect.die(e))), // no conditions here
              (outcome) => ({ outcome, value: a, wrote: writes.size + updates.size > 0 })
            )
          ),
          Effect.ensuring(Effect.sync(() => endRead(state, readSeq)))
        )
      })
    const invalid = transactionOptionsError(options)
    if (invalid !== undefined) return Effect.fail(invalid)
    return Effect.gen(function*() {
      for (let tries = 1;; tries++) {
        const result = yield* attempt()
        if (result.outcome !== "conflict") {
          return { value: result.value, seq: result.wrote ? result.outcome : undefined }
        }
        if (tries > maxRetries) return yield* new TransactionConflict({ attempts: tries })
      }
    })
  }

  /** The job queue's latin1 fast path (see `internal/latin1Kv.ts`): `writeIf` without the byte conversions. */
  const writeLatin1: Latin1Kv.Latin1Kv["writeIf"] = (ops, updateList, expect, options) =>
    Effect.suspend(() => {
      for (const [key, value] of ops) {
        const refused = tooLarge(limits, key, value)
        if (refused !== undefined) return Effect.fail(refused)
      }
      const updates = new Map<string, Array<Updater>>()
      for (const [key, update] of updateList) {
        const refused = tooLarge(limits, key, undefined)
        if (refused !== undefined) return Effect.fail(refused)
        const list = updates.get(key)
        if (list === undefined) updates.set(key, [update])
        else list.push(update)
      }
      return Effect.map(commitAndWait(ops, options?.durable ?? true, undefined, updates, expect, options?.guard), (seq) => ({
        seq: seq === "conflict" ? state.lastSeq : seq
      }))
    })
  const latin1: Latin1Kv.Latin1Kv = {
    scan: (start, end, limit) => Effect.sync(() => scanLatin1(state.live, start, end, limit)),
    scanNow: (start, end, limit) => scanLatin1(state.live, start, end, limit),
    writeIf: writeLatin1,
    // without expectations or a guard a commit cannot fail them: no step to turn that into a defect
    write: (ops, updates, options) => writeLatin1(ops, updates, [], options) as Effect.Effect<WriteResult, CommitError>
  }

  return Latin1Kv.attach<Service>({
    ...reads(() => state.live),
    transaction: (f, options) => Effect.map(transactionWithSeq(f, options), (result) => result.value),
    transactionWithSeq,
    write,
    writeIf,
    flush: writer.flush,
    stats: Effect.sync(() => ({
      epoch: state.epoch,
      lastSeq: state.lastSeq,
      durableSeq: state.durableSeq,
      nextWalId: state.nextWalId,
      keys: state.live.size,
      unflushedBytes: state.unflushedBytes
    })),
    failure: Effect.sync(() => Option.fromUndefinedOr(state.failure)),
    stopped: writer.stopped
  }, latin1)
}

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
    const recovered = yield* recover(store, log, { openAttempts: options?.openAttempts ?? 10 })
    const writer = yield* startWriter(store, log, recovered, {
      minFlushInterval: Duration.fromInputUnsafe(options?.minFlushInterval ?? 0),
      maxWalPutsInFlight: Math.max(1, options?.maxWalPutsInFlight ?? 4),
      useLocalLog: options?.useLocalLog ?? true,
      maxUnflushedBytes: options?.maxUnflushedBytes ?? 64 * 1024 * 1024,
      runFlushSegments: options?.runFlushSegments ?? 512,
      runFlushBytes: options?.runFlushBytes ?? 8 * 1024 * 1024,
      maxRuns: Math.max(1, options?.maxRuns ?? 64),
      gcMinAge: Duration.fromInputUnsafe(options?.gcMinAge ?? "10 minutes"),
      keepManifests: options?.keepManifests ?? 10,
      fenceCheckInterval: options?.fenceCheckInterval === false
        ? undefined
        : Duration.fromInputUnsafe(options?.fenceCheckInterval ?? "10 seconds")
    })
    return makeService(writer, {
      maxKeyBytes: options?.maxKeyBytes ?? 4096,
      maxValueBytes: options?.maxValueBytes ?? 256 * 1024,
      maxCommitBytes: options?.maxCommitBytes ?? 16 * 1024 * 1024
    })
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
  const snapshot = yield* loadSnapshot(yield* ObjectStore, Option.getOrUndefined(yield* Effect.serviceOption(LocalLog)))
  const refused = Effect.fail(new Closed({ detail: "the store is open read-only: nothing can be written through it" }))
  return Latin1Kv.attach<Service>({
    ...reads(() => snapshot.live),
    transaction: () => refused,
    transactionWithSeq: () => refused,
    write: () => refused,
    writeIf: () => refused,
    flush: Effect.void,
    stats: Effect.sync(() => ({
      epoch: snapshot.epoch,
      lastSeq: snapshot.lastSeq,
      durableSeq: snapshot.lastSeq,
      nextWalId: 0,
      keys: snapshot.live.size,
      unflushedBytes: 0
    })),
    failure: Effect.succeed(Option.none()),
    stopped: Effect.never
  }, {
    scan: (start, end, limit) => Effect.sync(() => scanLatin1(snapshot.live, start, end, limit)),
    scanNow: (start, end, limit) => scanLatin1(snapshot.live, start, end, limit),
    writeIf: () => refused,
    write: () => refused
  })
})

/**
 * The KV over the `ObjectStore` in context, read-only: see `makeReadOnly`.
 *
 * @category layers
 * @since 0.3.0
 */
export const layerReadOnly: Layer.Layer<Kv, ReadOnlyOpenError, ObjectStore> = Layer.effect(Kv, makeReadOnly)
