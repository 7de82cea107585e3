/**
 * `bucketq verify`: reads every object of the store and every part of its local log, checks each
 * with the decoder that reads it in normal operation (magic, format version, CRC32, structure:
 * the same checks, so what passes here reads there), checks that the KV's state replays (the
 * WAL segments its manifest needs are there and follow on), and that every job record in it
 * decodes and has its payload object, if it has one. It writes nothing: like the read-only open,
 * it never fences a running writer.
 *
 * The report counts what was read by kind, the requests and bytes it took (and what those
 * requests cost at S3 Standard list prices), and lists each damaged item with why. An object
 * deleted between the listing and its read (a running writer's garbage collection) is not damage.
 *
 * @internal
 */
import { Effect, Option, Stream } from "effect"
import * as JobRecord from "../../schema/JobRecord.ts"
import * as Manifest from "../../schema/Manifest.ts"
import * as PayloadObject from "../../schema/PayloadObject.ts"
import * as Run from "../../schema/Run.ts"
import * as WalSegment from "../../schema/WalSegment.ts"
import * as StoredWriterRecord from "../../schema/WriterRecord.ts"
import { fromLatin1 } from "../internal/binary.ts"
import * as BlockCache from "../kv/blockCache.ts"
import * as Merge from "../kv/merge.ts"
import * as RunReader from "../kv/runReader.ts"
import { decodeOrCorrupt } from "../kv/recovery.ts"
import { loadSnapshot, type Snapshot } from "../kv/snapshot.ts"
import { LocalLog, ObjectStore } from "../ObjectStore.ts"
import * as Keys from "../queue/keys.ts"
import { describe, failWith } from "./failure.ts"
import * as Format from "./format.ts"

/** The kinds of objects, by the prefix of their keys, each with the decoder that checks it. */
const kinds: ReadonlyArray<{ readonly kind: string; readonly prefix: string; readonly decode: (bytes: Uint8Array) => unknown }> = [
  { kind: "manifests", prefix: "manifest/", decode: Manifest.decode },
  { kind: "runs", prefix: "runs/", decode: Run.decode },
  { kind: "WAL segments", prefix: "wal/", decode: WalSegment.decode },
  { kind: "payload objects", prefix: "payloads/", decode: PayloadObject.decode },
  { kind: "writer record", prefix: StoredWriterRecord.key, decode: StoredWriterRecord.decode }
]

/** One damaged item: an object's key or a log file, and why. */
export interface Damage {
  readonly where: string
  readonly detail: string
}

/** What `verify` found. */
export interface Report {
  /** Objects read and checked, by kind (plus `WAL fences`, empty WAL objects, and `other`, not checked). */
  readonly objects: Readonly<Record<string, number>>
  readonly logParts: number
  readonly logRecords: number
  /** Bytes of objects read. */
  readonly bytes: number
  readonly getRequests: number
  readonly listRequests: number
  /** The KV state as it replays: its epoch and last commit, or none when it does not. */
  readonly state: { readonly epoch: number; readonly lastSeq: number; readonly keys: number } | null
  readonly damaged: ReadonlyArray<Damage>
}

/** S3 Standard request prices, in dollars per 1000 requests (transfer not included). */
const getPrice = 0.0004
const listPrice = 0.005

/**
 * The job records of the state that do not decode, and those whose payload object is not among
 * `objects` (the keys listed).
 */
const checkRecords = (snapshot: Snapshot, objects: ReadonlySet<string>) =>
  Effect.gen(function*() {
    const damaged: Array<Damage> = []
    let keys = 0
    // every key once, newest version: the replayed memtable over the runs, read a block at a time
    const pull = Merge.mergeAll([snapshot.mem, ...snapshot.runs], { keepTombstones: false, readAhead: RunReader.wholeRunReadAhead })
    for (let chunk = yield* pull; chunk.length > 0; chunk = yield* pull) {
      keys += chunk.length
      for (const [key, value] of chunk) {
        if (value === null || !Keys.recordPrefixes.some((prefix) => key.startsWith(prefix))) continue
        try {
          const record = JobRecord.decode(fromLatin1(value))
          if (record.payloadRef !== undefined && !objects.has(record.payloadRef)) {
            damaged.push({ where: `job ${record.id}`, detail: `its payload object ${record.payloadRef} is missing` })
          }
        } catch (error) {
          damaged.push({ where: `job record ${Keys.toCursor(key)}`, detail: describe(error) })
        }
      }
    }
    return { keys, damaged }
  })

