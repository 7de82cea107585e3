/**
 * The KV's one write vocabulary: keys and values as latin1 strings (one char per byte, the form
 * the memtables and runs keep them in), every commit built as `Changes` (puts, deletes, and
 * updates resolved at commit) and committed through one function, `commit` below, whether it
 * comes from a plain batch (`write`, `writeIf`) or an optimistic transaction. The public byte API
 * of `Kv.ts` is an adapter over this (`kv/bytes.ts`), and the job queue stages every mutation here
 * directly.
 *
 * The engine trusts its caller: options are the caller's own (the byte API checks a user's at its
 * edge), and sizes are checked at commit (`ValueTooLarge`, nothing applied). Reads merge the
 * state's sources (`state.ts`, `merge.ts`): synchronous while what they need is in memory, a
 * ranged read of a run's block otherwise. The writes of a transaction are synchronous. A commit
 * that must read (its expectations, its updates) reads from memory inside its critical section;
 * what is not there is fetched first, and the commit tries again.
 *
 * @internal
 */
import { Effect } from "effect"
import type { CommitError, ReadError, Service, Stats, StopError, WriteResult } from "../Kv.ts"
import { Closed, TransactionConflict, ValueTooLarge, WriteConditionFailed } from "../KvError.ts"
import * as Merge from "./merge.ts"
import type { RunReads } from "./recovery.ts"
import { type NotCached, notCached, type RunReader } from "./runReader.ts"
import { beginRead, commit as commitOps, endRead, newTree, type Op, opBytes, type ReadSet } from "./state.ts"
import type { Writer } from "./writer.ts"

/** A new value (latin1) from the current one (undefined: none), computed when the commit is applied. */
export type Updater = (current: string | undefined) => string

/** The latin1 entries of a scan, in key order (or reversed). */
export type Entries = Array<readonly [key: string, value: string]>

/** The writes of one commit being built. Later writes of a key replace earlier ones. */
export interface Writes {
  readonly put: (key: string, value: string) => void
  readonly delete: (key: string) => void
  /**
   * Writes `update(current)` with `current` the value at the moment of the commit (after this
   * commit's own put or delete of the key): never a conflict, like a merge operator.
   */
  readonly update: (key: string, update: Updater) => void
}

/**
 * The writes of one commit: a plain batch (`Engine.write`, `Engine.writeIf`), or what a
 * transaction function staged.
 */
export class Changes implements Writes {
  /** Puts (a value) and deletes (`null`), by key. */
  readonly writes = new Map<string, string | null>()
  /** Updates by key, applied in order on top of `writes` at the commit. */
  readonly updates = new Map<string, Array<Updater>>()

  put(key: string, value: string): void {
    this.writes.set(key, value)
    if (this.updates.size > 0) this.updates.delete(key)
  }

  delete(key: string): void {
    this.writes.set(key, null)
    if (this.updates.size > 0) this.updates.delete(key)
  }

  update(key: string, update: Updater): void {
    const list = this.updates.get(key)
    if (list === undefined) this.updates.set(key, [update])
    else list.push(update)
  }

  /** Whether nothing was staged. */
  get isEmpty(): boolean {
    return this.writes.size === 0 && this.updates.size === 0
  }
}

/** Reads of the committed state (an engine's) or of a transaction's snapshot under its own writes. */
export interface Reads {
  /** The value of `key` (undefined: none). */
  readonly get: (key: string) => Effect.Effect<string | undefined, ReadError>
  /** At most `limit` entries in `[start, end)`, in key order (or reversed). */
  readonly scan: (start: string, end: string | undefined, limit?: number, reverse?: boolean) => Effect.Effect<Entries, ReadError>
}

/**
 * What a transaction function reads and writes through: reads see its snapshot under its own
 * writes, updates staged on a key applied.
 */
export interface Tx extends Writes, Reads {}

/** Options of a commit. */
export interface CommitOptions {
  /** Complete only once durable (default true). */
  readonly durable?: boolean | undefined
}

/** Options of a conditional commit. */
export interface WriteIfOptions extends CommitOptions {
  /** Checked at the moment of the commit; `false` fails it like an expectation. */
  readonly guard?: (() => boolean) | undefined
}

/** Options of a transaction. */
export interface TxOptions extends CommitOptions {
  /** `serializable`: a commit of a key read or a range scanned is a conflict too (default snapshot). */
  readonly isolation?: "snapshot" | "serializable" | undefined
  /** Re-runs of the function on conflict before `TransactionConflict` (default 10). */
  readonly maxRetries?: number | undefined
}

