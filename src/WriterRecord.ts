/**
 * The writer record: which writer holds a store, where it serves, and that it is alive. One
 * small object, `writer` at the store's root (format in `schema/WriterRecord.ts`), written by the
 * queue's writer when it opens and rewritten every `takeoverAfter / 3` (the heartbeat).
 *
 * **Details**
 *
 * - Only a current writer moves the record: every put is conditional on the ETag the writer last
 *   wrote or read, and a writer that finds a newer epoch in it stops heartbeating for good. A
 *   zombie writer (fenced, not knowing it yet) whose late put lands after a newer writer's record
 *   fails its condition and finds the newer epoch; one that lands first is overwritten by the
 *   newer writer, whose own conditional put then fails and reads again. So the record only ever
 *   moves to the same or a newer epoch.
 * - A writer stops heartbeating when its KV stops (`Kv.stopped`: fenced or closed) and when its
 *   scope closes; it makes one put per `takeoverAfter / 3` and nothing else while all is well.
 * - Liveness never compares clocks: a standby (`awaitTakeover`) takes the writer for dead when the
 *   record's ETag (and the latest manifest id) has not changed for `takeoverAfter`, measured on its
 *   own `Clock`, reading them every `takeoverAfter / 3`. No record at all: nobody holds the store,
 *   take it at once.
 *
 * @since 0.2.0
 */
import { hostname } from "node:os"
import { Clock, Duration, Effect, Option, Random, type Scope } from "effect"
import * as Stored from "../schema/WriterRecord.ts"
import { DecodeError } from "./internal/binary.ts"
import { manifestPrefix } from "./kv/paths.ts"
import { latestId } from "./kv/recovery.ts"
import type * as Kv from "./Kv.ts"
import { Corrupt, Fenced } from "./KvError.ts"
import type { PutCondition, Service as Store } from "./ObjectStore.ts"
import { type InvalidKey, type InvalidRange, isPreconditionFailed, type ObjectStoreError } from "./ObjectStoreError.ts"

/**
 * What the writer record says: the writer's KV epoch, its heartbeat sequence number (from 1 at
 * its open, one higher at each rewrite), its address when it serves over RPC, and, for people
 * only, its clock when it wrote the record (`writtenAt`, ms), process id and host.
 *
 * @category models
 * @since 0.2.0
 */
export interface WriterRecord {
  readonly epoch: number
  readonly heartbeat: number
  readonly address: Option.Option<string>
  readonly writtenAt: number
  readonly pid: number
  readonly host: string
}

/**
 * The key of the writer record, relative to the store's root.
 *
 * @category constants
 * @since 0.2.0
 */
export const key: string = Stored.key

/**
 * The default takeover time: a writer heartbeats every 5 seconds, a standby takes over after 15
 * seconds without a heartbeat.
 *
 * @category constants
 * @since 0.2.0
 */
export const defaultTakeoverAfter: Duration.Duration = Duration.seconds(15)

/**
 * The shortest takeover time taken (1 second): below it a heartbeat every third of it would be
 * more requests than an idle queue should make, and store latency would cause false takeovers.
 *
 * @category constants
 * @since 0.2.0
 */
export const minTakeoverAfter: Duration.Duration = Duration.seconds(1)

/**
 * Errors of reading the writer record: `Corrupt` when the object fails its checks (frame, CRC32,
 * schema), or the store's errors.
 *
 * @category errors
 * @since 0.2.0
 */
export type ReadError = Corrupt | ObjectStoreError | InvalidKey | InvalidRange

const fromStored = (stored: Stored.WriterRecord): WriterRecord => ({
  epoch: stored.epoch,
  heartbeat: stored.heartbeat,
  address: Option.fromUndefinedOr(stored.address),
  writtenAt: stored.writtenAt,
  pid: stored.pid,
  host: stored.host
})

const toStored = (record: WriterRecord): Stored.WriterRecord => ({
  epoch: record.epoch,
  heartbeat: record.heartbeat,
  ...(Option.isSome(record.address) ? { address: record.address.value } : {}),
  writtenAt: record.writtenAt,
  pid: record.pid,
  host: record.host
})

