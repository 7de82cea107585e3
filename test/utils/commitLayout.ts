/**
 * A KV whose engine checks every commit the job queue makes against the record layout before it
 * is committed: each job record written sits at the primary key of its status with the index
 * pointing to it (and, done or dead, its expiry entry); a record removed takes its index with it
 * unless the same commit stores the job again; and the per-queue counters move by exactly the
 * jobs that entered and left each status (a claimed job removed may be counted as done: an ack
 * of a job not kept). A commit that breaks any of it is a defect naming the
 * rule, so a model test over random operations fails on the first mutation that bypassed the one
 * staging path (`queue/records.ts` `stage` and `move`). The key of a status is `records.ts`'s
 * own `primaryKey`: that it is the right key is the model test's check of the stored state.
 */
import { Effect } from "effect"
import * as JobRecordSchema from "../../schema/JobRecord.ts"
import type { JobRecord } from "../../schema/JobRecord.ts"
import { fromLatin1 } from "../../src/internal/binary.ts"
import type * as Kv from "../../src/Kv.ts"
import { serviceOver } from "../../src/kv/bytes.ts"
import { Changes, type Engine, engineOf, type Tx, type Updater } from "../../src/kv/engine.ts"
import * as Keys from "../../src/queue/keys.ts"
import { primaryKey } from "../../src/queue/records.ts"

const isRecordKey = (key: string) => Keys.recordPrefixes.some((prefix) => key.startsWith(prefix))
const decode = (value: string): JobRecord => JobRecordSchema.decode(fromLatin1(value))

/** The layout problems of `changes` committed onto state read through `get`; empty when none. */
export const layoutProblems = (changes: Changes, get: (key: string) => string | undefined): Array<string> => {
  const problems: Array<string> = []
  const after = new Map<string, JobRecord>() // id → record stored by this commit
  const before = new Map<string, JobRecord>() // id → record this commit removes or replaces
  for (const [key, value] of changes.writes) {
    if (!isRecordKey(key)) continue
    if (value !== null) {
      const record = decode(value)
      if (primaryKey(record) !== key) problems.push(`${record.id} (${record.status}) written at another status's key`)
      if (changes.writes.get(Keys.index(record.id)) !== key) problems.push(`${record.id} written without its index pointing to it`)
      if (record.expiresAt !== undefined && changes.writes.get(Keys.expiry(record.expiresAt, record.id)) !== key) {
        problems.push(`${record.id} (${record.status}) kept until ${record.expiresAt} written without its expiry entry`)
      }
      after.set(record.id, record)
    }
    const old = get(key)
    if (old !== undefined) before.set(decode(old).id, decode(old))
  }
  for (const [id, old] of before) {
    if (after.has(id)) continue
    if (changes.writes.get(Keys.index(id)) !== null && get(Keys.index(id)) === primaryKey(old)) {
      problems.push(`${id} (${old.status}) removed with its index left pointing to it`)
    }
  }
  // the counters: each job's old status left, its new one entered (done counts only up)
  const expected = new Map<string, number>()
  const add = (record: JobRecord, n: number) => {
    if (n < 0 && record.status === "Done") return
    const key = Keys.stat(record.queue, record.status)
    expected.set(key, (expected.get(key) ?? 0) + n)
  }
  for (const [id, record] of after) {
    const old = before.get(id)
    if (old !== undefined && old.status === record.status && old.queue === record.queue) continue
    if (old !== undefined) add(old, -1)
    add(record, 1)
  }
  // a claimed job removed may have been acked without being kept: counted into done, or not (discarded)
  const ackable = new Map<string, number>()
  for (const [id, old] of before) {
    if (after.has(id)) continue
    add(old, -1)
    if (old.status === "Claimed") ackable.set(Keys.stat(old.queue, "Done"), (ackable.get(Keys.stat(old.queue, "Done")) ?? 0) + 1)
  }
  const moved = new Map<string, number>()
  for (const [key, updaters] of changes.updates) {
    if (!key.startsWith(Keys.statsPrefix)) continue
    // a counter's updater adds its delta to the current count: applied to none, it is the delta
    moved.set(key, updaters.reduce((n, f: Updater) => n + Number(f(undefined)), 0))
  }
  for (const key of new Set([...expected.keys(), ...moved.keys()])) {
    const extra = (moved.get(key) ?? 0) - (expected.get(key) ?? 0)
    if (extra !== 0 && !(extra > 0 && extra <= (ackable.get(key) ?? 0))) {
      problems.push(`counter ${Keys.describe(key)} moved by ${moved.get(key) ?? 0}, the records say ${expected.get(key) ?? 0}`)
    }
  }
  return problems
}

