/**
 * An internal entry point of the KV for the job queue: keys and values as latin1 strings (one
 * char per byte, the form the KV keeps them in), so that the queue, which builds its keys as such
 * strings, skips a round trip through `Uint8Array` for every key it writes. Not part of the KV's
 * public API: the KV service carries it under a symbol, not enumerable (a copy or wrapper of the
 * service does not inherit it), and `latin1Of` falls back to the public API when it is missing.
 *
 * @internal
 */
import { Effect } from "effect"
import type {
  CommitError,
  Entry,
  Range,
  ScanOptions,
  Service,
  Transaction,
  TransactionOptions,
  Updater,
  WriteOp,
  WriteOptions,
  WriteResult
} from "../Kv.ts"
import type { TransactionConflict, WriteConditionFailed } from "../KvError.ts"
import { fromLatin1, toLatin1 } from "./binary.ts"
import { ownOptions } from "./options.ts"

/** A write: a value, or `null` for a delete. */
export type Op = readonly [key: string, value: string | null]

/** A counter-like update of a key, resolved at commit (see `Transaction.update`). */
export type Update = readonly [key: string, update: Updater]

/** @internal */
export interface Latin1Kv {
  /** Committed entries in `[start, end)`, in key order, at most `limit`. */
  readonly scan: (
    start: string,
    end: string | undefined,
    limit: number
  ) => Effect.Effect<ReadonlyArray<readonly [key: string, value: string]>>
  /**
   * `scan`, synchronously: what is committed at this instant. For readers that cannot run an
   * effect, such as a metric gauge read when metrics are exported.
   */
  readonly scanNow: (start: string, end: string | undefined, limit: number) => ReadonlyArray<readonly [key: string, value: string]>
  /**
   * `Service.writeIf`: the writes `ops`, then the `updates` on top of them, committed only if each
   * key of `expect` is present (or absent) and `guard` holds at the moment of the commit.
   */
  readonly writeIf: (
    ops: ReadonlyArray<Op>,
    updates: ReadonlyArray<Update>,
    expect: ReadonlyArray<readonly [key: string, present: boolean]>,
    options?: {
      readonly durable?: boolean | undefined
      readonly guard?: (() => boolean) | undefined
    }
  ) => Effect.Effect<WriteResult, CommitError | WriteConditionFailed>
  /** `writeIf` without conditions, which cannot fail one. */
  readonly write: (
    ops: ReadonlyArray<Op>,
    updates: ReadonlyArray<Update>,
    options?: { readonly durable?: boolean | undefined }
  ) => Effect.Effect<WriteResult, CommitError>
}

/** The smallest latin1 string after every string that starts with `prefix` (undefined: none). */
export const afterPrefix = (prefix: string): string | undefined => {
  let i = prefix.length - 1
  while (i >= 0 && prefix.charCodeAt(i) === 0xff) i--
  return i < 0 ? undefined : prefix.slice(0, i) + String.fromCharCode(prefix.charCodeAt(i) + 1)
}

const key = Symbol("bucketq/Kv/latin1")

/** Attaches the fast path to a KV service (not enumerable: spreads and wrappers drop it). */
export const attach = <S extends Service>(service: S, fast: Latin1Kv): S =>
  Object.defineProperty(service, key, { value: fast, enumerable: false })

/** The fast path of `kv`, or the same operations over its public byte API. */
export const latin1Of = (kv: Service): Latin1Kv => (kv as { readonly [key]?: Latin1Kv })[key] ?? overBytes(kv)

const overBytes = (kv: Service): Latin1Kv => {
  const writeIf: Latin1Kv["writeIf"] = (ops, updates, expect, options) =>
    ownOptions(kv.writeIf(
      [
        ...ops.map(([k, v]) =>
          v === null ? { _tag: "Delete" as const, key: fromLatin1(k) } : { _tag: "Put" as const, key: fromLatin1(k), value: fromLatin1(v) }
        ),
        ...updates.map(([k, update]) => ({ _tag: "Update" as const, key: fromLatin1(k), update }))
      ],
      expect.map(([k, present]) => ({ key: fromLatin1(k), present })),
      options
    ))
  const scan: Latin1Kv["scan"] = (start, end, limit) =>
    Effect.map(
      ownOptions(kv.scan(
        { start: fromLatin1(start), end: end === undefined ? undefined : fromLatin1(end) },
        { limit: Number.isFinite(limit) ? limit : undefined }
      )),
      (entries) => entries.map((entry) => [toLatin1(entry.key), toLatin1(entry.value)] as const)
    )
  // A KV without the fast path (a wrapper) is read by running its scan at once; one that does not
  // answer synchronously reads as empty.
  const scanNow: Latin1Kv["scanNow"] = (start, end, limit) => {
    const exit = Effect.runSyncExit(scan(start, end, limit))
    return exit._tag === "Success" ? exit.value : []
  }
  return {
    scan,
    scanNow,
    writeIf,
    write: (ops, updates, options) =>
      Effect.catchTag(writeIf(ops, updates, [], options), "WriteConditionFailed", (e) => Effect.die(e))
  }
}

/**
 * The KV's byte API as the job queue calls it, with options it wrote itself: an `InvalidOption`
 * from `scan`, `transaction` or `write` is a defect (see `ownOptions`), not one of its errors.
 */
export interface OwnOptionsKv extends Omit<Service, "scan" | "transaction" | "write"> {
  readonly scan: (range: Range, options?: ScanOptions) => Effect.Effect<ReadonlyArray<Entry>>
  readonly transaction: <A, E, R>(
    f: (tx: Transaction) => Effect.Effect<A, E, R>,
    options?: TransactionOptions
  ) => Effect.Effect<A, E | CommitError | TransactionConflict, R>
  readonly write: (batch: ReadonlyArray<WriteOp>, options?: WriteOptions) => Effect.Effect<WriteResult, CommitError>
}

/** `kv` with the calls of `OwnOptionsKv`. */
export const withOwnOptions = (kv: Service): OwnOptionsKv => ({
  ...kv,
  scan: (range, options) => ownOptions(kv.scan(range, options)),
  transaction: (f, options) => ownOptions(kv.transaction(f, options)),
  write: (batch, options) => ownOptions(kv.write(batch, options))
})