/** The record object's ETag and bytes, or none when there is no record. */
const readRaw = (store: Store) =>
  store.get(key).pipe(
    Effect.map((object) => Option.some({ etag: object.etag, bytes: object.bytes })),
    Effect.catchReason("ObjectStoreError", "NotFound", () => Effect.succeed(Option.none()))
  )

const decodeRecord = (bytes: Uint8Array): WriterRecord | Corrupt => {
  try {
    return fromStored(Stored.decode(bytes))
  } catch (error) {
    return new Corrupt({ key, detail: error instanceof DecodeError ? error.message : String(error) })
  }
}

/**
 * The writer record of `store`, or none when no writer has written one. A damaged record fails
 * with `Corrupt`, naming the check it failed.
 *
 * @category reads
 * @since 0.2.0
 */
export const read = (store: Store): Effect.Effect<Option.Option<WriterRecord>, ReadError> =>
  Effect.flatMap(readRaw(store), (raw) => {
    if (Option.isNone(raw)) return Effect.succeed(Option.none())
    const decoded = decodeRecord(raw.value.bytes)
    return decoded instanceof Corrupt ? Effect.fail(decoded) : Effect.succeed(Option.some(decoded))
  })

/**
 * What a writer's attempt to write its record came to: written (with the new ETag), superseded
 * (the record names a newer epoch: this writer was fenced), or contended (lost the conditional
 * put every time: tried again at the next heartbeat).
 */
type Claimed =
  | { readonly _tag: "Written"; readonly etag: string }
  | { readonly _tag: "Superseded"; readonly epoch: number }
  | { readonly _tag: "Contended" }

/**
 * Writes `record` over whatever record is there unless that one names a newer epoch: reads it,
 * then puts conditionally on its ETag (or on its absence), reading again when another put got in
 * between. A damaged record is overwritten (it names no epoch that could outrank ours).
 */
const claim = (store: Store, record: WriterRecord) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = yield* readRaw(store)
      let condition: PutCondition = { ifNoneMatch: "*" }
      if (Option.isSome(current)) {
        const found = decodeRecord(current.value.bytes)
        if (!(found instanceof Corrupt) && found.epoch > record.epoch) {
          return { _tag: "Superseded", epoch: found.epoch } satisfies Claimed as Claimed
        }
        condition = { ifMatch: current.value.etag }
      }
      const etag = yield* store.put(key, Stored.encode(toStored(record)), condition).pipe(
        Effect.catchIf(isPreconditionFailed, () => Effect.succeed(undefined))
      )
      if (etag !== undefined) return { _tag: "Written", etag } satisfies Claimed as Claimed
    }
    return { _tag: "Contended" } satisfies Claimed as Claimed
  })

/**
 * Options of the heartbeat (already checked: see `JobQueue.Options`).
 *
 * @internal
 */
export interface HeartbeatOptions {
  readonly takeoverAfter: Duration.Duration
  readonly address: Option.Option<string>
}

/**
 * A third of `takeoverAfter` (at least 1 ms): the heartbeat's period and the standby's polling period.
 *
 * @internal
 */
export const intervalOf = (takeoverAfter: Duration.Duration): Duration.Duration =>
  Duration.millis(Math.max(1, Math.floor(Duration.toMillis(takeoverAfter) / 3)))

/**
 * Writes the record of the writer of `kv` now, then forks its heartbeat in the scope: a
 * conditional put every `takeoverAfter / 3`, until the KV stops, the scope closes, or a newer
 * writer's record is found. Fails with `Fenced` when the record already names a newer epoch (a
 * newer writer opened meanwhile); any other failure of the first write is logged and left to the
 * next heartbeat, so that a store hiccup at open does not fail the queue.
 *
 * @internal
 */