/** Checks the store in context, and its `LocalLog` if the context has one (see the module's header). */
export const verify = Effect.gen(function*() {
  const store = yield* ObjectStore
  const damaged: Array<Damage> = []
  const objects: Record<string, number> = Object.fromEntries([...kinds.map((k) => [k.kind, 0]), ["WAL fences", 0], ["other", 0]])
  let bytes = 0
  const entries = yield* Stream.runCollect(store.list("")).pipe(failWith("could not list the store"))
  yield* Effect.forEach(entries, (entry) => {
    const kind = kinds.find((k) => entry.key.startsWith(k.prefix))
    if (kind === undefined) {
      objects.other! += 1
      return Effect.void
    }
    return store.get(entry.key).pipe(
      Effect.flatMap((object) => {
        bytes += object.bytes.length
        if (kind.prefix === "wal/" && object.bytes.length === 0) {
          objects["WAL fences"]! += 1
          return Effect.void
        }
        objects[kind.kind]! += 1
        return Effect.asVoid(decodeOrCorrupt(entry.key, object.bytes, kind.decode))
      }),
      Effect.catchReason("ObjectStoreError", "NotFound", () => Effect.void), // collected meanwhile
      Effect.catch((error) => Effect.sync(() => void damaged.push({ where: entry.key, detail: error._tag === "Corrupt" ? error.detail : describe(error) })))
    )
  }, { concurrency: 8, discard: true })
  let logParts = 0
  let logRecords = 0
  const log = Option.getOrUndefined(yield* Effect.serviceOption(LocalLog))
  if (log !== undefined) {
    for (const epoch of yield* log.epochs.pipe(failWith("could not list the local log"))) {
      const parts = yield* Effect.exit(log.read(epoch))
      if (parts._tag === "Success") {
        logParts += parts.value.length
        for (const part of parts.value) logRecords += part.records.length
        continue
      }
      const error = Option.getOrUndefined(Option.map(
        Option.fromUndefinedOr(parts.cause.reasons.find((r) => r._tag === "Fail")),
        (r) => (r as { readonly error: unknown }).error
      ))
      damaged.push(
        error !== null && typeof error === "object" && "_tag" in error && error._tag === "LogCorrupt"
          ? { where: (error as unknown as { file: string }).file, detail: (error as unknown as { detail: string }).detail }
          : { where: `local log of epoch ${epoch}`, detail: describe(error) }
      )
    }
  }
  const replay = yield* Effect.exit(Effect.flatMap(
    loadSnapshot(store, log, { cache: BlockCache.make(0), stats: RunReader.makeStats() }),
    (snapshot) => Effect.map(checkRecords(snapshot, new Set(entries.map((entry) => entry.key))), (checked) => ({ snapshot, checked }))
  ))
  let state: Report["state"] = null
  if (replay._tag === "Success") {
    const { checked, snapshot } = replay.value
    state = { epoch: snapshot.epoch, lastSeq: snapshot.lastSeq, keys: checked.keys }
    damaged.push(...checked.damaged)
  } else {
    const failure = replay.cause.reasons.find((r) => r._tag === "Fail") as { readonly error: { readonly _tag: string; readonly key?: string } } | undefined
    const error = failure?.error
    if (error === undefined || !damaged.some((d) => d.where === error.key)) {
      damaged.push({ where: "KV state", detail: `does not replay: ${describe(error ?? replay.cause)}` })
    }
  }
  const getRequests = entries.length - objects.other!
  return {
    objects,
    logParts,
    logRecords,
    bytes,
    getRequests,
    listRequests: Math.max(1, Math.ceil(entries.length / 1000)),
    state,
    damaged
  } satisfies Report
})

/** The report as text. */
export const render = (report: Report): string => {
  const cost = (report.getRequests * getPrice + report.listRequests * listPrice) / 1000
  const objects = Object.entries(report.objects).map(([kind, n]) => `${n} ${kind}`).join(", ")
  return Format.fields([
    ["objects", objects],
    ["local log", `${report.logParts} parts, ${report.logRecords} records`],
    ["read", `${report.bytes} bytes in ${report.getRequests} GET and ${report.listRequests} LIST requests (about $${cost.toFixed(6)} at S3 Standard request prices)`],
    ["state", report.state === null ? "does not replay" : `epoch ${report.state.epoch}, ${report.state.lastSeq} commits, ${report.state.keys} keys`],
    ["damaged", report.damaged.length === 0 ? "none" : String(report.damaged.length)]
  ]) + report.damaged.map((d) => `  ${d.where}: ${d.detail}\n`).join("")
}