/** Keys and values a commit may hold. */
export interface Limits {
  readonly maxKeyBytes: number
  readonly maxValueBytes: number
  readonly maxCommitBytes: number
}

/** The engine of one open KV (see the module's header). */
export interface Engine extends Reads {
  readonly limits: Limits
  /**
   * Reads for a synchronous caller (a metric's gauge, read when metrics are exported): the
   * committed value or entries as `get` and `scan` would answer, or `notResident` when answering
   * would need a read from the store.
   */
  readonly resident: {
    readonly get: (key: string) => string | undefined | NotResident
    readonly scan: (start: string, end: string | undefined, limit?: number) => Entries | NotResident
  }
  /**
   * Calls `put` with the key of every put under `prefix`, as its commit is applied (synchronously,
   * inside it): what lets a reader keep a bound below which a key range holds only deletes (see
   * `queue/floors.ts`). A read-only engine commits nothing, and never calls it.
   */
  readonly watchPuts: (prefix: string, put: (key: string) => void) => void
  /** Commits `changes`, no conditions. */
  readonly write: (changes: Changes, options?: CommitOptions) => Effect.Effect<WriteResult, CommitError>
  /** Commits `changes` only if each key of `expect` is present (or absent) and `guard` holds, as one step. */
  readonly writeIf: (
    changes: Changes,
    expect: ReadonlyArray<readonly [key: string, present: boolean]>,
    options?: WriteIfOptions
  ) => Effect.Effect<WriteResult, CommitError | WriteConditionFailed>
  /**
   * Runs `f` as an optimistic transaction and commits what it staged, re-running it on conflict.
   * `seq` is undefined when it staged nothing.
   */
  readonly transaction: <A, E, R>(
    f: (tx: Tx) => Effect.Effect<A, E, R>,
    options?: TxOptions
  ) => Effect.Effect<{ readonly value: A; readonly seq: number | undefined }, E | CommitError | TransactionConflict, R>
  readonly flush: Effect.Effect<void, StopError>
  readonly stats: Effect.Effect<Stats>
  /** Why the writer stopped, or undefined while it runs. */
  readonly failure: () => StopError | undefined
  readonly stopped: Effect.Effect<never, StopError>
}

/** What a resident read answers when the answer is not in memory: a block of a run is not cached. */
export const notResident: NotCached = notCached

/** The type of `notResident`. */
export type NotResident = NotCached

/** The smallest latin1 string after every string that starts with `prefix` (undefined: none). */
export const afterPrefix = (prefix: string): string | undefined => {
  let i = prefix.length - 1
  while (i >= 0 && prefix.charCodeAt(i) === 0xff) i--
  return i < 0 ? undefined : prefix.slice(0, i) + String.fromCharCode(prefix.charCodeAt(i) + 1)
}

/** Why a key or value (bytes, or their latin1 string) is refused, or undefined. */
export const tooLarge = (
  limits: Limits,
  key: { readonly length: number },
  value: { readonly length: number } | null | undefined
): ValueTooLarge | undefined =>
  key.length > limits.maxKeyBytes
    ? new ValueTooLarge({ what: "key", size: key.length, limit: limits.maxKeyBytes })
    : value !== undefined && value !== null && value.length > limits.maxValueBytes
    ? new ValueTooLarge({ what: "value", size: value.length, limit: limits.maxValueBytes })
    : undefined

/** Resident reads over the sources `sources()` gives at the moment of each read. */
const residentOf = (sources: () => ReadonlyArray<Merge.Source>): Engine["resident"] => ({
  get: (key) => Merge.getResident(sources(), key),
  scan: (start, end, limit) => Merge.scanResident(sources(), start, end, limit)
})

/** The sources a transaction reads: its own staged puts and deletes over its snapshot's. */
const withOwnWrites = (snapshot: ReadonlyArray<Merge.Source>, writes: ReadonlyMap<string, string | null>): ReadonlyArray<Merge.Source> => {
  if (writes.size === 0) return snapshot
  const own = newTree()
  for (const [key, value] of writes) own.set(key, value)
  return [own, ...snapshot]
}

/** Values read from the store for a commit, with the state they were read in. */
interface Fetched {
  readonly seq: number
  readonly sources: ReadonlyArray<Merge.Source>
  readonly values: ReadonlyMap<string, string | undefined>
}

