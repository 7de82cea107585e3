/**
 * The KV's public byte API (`Kv.Service`) as a thin adapter over its engine (`engine.ts`): user
 * options checked at the edge (`InvalidOption`), keys and values turned between bytes and the
 * engine's latin1 strings, sizes of a transaction's writes refused as they are staged. Nothing
 * here commits on its own: every write is the engine's `write`, `writeIf` or `transaction`.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import { fromLatin1, toLatin1 } from "../internal/binary.ts"
import type { Entry, Range, ReadError, ScanOptions, Service, Transaction, Updater as BytesUpdater } from "../Kv.ts"
import type { InvalidOption } from "../InvalidOption.ts"
import { afterPrefix, attach, Changes, type Engine, type Entries, tooLarge, type Tx, type Updater } from "./engine.ts"
import { scanOptionsError, transactionOptionsError, writeIfOptionsError } from "./options.ts"

/** A range as latin1 bounds `[start, end)`. */
const bounds = (range: Range): readonly [string, string | undefined] => {
  if ("prefix" in range) {
    const prefix = toLatin1(range.prefix)
    return [prefix, afterPrefix(prefix)]
  }
  return [range.start === undefined ? "" : toLatin1(range.start), range.end === undefined ? undefined : toLatin1(range.end)]
}

const asEntries = (entries: Entries): Array<Entry> => entries.map(([key, value]) => ({ key: fromLatin1(key), value: fromLatin1(value) }))

const asOption = (value: string | undefined): Option.Option<Uint8Array> => (value === undefined ? Option.none() : Option.some(fromLatin1(value)))

/** A byte updater as the engine applies it. */
const latin1Updater = (update: BytesUpdater): Updater => (current) => toLatin1(update(asOption(current)))

/** A scan of `read` over a byte range, its options checked. */
const scanBytes = (read: Engine["scan"] | Tx["scan"], range: Range, options: ScanOptions | undefined) =>
  Effect.suspend((): Effect.Effect<Array<Entry>, InvalidOption | ReadError> => {
    const invalid = scanOptionsError(options)
    if (invalid !== undefined) return Effect.fail(invalid)
    const [start, end] = bounds(range)
    return Effect.map(read(start, end, options?.limit, options?.reverse), asEntries)
  })

/** A transaction's byte view of the engine's `tx`: sizes refused as each write is staged. */
const byteTransaction = (tx: Tx, limits: Engine["limits"]): Transaction => {
  const staged = (key: Uint8Array, value: { readonly length: number } | undefined, stage: () => void) =>
    Effect.suspend(() => {
      const refused = tooLarge(limits, key, value)
      if (refused !== undefined) return Effect.fail(refused)
      stage()
      return Effect.void
    })
  return {
    get: (key) => Effect.map(Effect.suspend(() => tx.get(toLatin1(key))), asOption),
    scan: (range, options) => scanBytes(tx.scan, range, options),
    put: (key, value) => staged(key, value, () => tx.put(toLatin1(key), toLatin1(value))),
    delete: (key) => staged(key, undefined, () => tx.delete(toLatin1(key))),
    update: (key, update) => staged(key, undefined, () => tx.update(toLatin1(key), latin1Updater(update)))
  }
}

/** The public KV service over `engine`, which it carries for the job queue (see `engine.attach`). */
export const serviceOver = (engine: Engine): Service => {
  const writeIf: Service["writeIf"] = (batch, expect, options) =>
    Effect.suspend((): ReturnType<Service["writeIf"]> => {
      const invalid = writeIfOptionsError(options)
      if (invalid !== undefined) return Effect.fail(invalid)
      const changes = new Changes()
      for (const op of batch) {
        const key = toLatin1(op.key)
        if (op._tag === "Update") changes.update(key, latin1Updater(op.update))
        else if (changes.updates.has(key)) return Effect.die(new Error("a batch cannot put or delete a key after updating it"))
        else if (op._tag === "Put") changes.put(key, toLatin1(op.value))
        else changes.delete(key)
      }
      return engine.writeIf(changes, expect.map(({ key, present }) => [toLatin1(key), present] as const), options)
    })

  const transactionWithSeq: Service["transactionWithSeq"] = (f, options) => {
    const invalid = transactionOptionsError(options)
    return invalid !== undefined ? Effect.fail(invalid) : engine.transaction((tx) => f(byteTransaction(tx, engine.limits)), options)
  }

  return attach<Service>({
    get: (key) => Effect.map(Effect.suspend(() => engine.get(toLatin1(key))), asOption),
    scan: (range, options) => scanBytes(engine.scan, range, options),
    transaction: (f, options) => Effect.map(transactionWithSeq(f, options), (result) => result.value),
    transactionWithSeq,
    write: (batch, options) => Effect.catchTag(writeIf(batch, [], options), "WriteConditionFailed", (e) => Effect.die(e)),
    writeIf,
    flush: engine.flush,
    stats: engine.stats,
    failure: Effect.sync(() => Option.fromUndefinedOr(engine.failure())),
    stopped: engine.stopped
  }, engine)
}
