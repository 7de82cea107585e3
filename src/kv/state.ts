/**
 * The in-memory side of the KV writer: the live sorted map, sequence numbers, the conflict log of
 * optimistic transactions, the WAL buffer awaiting its flush, and the delta awaiting its run.
 * Every function here is synchronous: in a single-threaded runtime the commit critical section
 * needs no lock.
 *
 * @internal
 */
import { Deferred } from "effect"
import type * as WalSegment from "../../schema/WalSegment.ts"
import { BTree } from "../internal/btree.ts"
import type { Closed, Fenced } from "../KvError.ts"

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

/** The state of one open writer. */
export interface State {
  live: BTree<string, string>
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
  /** Changes since the last frozen delta (for the next run). */
  delta: Map<string, string | null>
  deltaBytes: number
  segmentsSinceDelta: number
  /** Read sequence numbers of open transactions, with counts. */
  readonly active: Map<number, number>
  /** Write sets of commits, kept while a transaction that began before them is open. */
  log: Array<{ readonly seq: number; readonly keys: ReadonlySet<string> }>
  /** Called after each commit, to wake the flusher. */
  readonly onCommit: () => void
}

/** @internal */
export const newBatch = (): Batch => ({ commits: [], bytes: 0, done: Deferred.makeUnsafe<void, Failure>() })

/** @internal */
export const makeState = (options: {
  readonly live: BTree<string, string>
  readonly lastSeq: number
  readonly epoch: number
  readonly nextWalId: number
  readonly delta: Map<string, string | null>
  readonly deltaBytes: number
  readonly segmentsSinceDelta: number
  readonly onCommit: () => void
}): State => ({
  live: options.live,
  lastSeq: options.lastSeq,
  durableSeq: options.lastSeq,
  epoch: options.epoch,
  failure: undefined,
  nextWalId: options.nextWalId,
  durableWalId: options.nextWalId - 1,
  batch: newBatch(),
  unflushedBytes: 0,
  delta: options.delta,
  deltaBytes: options.deltaBytes,
  segmentsSinceDelta: options.segmentsSinceDelta,
  active: new Map(),
  log: [],
  onCommit: options.onCommit
})

/** @internal */
export const opBytes = (op: Op): number => op[0].length + (op[1]?.length ?? 0) + 8

/** A new tree ordered by latin1 keys, which is byte order. */
export const newTree = (): BTree<string, string> => new BTree<string, string>()

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
  for (const op of ops) {
    const [key, value] = op
    if (value === null) state.live.delete(key)
    else state.live.set(key, value)
    state.delta.set(key, value)
    bytes += opBytes(op)
  }
  state.deltaBytes += bytes
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