const noValues: ReadonlyMap<string, string | undefined> = new Map()

/** The figures of a state. */
const statsOf = (state: {
  readonly mem: Merge.Memtable
  readonly frozen: ReadonlyArray<{ readonly tree: Merge.Memtable }>
  readonly runs: ReadonlyArray<RunReader>
  readonly reads: RunReads
}) => {
  let keys = state.mem.size
  for (const f of state.frozen) keys += f.tree.size
  let runBytes = 0
  for (const run of state.runs) {
    keys += run.entries
    runBytes += run.bytes
  }
  return { keys, runs: state.runs.length, runBytes, cacheBytes: state.reads.cache.stats().bytes, blockReads: state.reads.stats.gets }
}

/** What a commit is checked against, besides sizes. */
interface Conditions {
  /** A transaction's read point (and, serializable, what it read). */
  readonly check?: { readonly readSeq: number; readonly reads?: ReadSet | undefined } | undefined
  readonly expect?: ReadonlyArray<readonly [key: string, present: boolean]> | undefined
  readonly guard?: (() => boolean) | undefined
}

/** The first write of `changes` refused for its size, or undefined. */
const refusedSize = (limits: Limits, changes: Changes): ValueTooLarge | undefined => {
  for (const [key, value] of changes.writes) {
    const refused = tooLarge(limits, key, value)
    if (refused !== undefined) return refused
  }
  for (const key of changes.updates.keys()) {
    const refused = tooLarge(limits, key, undefined)
    if (refused !== undefined) return refused
  }
  return undefined
}