export const start = (kv: Kv.Service, store: Store, options: HeartbeatOptions): Effect.Effect<Heartbeat, Fenced, Scope.Scope> =>
  Effect.gen(function*() {
    const { epoch } = yield* kv.stats
    const interval = intervalOf(options.takeoverAfter)
    const pid = process.pid
    const host = hostname()
    let heartbeat = 0
    let etag: string | undefined
    let address = options.address

    const recordNow = Effect.map(Clock.currentTimeMillis, (writtenAt): WriterRecord => ({
      epoch,
      heartbeat: heartbeat + 1,
      address,
      writtenAt,
      pid,
      host
    }))

    /** One heartbeat: a put on the ETag we wrote last, or a claim when we know none or lost it. */
    const beat = Effect.gen(function*() {
      const record = yield* recordNow
      if (etag !== undefined) {
        const written = yield* store.put(key, Stored.encode(toStored(record)), { ifMatch: etag }).pipe(
          Effect.catchIf(isPreconditionFailed, () => Effect.succeed(undefined))
        )
        if (written !== undefined) {
          etag = written
          heartbeat = record.heartbeat
          return undefined
        }
        etag = undefined // someone else wrote the record: read what it says
      }
      const claimed = yield* claim(store, record)
      if (claimed._tag === "Written") {
        etag = claimed.etag
        heartbeat = record.heartbeat
        return undefined
      }
      return claimed._tag === "Superseded" ? claimed.epoch : undefined
    })

    const superseded = (newer: number) =>
      new Fenced({ epoch, detail: `the writer record names a newer writer (epoch ${newer})` })

    const first = yield* beat.pipe(
      Effect.catchCause((cause) => Effect.as(Effect.logWarning("writer record could not be written at open", cause), undefined))
    )
    if (first !== undefined) return yield* superseded(first)

    const loop = Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(interval)
        const newer = yield* beat.pipe(
          Effect.catchCause((cause) => Effect.as(Effect.logWarning("writer heartbeat failed", cause), undefined))
        )
        if (newer !== undefined) {
          return yield* Effect.logWarning(`writer heartbeat stopped: ${superseded(newer).message}`)
        }
      }
    })
    // the heartbeat ends with the writer: a fenced or closed writer touches the store no more
    yield* Effect.forkScoped(Effect.raceFirst(loop, Effect.ignore(kv.stopped)))
    return {
      publish: (next) =>
        Effect.suspend(() => {
          address = Option.some(next)
          // written at once (not at the next beat): clients looking for the writer find it now
          return Effect.asVoid(beat.pipe(Effect.catchCause((cause) => Effect.logWarning("writer address could not be published", cause))))
        })
    }
  })

/**
 * The running heartbeat of a writer.
 *
 * @internal
 */
export interface Heartbeat {
  /** Records `address` (where the writer serves, see `QueueServer`) in the record, at once. */
  readonly publish: (address: string) => Effect.Effect<void>
}

/**
 * Waits until the writer of `store` is gone: returns at once when there is no record, and
 * otherwise once neither the record's ETag nor the latest manifest id has changed for
 * `takeoverAfter` on this process's own `Clock` (reading both every `takeoverAfter / 3`, after a
 * random first offset so that standbys started together do not poll in step). The manifest id is
 * watched too because opening raises it first: a standby that sees it move knows that another one
 * is opening right now, before that one's record is written, and waits instead of opening too. A
 * failed read proves nothing either way: it is logged and the wait goes on.
 *
 * @internal
 */
export const awaitTakeover = (store: Store, takeoverAfter: Duration.Duration): Effect.Effect<void> =>
  Effect.gen(function*() {
    const interval = Duration.toMillis(intervalOf(takeoverAfter))
    const limit = Duration.toMillis(takeoverAfter)
    let seen: string | undefined
    let since = 0
    let offset = Math.floor((yield* Random.next) * interval)
    while (true) {
      const read = yield* Effect.result(Effect.all([readRaw(store), latestId(store, manifestPrefix)]))
      if (read._tag === "Failure") {
        yield* Effect.logWarning(`standby could not read the writer record: ${read.failure.message}`)
      } else {
        const [record, manifest] = read.success
        if (Option.isNone(record)) return
        const now = yield* Clock.currentTimeMillis
        const token = `${record.value.etag} ${Option.getOrElse(manifest, () => 0)}`
        if (token !== seen) {
          seen = token
          since = now
        } else if (now - since >= limit) {
          return
        }
      }
      yield* Effect.sleep(Duration.millis(interval + offset))
      offset = 0
    }
  })
