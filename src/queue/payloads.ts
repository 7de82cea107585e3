/**
 * Payloads in the store: the codecs of `codecs.ts` (encoding, limits, migrations) over the queue's
 * limit, and payloads over `offloadThreshold` kept as objects of their own under `payloads/`,
 * framed by `schema/PayloadObject.ts` (magic, kind, format version and a CRC32; failing a check
 * is `Corrupt` naming the object). The contract with the commits: an object is written before the
 * commit of the record pointing to it and deleted only after the commit removing that record, so
 * a stored job never lacks its payload (an orphan object is possible, and logged).
 *
 * @internal
 */
import { Effect } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import * as PayloadObject from "../../schema/PayloadObject.ts"
import type * as Job from "../Job.ts"
import type { PayloadStoreError } from "../JobQueue.ts"
import { PayloadMissing } from "../JobQueueError.ts"
import * as Kv from "../Kv.ts"
import { Corrupt } from "../KvError.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import * as Codecs from "./codecs.ts"
import type { QueueContext } from "./context.ts"

/** Where payload objects are stored in the bucket. */
const payloadPrefix = "payloads/"

/** The encoded payload a payload object holds, or `Corrupt` naming the object and the check it fails. */
const unframePayload = (key: string, bytes: Uint8Array): Effect.Effect<Uint8Array, Corrupt> =>
  Effect.try({
    try: () => PayloadObject.decode(bytes),
    catch: (error) => new Corrupt({ key, detail: error instanceof Error ? error.message : String(error) })
  })

/** The payload operations of one queue. */
export type Payloads = ReturnType<typeof make>

/** The payload operations of the queue of `ctx`. */
export const make = (ctx: QueueContext) => {
  const { live, maxPayload, nextId, offloadThreshold, store } = ctx

  const codecs = Codecs.make(maxPayload)
  const { decodeBytes } = codecs

  /**
   * The payload of `record` decoded with the definition, read from its object first when
   * offloaded. Stored with the definition's version (absent: 1), it is decoded with the payload
   * schema; stored with another, through the definition's migrations (`PayloadVersionError` when
   * it cannot be): the current version pays for nothing more than the comparison.
   */
  const decodePayload = <A, I>(definition: Job.Definition<A, I>, record: JobRecord) =>
    Effect.flatMap(payloadOf(record), (bytes) => decodeBytes(definition, record, bytes))

  // ---- payloads over the threshold: objects of their own ------------------------------------

  /**
   * The record to commit: as it is, or, with a payload over the threshold, pointing to a new
   * object that holds the payload (written first: a missing payload is never possible, an
   * orphan object is).
   */
  const offload = (record: JobRecord, now: number): Effect.Effect<JobRecord, ObjectStoreError | Kv.StopError> => {
    if (record.payload.length <= offloadThreshold) return Effect.succeed(record)
    const key = `${payloadPrefix}${nextId(now)}`
    return Effect.andThen(live, store.put(key, PayloadObject.encode(record.payload), { ifNoneMatch: "*" })).pipe(
      Effect.catchTags({ InvalidKey: Effect.die, InvalidMetadata: Effect.die }),
      Effect.as({ ...record, payload: new Uint8Array(0), payloadRef: key })
    )
  }

  /** Deletes the payload objects of records no longer stored; a failure leaves an orphan, logged. */
  const dropPayloads = (records: ReadonlyArray<JobRecord>) =>
    Effect.forEach(records, (record) =>
      record.payloadRef === undefined ? Effect.void : store.delete(record.payloadRef).pipe(
        Effect.catchCause((cause) => Effect.logWarning(`payload object ${record.payloadRef} of job ${record.id} was not deleted`, cause))
      ), { discard: true, concurrency: 8 })

  /**
   * Runs `commit` for records offloaded first; their objects are deleted if it failed without
   * committing (a conflict, a duplicate id, a value too large). Interrupted, or failing with
   * `Fenced` or `Closed`, the commit may stand (applied, its WAL write on its way or landed):
   * the objects stay, since deleting them could leave a stored job without its payload.
   */
  const committing = <A, E>(records: ReadonlyArray<JobRecord>, commit: Effect.Effect<A, E>) =>
    Effect.tapError(commit, (error) => Kv.isStopError(error) ? Effect.void : dropPayloads(records))

  /** The encoded payload of `record`, read from its object (and checked) when offloaded. */
  const payloadOf = (record: JobRecord): Effect.Effect<Uint8Array, PayloadStoreError> =>
    record.payloadRef === undefined ? Effect.succeed(record.payload) : store.get(record.payloadRef).pipe(
      Effect.flatMap((object) => unframePayload(object.key, object.bytes)),
      Effect.catchReason("ObjectStoreError", "NotFound", () => Effect.fail(new PayloadMissing({ id: record.id, key: record.payloadRef! }))),
      Effect.catchTags({ InvalidKey: Effect.die, InvalidRange: Effect.die })
    )

  return { ...codecs, decodePayload, offload, dropPayloads, committing, payloadOf }
}