const refuse = (problems: Array<string>) =>
  problems.length === 0 ? Effect.void : Effect.die(new Error(`a commit breaks the record layout:\n  ${problems.join("\n  ")}`))

/**
 * What `layoutProblems` reads of the state under `changes` (the records at the keys it writes,
 * then the index of each), read through `read` first: the check itself is synchronous.
 */
const readFor = (changes: Changes, read: (key: string) => Effect.Effect<string | undefined, unknown>) =>
  Effect.gen(function*() {
    const seen = new Map<string, string | undefined>()
    const fetch = (key: string) => Effect.map(read(key), (value) => void seen.set(key, value))
    const recordKeys = [...changes.writes.keys()].filter(isRecordKey)
    yield* Effect.forEach(recordKeys, fetch, { discard: true })
    const ids = recordKeys.flatMap((key) => {
      const value = seen.get(key)
      return value === undefined ? [] : [decode(value).id]
    })
    yield* Effect.forEach(ids, (id) => fetch(Keys.index(id)), { discard: true })
    return (key: string) => seen.get(key)
  })

/** `refuse(layoutProblems(...))` over the state read through `read`. */
const check = (changes: Changes, read: (key: string) => Effect.Effect<string | undefined, unknown>) =>
  Effect.flatMap(Effect.orDie(readFor(changes, read)), (get) => refuse(layoutProblems(changes, get)))

/** A transaction's `tx` that records what is staged through it, for the check before its commit. */
const recording = (tx: Tx): { readonly tx: Tx; readonly changes: Changes } => {
  const changes = new Changes()
  return {
    changes,
    tx: {
      get: tx.get,
      scan: tx.scan,
      put: (key, value) => {
        changes.put(key, value)
        tx.put(key, value)
      },
      delete: (key) => {
        changes.delete(key)
        tx.delete(key)
      },
      update: (key, update) => {
        changes.update(key, update)
        tx.update(key, update)
      }
    }
  }
}

/** `engine` with every commit checked by `layoutProblems` first. */
const checkedEngine = (engine: Engine): Engine => ({
  ...engine,
  write: (changes, options) => Effect.andThen(check(changes, engine.get), engine.write(changes, options)),
  writeIf: (changes, expect, options) =>
    Effect.andThen(
      // a commit whose expectations fail writes nothing: only one that can land is checked
      Effect.flatMap(
        Effect.orDie(Effect.forEach(expect, ([key, present]) => Effect.map(engine.get(key), (value) => (value !== undefined) === present))),
        (holds) => (holds.every(Boolean) ? check(changes, engine.get) : Effect.void)
      ),
      engine.writeIf(changes, expect, options)
    ),
  transaction: (f, options) =>
    engine.transaction((tx) => {
      const { changes, tx: recorded } = recording(tx)
      // the snapshot the transaction read, under none of its own writes: what it commits onto
      const snapshotGet = (key: string) =>
        changes.writes.has(key) || changes.updates.has(key)
          ? engine.get(key)
          : Effect.flatMap(tx.get(key), (value) => (value === undefined ? engine.get(key) : Effect.succeed(value)))
      return Effect.tap(f(recorded), () => check(changes, snapshotGet))
    }, options)
})

/** `kv` (made by `Kv.make`) with every commit of the queue over it checked against the record layout. */
export const layoutChecked = (kv: Kv.Service): Kv.Service => {
  const engine = engineOf(kv)
  if (engine === undefined) throw new Error("layoutChecked needs a KV made by Kv.make")
  return serviceOver(checkedEngine(engine))
}
