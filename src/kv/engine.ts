/**
 * The KV's one write vocabulary: keys and values as latin1 strings (one char per byte, the form
 * the live state keeps them in), every commit built as `Changes` (puts, deletes, and updates
 * resolved at commit) and committed through one function, `commit` below, whether it comes from a
 * plain batch (`write`, `writeIf`) or an optimistic transaction. The public byte API of `Kv.ts` is
 * an adapter over this (`kv/bytes.ts`), and the job queue stages every mutation here directly.
 *
 * The engine trusts its caller: options are the caller's own (the byte API checks a user's at its
 * edge), and sizes are checked at commit (`ValueTooLarge`, nothing applied). Reads and the
 * writes of a transaction are synchronous: the live state is an in-memory tree, so a read costs no
 * step through the runtime.
 *
 * @internal
 */
import { Effect } from "effect"
import type { BTree } from "../internal/btree.ts"
import type { CommitError, ReadError, Service, Stats, StopError, WriteResult } from "../Kv.ts"
import { Closed, TransactionConflict, ValueTooLarge, WriteConditionFailed } from "../KvError.ts"
import { beginRead, commit as commitOps, endRead, inRange, type Op, opBytes, type ReadSet } from "./state.ts"
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

/** What a resident read answers when the answer is not in memory. */
export const notResident: unique symbol = Symbol("bucketq/Kv/notResident")

/** The type of `notResident`. */
export type NotResident = typeof notResident

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

/** Scans `tree` in `[start, end)`, with `overlay` (a transaction's writes) on top. */
const scanTree = (
  tree: BTree<string, string>,
  start: string,
  end: string | undefined,
  limit = Number.POSITIVE_INFINITY,
  reverse = false,
  overlay?: ReadonlyMap<string, string | null>
): Entries => {
  const out: Entries = []
  if (limit <= 0 || (end !== undefined && end <= start)) return out
  if (!reverse && (overlay === undefined || overlay.size === 0)) {
    // the common case (every scan of the queue): straight off the tree
    for (const entry of tree.entries(start)) {
      if (end !== undefined && entry[0] >= end) break
      out.push(entry)
      if (out.length >= limit) break
    }
    return out
  }
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
  for (const [k, v] of merged) {
    if (v === null) continue
    out.push([k, v])
    if (out.length >= limit) break
  }
  return out
}

/** Resident reads of a state held whole in memory: every answer is resident. */
const residentOf = (live: () => BTree<string, string>): Engine["resident"] => ({
  get: (key) => live().get(key),
  scan: (start, end, limit) => scanTree(live(), start, end, limit)
})

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

  /** Resolves the updates of `changes` against the state at this instant, into plain writes of `ops`. */
  const resolveUpdates = (ops: Array<Op>, changes: Changes): ValueTooLarge | undefined => {
    for (const [key, updaters] of changes.updates) {
      const own = changes.writes.has(key)
      const base = own ? changes.writes.get(key) : state.live.get(key)
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
   * the in-memory commit nothing yields, so both see exactly the state committed onto.
   */
  const commit = (
    changes: Changes,
    durable: boolean,
    conditions: Conditions
  ): Effect.Effect<"conflict" | number, CommitError | WriteConditionFailed> =>
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
      const now = (): Effect.Effect<"conflict" | number, CommitError | WriteConditionFailed> => {
        if (state.failure !== undefined) return Effect.fail(state.failure)
        for (const [key, present] of conditions.expect ?? []) {
          if (state.live.has(key) !== present) return Effect.fail(new WriteConditionFailed({ key, expectedPresent: present }))
        }
        if (conditions.guard !== undefined && !conditions.guard()) {
          return Effect.fail(new WriteConditionFailed({ key: "", expectedPresent: true }))
        }
        if (changes.updates.size > 0) {
          const refused = resolveUpdates(ops, changes)
          if (refused !== undefined) return Effect.fail(refused)
        }
        // updated keys take no part in a transaction's conflict check (a plain batch has none)
        const unchecked = conditions.check !== undefined && changes.updates.size > 0 ? new Set(changes.updates.keys()) : undefined
        const batch = commitOps(state, ops, conditions.check, unchecked)
        if (batch === "conflict") return Effect.succeed("conflict")
        const seq = state.lastSeq
        return durable ? Effect.as(writer.durable(batch), seq) : Effect.succeed(seq)
      }
      return state.unflushedBytes > writer.maxUnflushedBytes ? Effect.flatMap(writer.backpressure, now) : now()
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
      const snapshot = state.live.clone()
      const changes = new Changes()
      const readKeys = new Set<string>()
      const ranges: Array<readonly [string, string | undefined]> = []
      beginRead(state, readSeq)
      const tx: Tx = {
        get: (key) =>
          Effect.sync(() => {
            const own = changes.writes.has(key)
            if (serializable && !own) readKeys.add(key)
            const base = own ? changes.writes.get(key) : snapshot.get(key)
            let value = base === null ? undefined : base
            for (const update of changes.updates.get(key) ?? []) value = update(value)
            return value
          }),
        scan: (start, end, limit, reverse) =>
          Effect.sync(() => {
            if (serializable) ranges.push([start, end])
            return scanTree(snapshot, start, end, limit, reverse, changes.writes)
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
              CommitError
            >,
            (outcome) => ({ outcome, value, wrote: !changes.isEmpty })
          )
        ),
        Effect.ensuring(Effect.sync(() => endRead(state, readSeq)))
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
    get: (key) => Effect.sync(() => state.live.get(key)),
    scan: (start, end, limit, reverse) => Effect.sync(() => scanTree(state.live, start, end, limit, reverse)),
    resident: residentOf(() => state.live),
    write,
    writeIf,
    transaction,
    flush: writer.flush,
    stats: Effect.sync(() => ({
      epoch: state.epoch,
      lastSeq: state.lastSeq,
      durableSeq: state.durableSeq,
      nextWalId: state.nextWalId,
      keys: state.live.size,
      unflushedBytes: state.unflushedBytes
    })),
    failure: () => state.failure,
    stopped: writer.stopped
  }
}

/**
 * The engine of a loaded snapshot, for reads only: every commit fails with `Closed` saying so,
 * `flush` does nothing, no failure, and `stopped` never completes.
 */
export const makeReadOnly = (snapshot: { readonly epoch: number; readonly lastSeq: number; readonly live: BTree<string, string> }, limits: Limits): Engine => {
  const refused = Effect.fail(new Closed({ detail: "the store is open read-only: nothing can be written through it" }))
  return {
    limits,
    get: (key) => Effect.sync(() => snapshot.live.get(key)),
    scan: (start, end, limit, reverse) => Effect.sync(() => scanTree(snapshot.live, start, end, limit, reverse)),
    resident: residentOf(() => snapshot.live),
    write: () => refused,
    writeIf: () => refused,
    transaction: () => refused,
    flush: Effect.void,
    stats: Effect.sync(() => ({
      epoch: snapshot.epoch,
      lastSeq: snapshot.lastSeq,
      durableSeq: snapshot.lastSeq,
      nextWalId: 0,
      keys: snapshot.live.size,
      unflushedBytes: 0
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
