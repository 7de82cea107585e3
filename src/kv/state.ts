/**
 * The in-memory side of the KV writer: the memtable (commits since the last freeze), the frozen
 * memtables waiting for their runs, the runs of the manifest (read on demand), sequence numbers,
 * the conflict log of optimistic transactions and the WAL buffer awaiting its flush. Every
 * function here is synchronous: in a single-threaded runtime the commit critical section needs no
 * lock.
 *
 * Reads merge `sources`, newest first: the memtable, the frozen ones, the runs (`merge.ts`). A
 * delete is kept in the memtable as a tombstone (`null`) while an older source may hold the key;
 * with no older source it simply removes the key.
 *
 * @internal
 */
import { Deferred } from "effect"
import type * as WalSegment from "../../schema/WalSegment.ts"
import { BTree } from "../internal/btree.ts"
import type { Closed, Fenced } from "../KvError.ts"
import { type Hold, holder, type Memtable, type Source } from "./merge.ts"
import type { RunReads } from "./recovery.ts"
import type { RunReader } from "./runReader.ts"

/** A write: a value, or `null` for a delete. */
export type Op = readonly [key: string, value: string | null]

/** What stops the writer for good. */
export type Failure = Fenced | Closed

/** A WAL batch being filled, then flushed; `done` settles when its object is durable. */
export interface Batch {
  readonly commits: Array<WalSegment.Commit>
  bytes: number
  readonly done: Deferred.Deferred<void, Failure>
}

/** Reads and scanned ranges of a serializable transaction, for conflict checks. */
export interface ReadSet {
  readonly keys: ReadonlySet<string>
  readonly ranges: ReadonlyArray<readonly [start: string, end: string | undefined]>
}

/** The conflict check of a transaction commit. */
export interface ConflictCheck {
  readonly readSeq: number
  readonly reads?: ReadSet | undefined
}

/** A memtable frozen at a WAL batch boundary, read until its run is in a manifest. */
export interface Frozen {
  readonly tree: Memtable
  /** The WAL id of the batch it ends with, and its last sequence number. */
  readonly walId: number
  readonly lastSeq: number
  /** The bytes of the ops applied to it (overwritten ones too): an upper bound of its run's size. */
  readonly bytes: number
}

/** The state of one open writer. */
export interface State {
  /** Commits since the last freeze (deletes as tombstones while an older source may hold the key). */
  mem: Memtable
  /** Bytes of the ops applied to `mem`. */
  memBytes: number
  segmentsSinceFreeze: number
  /** Frozen memtables, newest first. */
  frozen: Array<Frozen>
  /** The runs of the current manifest, newest first. */
  runs: ReadonlyArray<RunReader>
  /** What reads merge, newest first: `mem`, the frozen trees, the runs (see `refreshSources`). */
  sources: ReadonlyArray<Source>
  /** The block cache shared by every run, and where their GETs are counted. */
  readonly reads: RunReads
  /** Reads in progress (waiting for the store) and open transactions, by run id: GC leaves those runs alone. */
  readonly inUse: Map<string, number>
  /** Marks the runs of sources in use (in `inUse`) until released (see `merge.Hold`). */
  readonly hold: Hold
  lastSeq: number
  durableSeq: number
  readonly epoch: number
  failure: Failure | undefined
  /** Id the next WAL batch gets. */
  nextWalId: number
  /** Highest WAL id known durable. */
  durableWalId: number
  batch: Batch
  /** Bytes committed and not yet durable (the filling batch and the one in flight). */
  unflushedBytes: number
  /** Read sequence numbers of open transactions, with counts. */
  readonly active: Map<number, number>
  /** Write sets of commits, kept while a transaction that began before them is open. */
  log: Array<{ readonly seq: number; readonly keys: ReadonlySet<string> }>
  /** Called after each commit, to wake the flusher. */
  readonly onCommit: () => void
  /** Told each key put under their prefix, as its commit is applied (see `Engine.watchPuts`). */
  readonly watchers: Array<{ readonly prefix: string; readonly put: (key: string) => void }>
}

/** Sets `state.sources` from its memtable, frozen memtables and runs (after any of them changed). */
export const refreshSources = (state: Pick<State, "mem" | "frozen" | "runs" | "sources">): void => {
  const sources: Array<Source> = [state.mem]
  for (const f of state.frozen) sources.push(f.tree)
  for (const run of state.runs) sources.push(run)
  state.sources = sources
}

/** @internal */
export const newBatch = (): Batch => ({ commits: [], bytes: 0, done: Deferred.makeUnsafe<void, Failure>() })