/** The engine of an open writer. */
export const make = (writer: Writer, limits: Limits): Engine => {
  const state = writer.state

  /**
   * Reads `keys` (what `readNow` found missing) from the store. The values stand for the state
   * as long as it is the same: no commit since (`seq`) and the same sources.
   */
  const fetch = (keys: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      const seq = state.lastSeq
      const sources = state.sources
      return Effect.map(
        Effect.forEach(keys, (key) => Merge.get(sources, key, state.hold)),
        (values): Fetched => ({ seq, sources, values: new Map(keys.map((key, i) => [key, values[i]])) })
      )
    })

  /**
   * The committed values of `keys` at this instant: from memory, or from `fetched` while the
   * state is still the one it was read in; else the keys to fetch first (a block of a run that
   * may hold one is not in the cache).
   */
  const readNow = (keys: ReadonlyArray<string>, fetched: Fetched | undefined): Map<string, string | undefined> | Array<string> => {
    const stands = fetched !== undefined && fetched.seq === state.lastSeq && fetched.sources === state.sources
    const values = new Map<string, string | undefined>()
    let missing: Array<string> | undefined
    for (const key of keys) {
      const value = Merge.getResident(state.sources, key)
      if (value !== notCached) values.set(key, value)
      else if (stands) values.set(key, fetched.values.get(key))
      else (missing ??= []).push(key)
    }
    return missing ?? values
  }

  /** The keys a commit reads: its expectations, and the current values its updates start from. */
  const keysRead = (changes: Changes, conditions: Conditions): Array<string> => {
    const keys: Array<string> = []
    for (const [key] of conditions.expect ?? []) keys.push(key)
    for (const key of changes.updates.keys()) if (!changes.writes.has(key)) keys.push(key)
    return keys
  }

  /** Resolves the updates of `changes` against `current` (values at this instant), into plain writes of `ops`. */
  const resolveUpdates = (ops: Array<Op>, changes: Changes, current: ReadonlyMap<string, string | undefined>): ValueTooLarge | undefined => {
    for (const [key, updaters] of changes.updates) {
      const own = changes.writes.has(key)
      const base = own ? changes.writes.get(key) : current.get(key)
      let value = base === null ? undefined : base
      for (const f of updaters) value = f(value)
      if (value!.length > limits.maxValueBytes) {
        return new ValueTooLarge({ what: "value", size: value!.length, limit: limits.maxValueBytes })
      }
      if (own) ops[ops.findIndex(([k]) => k === key)] = [key, value!]
      else ops.push([key, value!])
    }
    return undefined
  }

  /**
   * The one commit: sizes, then (after backpressure, if any) the conditions, the updates resolved,
   * the in-memory commit, and the wait for durability unless asked not to. From the conditions to
   * the in-memory commit nothing yields, so both see exactly the state committed onto: what they
   * read must be in memory then, so what is not is fetched first, and the commit tries again.
   */
  const commit = (
    changes: Changes,
    durable: boolean,
    conditions: Conditions
  ): Effect.Effect<"conflict" | number, CommitError | WriteConditionFailed | ReadError> =>
    Effect.suspend(() => {
      if (state.failure !== undefined) return Effect.fail(state.failure)
      if (changes.isEmpty) return Effect.succeed(state.lastSeq)
      const refused = refusedSize(limits, changes)
      if (refused !== undefined) return Effect.fail(refused)
      const ops: Array<Op> = [...changes.writes]
      let bytes = 0
      for (const op of ops) bytes += opBytes(op)
      if (bytes > limits.maxCommitBytes) {
        return Effect.fail(new ValueTooLarge({ what: "commit", size: bytes, limit: limits.maxCommitBytes }))
      }
      const reads = keysRead(changes, conditions)
      const now = (fetched?: Fetched): Effect.Effect<"conflict" | number, CommitError | WriteConditionFailed | ReadError> => {
        if (state.failure !== undefined) return Effect.fail(state.failure)
        const current = reads.length === 0 ? noValues : readNow(reads, fetched)
        if (Array.isArray(current)) return Effect.flatMap(fetch(current), now)
        for (const [key, present] of conditions.expect ?? []) {
          if ((current.get(key) !== undefined) !== present) return Effect.fail(new WriteConditionFailed({ key, expectedPresent: present }))
        }
        if (conditions.guard !== undefined && !conditions.guard()) {
          return Effect.fail(new WriteConditionFailed({ key: "", expectedPresent: true }))
        }
        if (changes.updates.size > 0) {
          const refused = resolveUpdates(ops, changes, current)
          if (refused !== undefined) return Effect.fail(refused)
        }
        // updated keys take no part in a transaction's conflict check (a plain batch has none)
        const unchecked = conditions.check !== undefined && changes.updates.size > 0 ? new Set(changes.updates.keys()) : undefined
        const batch = commitOps(state, ops, conditions.check, unchecked)
        if (batch === "conflict") return Effect.succeed("conflict")
        const seq = state.lastSeq
        return durable ? Effect.as(writer.durable(batch), seq) : Effect.succeed(seq)
      }
      return writer.overloaded() ? Effect.flatMap(writer.backpressure, () => now()) : now()
    })

  // a plain batch cannot conflict: only a transaction's commit has a read point to check
  const written = (seq: "conflict" | number): WriteResult => ({ seq: seq === "conflict" ? state.lastSeq : seq })

  const writeIf: Engine["writeIf"] = (changes, expect, options) =>
    Effect.map(commit(changes, options?.durable ?? true, { expect, guard: options?.guard }), written)

  const write: Engine["write"] = (changes, options) =>
    // without expectations or a guard a commit cannot fail them
    Effect.map(commit(changes, options?.durable ?? true, {}), written) as Effect.Effect<WriteResult, CommitError>

  /** One attempt of a transaction: `f` over a snapshot, then the commit of what it staged. */
  const attempt = <A, E, R>(f: (tx: Tx) => Effect.Effect<A, E, R>, serializable: boolean, durable: boolean) =>
    Effect.suspend(() => {
      if (state.failure !== undefined) return Effect.fail(state.failure)
      const readSeq = state.lastSeq
      // the memtable as it is now (an O(1) copy-on-write clone), over what is frozen and the runs
      const snapshot: Array<Merge.Source> = [state.mem.clone(), ...state.sources.slice(1)]
      // its runs are kept while it runs, however long: it may read any of them at any time
      const release = state.hold(snapshot)
      const changes = new Changes()
      const readKeys = new Set<string>()
      const ranges: Array<readonly [string, string | undefined]> = []
      beginRead(state, readSeq)
      const tx: Tx = {
        get: (key) =>
          Effect.suspend(() => {
            const own = changes.writes.has(key)
            if (serializable && !own) readKeys.add(key)
            const updates = changes.updates.get(key)
            const base = own ? Effect.succeed(changes.writes.get(key) ?? undefined) : Merge.get(snapshot, key)
            return updates === undefined ? base : Effect.map(base, (value) => {
              for (const update of updates) value = update(value)
              return value
            })
          }),
        scan: (start, end, limit, reverse) =>
          Effect.suspend(() => {
            if (serializable) ranges.push([start, end])
            return Merge.scan(withOwnWrites(snapshot, changes.writes), start, end, limit, reverse)
          }),
        put: (key, value) => changes.put(key, value),
        delete: (key) => changes.delete(key),
        update: (key, update) => changes.update(key, update)
      }
      return f(tx).pipe(
        Effect.flatMap((value) =>
          Effect.map(
            // no conditions here: a WriteConditionFailed cannot happen
            commit(changes, durable, { check: { readSeq, reads: serializable ? { keys: readKeys, ranges } : undefined } }) as Effect.Effect<
              "conflict" | number,
              CommitError | ReadError
            >,
            (outcome) => ({ outcome, value, wrote: !changes.isEmpty })
          )
        ),
        Effect.ensuring(Effect.sync(() => {
          endRead(state, readSeq)
          release()
        }))
      )
    })

  const transaction: Engine["transaction"] = <A, E, R>(f: (tx: Tx) => Effect.Effect<A, E, R>, options?: TxOptions) => {
    const serializable = options?.isolation === "serializable"
    const maxRetries = options?.maxRetries ?? 10
    const durable = options?.durable ?? true
    const loop = (tries: number): Effect.Effect<{ readonly value: A; readonly seq: number | undefined }, E | CommitError | TransactionConflict, R> =>
      Effect.flatMap(attempt(f, serializable, durable), (result) => {
        if (result.outcome !== "conflict") return Effect.succeed({ value: result.value, seq: result.wrote ? result.outcome : undefined })
        return tries > maxRetries ? Effect.fail(new TransactionConflict({ attempts: tries })) : loop(tries + 1)
      })
    return loop(1)
  }

  return {
    limits,
    get: (key) => Merge.get(state.sources, key, state.hold),
    scan: (start, end, limit, reverse) => Merge.scan(state.sources, start, end, limit, reverse, state.hold),
    resident: residentOf(() => state.sources),
    watchPuts: (prefix, put) => void state.watchers.push({ prefix, put }),
    write,
    writeIf,
    transaction,
    flush: writer.flush,
    stats: Effect.sync(() => ({
      epoch: state.epoch,
      lastSeq: state.lastSeq,
      durableSeq: state.durableSeq,
      nextWalId: state.nextWalId,
      unflushedBytes: state.unflushedBytes,
      ...statsOf(state)
    })),
    failure: () => state.failure,
    stopped: writer.stopped
  }
}