/** @internal */
export const makeState = (options: {
  readonly mem: Memtable
  readonly memBytes: number
  readonly segmentsSinceFreeze: number
  readonly runs: ReadonlyArray<RunReader>
  readonly reads: RunReads
  readonly lastSeq: number
  readonly epoch: number
  readonly nextWalId: number
  readonly onCommit: () => void
}): State => {
  const inUse = new Map<string, number>()
  const state: State = {
    mem: options.mem,
    memBytes: options.memBytes,
    segmentsSinceFreeze: options.segmentsSinceFreeze,
    frozen: [],
    runs: options.runs,
    sources: [],
    reads: options.reads,
    inUse,
    hold: holder(inUse),
    lastSeq: options.lastSeq,
    durableSeq: options.lastSeq,
    epoch: options.epoch,
    failure: undefined,
    nextWalId: options.nextWalId,
    durableWalId: options.nextWalId - 1,
    batch: newBatch(),
    unflushedBytes: 0,
    active: new Map(),
    log: [],
    onCommit: options.onCommit,
    watchers: []
  }
  refreshSources(state)
  return state
}

/** @internal */
export const opBytes = (op: Op): number => op[0].length + (op[1]?.length ?? 0) + 8

/** A new memtable, ordered by latin1 keys, which is byte order. */
export const newTree = (): Memtable => new BTree<string, string | null>()

/**
 * Applies `[key, value]` to `mem`: a delete is a tombstone when `older` (an older source may
 * hold the key), else the key is removed.
 */
export const applyOp = (mem: Memtable, key: string, value: string | null, older: boolean): void => {
  if (value === null && !older) mem.delete(key)
  else mem.set(key, value)
}

/** Whether a key is in `[start, end)` (`end` undefined: no upper bound). */
export const inRange = (key: string, start: string, end: string | undefined): boolean =>
  key >= start && (end === undefined || key < end)

/** Whether a commit after `check.readSeq` wrote a key this one writes or (serializable) read. */
const conflicts = (
  state: State,
  writes: ReadonlyArray<Op>,
  check: ConflictCheck,
  unchecked: ReadonlySet<string> | undefined
): boolean => {
  for (const entry of state.log) {
    if (entry.seq <= check.readSeq) continue
    for (const [key] of writes) if (entry.keys.has(key) && unchecked?.has(key) !== true) return true
    const reads = check.reads
    if (reads === undefined) continue
    for (const key of entry.keys) {
      if (reads.keys.has(key)) return true
      for (const [start, end] of reads.ranges) if (inRange(key, start, end)) return true
    }
  }
  return false
}

/**
 * Commits `ops` in memory: conflict check, next sequence number, apply, append to the WAL batch,
 * log the write set while transactions are open. Writes of `unchecked` keys (updates computed at
 * commit) take no part in the conflict check. Returns the batch whose flush makes it durable, or
 * "conflict".
 */
export const commit = (
  state: State,
  ops: ReadonlyArray<Op>,
  check?: ConflictCheck,
  unchecked?: ReadonlySet<string>
): Batch | "conflict" => {
  if (check !== undefined && conflicts(state, ops, check, unchecked)) return "conflict"
  const seq = ++state.lastSeq
  let bytes = 0
  const older = state.sources.length > 1
  const watchers = state.watchers
  for (const op of ops) {
    applyOp(state.mem, op[0], op[1], older)
    bytes += opBytes(op)
    if (watchers.length > 0 && op[1] !== null) for (const w of watchers) if (op[0].startsWith(w.prefix)) w.put(op[0])
  }
  state.memBytes += bytes
  const batch = state.batch
  batch.commits.push({ seq, ops })
  batch.bytes += bytes
  state.unflushedBytes += bytes
  if (state.active.size > 0) state.log.push({ seq, keys: new Set(ops.map(([key]) => key)) })
  state.onCommit()
  return batch
}

/** Registers an open transaction reading at `readSeq`. */
export const beginRead = (state: State, readSeq: number): void => {
  state.active.set(readSeq, (state.active.get(readSeq) ?? 0) + 1)
}

/** Unregisters a transaction and trims the conflict log to what open ones still need. */
export const endRead = (state: State, readSeq: number): void => {
  const count = (state.active.get(readSeq) ?? 1) - 1
  if (count === 0) state.active.delete(readSeq)
  else state.active.set(readSeq, count)
  if (state.active.size === 0) {
    state.log = []
    return
  }
  let oldest = Number.POSITIVE_INFINITY
  for (const seq of state.active.keys()) oldest = Math.min(oldest, seq)
  let drop = 0
  while (drop < state.log.length && state.log[drop]!.seq <= oldest) drop++
  if (drop > 0) state.log = state.log.slice(drop)
}