/** A state loaded for reads only (see `snapshot.ts`): its replayed memtable over its runs. */
export interface ReadOnlyState {
  readonly epoch: number
  readonly lastSeq: number
  readonly mem: Merge.Memtable
  readonly frozen: ReadonlyArray<never>
  readonly runs: ReadonlyArray<RunReader>
  /** The runs' block cache and read counters. */
  readonly reads: RunReads
}

/**
 * The engine of a loaded snapshot, for reads only: every commit fails with `Closed` saying so,
 * `flush` does nothing, no failure, and `stopped` never completes.
 */
export const makeReadOnly = (snapshot: ReadOnlyState, limits: Limits): Engine => {
  const refused = Effect.fail(new Closed({ detail: "the store is open read-only: nothing can be written through it" }))
  const sources: ReadonlyArray<Merge.Source> = [snapshot.mem, ...snapshot.runs]
  return {
    limits,
    get: (key) => Merge.get(sources, key),
    scan: (start, end, limit, reverse) => Merge.scan(sources, start, end, limit, reverse),
    resident: residentOf(() => sources),
    watchPuts: () => {},
    write: () => refused,
    writeIf: () => refused,
    transaction: () => refused,
    flush: Effect.void,
    stats: Effect.sync(() => ({
      epoch: snapshot.epoch,
      lastSeq: snapshot.lastSeq,
      durableSeq: snapshot.lastSeq,
      nextWalId: 0,
      unflushedBytes: 0,
      ...statsOf(snapshot)
    })),
    failure: () => undefined,
    stopped: Effect.never
  }
}

const engineKey = Symbol("bucketq/Kv/engine")

/** Attaches `engine` to the KV service it serves (not enumerable: a copy or wrapper drops it). */
export const attach = <S extends Service>(service: S, engine: Engine): S =>
  Object.defineProperty(service, engineKey, { value: engine, enumerable: false })

/** The engine of a KV made by `Kv.make` or `Kv.makeReadOnly`, or undefined for any other `Kv.Service`. */
export const engineOf = (kv: Service): Engine | undefined => (kv as { readonly [engineKey]?: Engine })[engineKey]
