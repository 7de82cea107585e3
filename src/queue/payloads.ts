/**
 * Payloads: their codecs (the definition's Schema, then msgpack; the Schema codecs built once per
 * schema), their limits (`PayloadTooLarge` above `maxPayloadBytes`), and payloads over
 * `offloadThreshold` kept as objects of their own under `payloads/`, framed by
 * `schema/PayloadObject.ts` (magic, kind, format version and a CRC32; failing a check is `Corrupt`
 * naming the object). The contract with the commits: an object is written before the commit of
 * the record pointing to it and deleted only after the commit removing that record, so a stored
 * job never lacks its payload (an orphan object is possible, and logged).
 *
 * @internal
 */
import { Effect, Option, Schema } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import * as PayloadObject from "../../schema/PayloadObject.ts"
import * as Msgpack from "../internal/msgpack.ts"
import type * as Job from "../Job.ts"
import type { PayloadStoreError } from "../JobQueue.ts"
import { InvalidPayload, PayloadMissing, PayloadTooLarge } from "../JobQueueError.ts"
import * as Kv from "../Kv.ts"
import { Corrupt, ValueTooLarge } from "../KvError.ts"
import type { InvalidOption } from "../InvalidOption.ts"
import * as Rules from "../internal/options.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import type { QueueContext } from "./context.ts"

/** Where payload objects are stored in the bucket. */
const payloadPrefix = "payloads/"

/** The largest encoded result, kept in the job's record. */
const maxResultBytes = 64 * 1024

/** Payload codecs by schema, built once per schema rather than per job. */
const payloadEncoders = new WeakMap<object, (payload: unknown) => Effect.Effect<unknown, Schema.SchemaError>>()
const payloadDecoders = new WeakMap<object, (input: unknown) => Effect.Effect<unknown, Schema.SchemaError>>()

const payloadEncoder = <A>(schema: Schema.Codec<A, any, never, never>): (payload: A) => Effect.Effect<unknown, Schema.SchemaError> => {
  let encode = payloadEncoders.get(schema)
  if (encode === undefined) {
    encode = Schema.encodeEffect(schema) as (payload: unknown) => Effect.Effect<unknown, Schema.SchemaError>
    payloadEncoders.set(schema, encode)
  }
  return encode
}

const payloadDecoder = <A>(schema: Schema.Codec<A, any, never, never>): (input: unknown) => Effect.Effect<A, Schema.SchemaError> => {
  let decode = payloadDecoders.get(schema)
  if (decode === undefined) {
    decode = Schema.decodeUnknownEffect(schema)
    payloadDecoders.set(schema, decode)
  }
  return decode as (input: unknown) => Effect.Effect<A, Schema.SchemaError>
}

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

  /** The definition's encoding of `payload`, msgpack'd: `InvalidPayload`, or `PayloadTooLarge` over the limit. */
  const encodePayload = <A, I>(definition: Job.Definition<A, I>, payload: A) =>
    payloadEncoder(definition.payload)(payload).pipe(
      Effect.mapError((error) => new InvalidPayload({ detail: error.message })),
      Effect.flatMap((encoded) => {
        const b = Msgpack.encode(encoded)
        return b.length <= maxPayload
          ? Effect.succeed(b)
          : Effect.fail(new PayloadTooLarge({ size: b.length, limit: maxPayload }))
      })
    )

  /** The payload of `record` decoded with the definition, read from its object first when offloaded. */
  const decodePayload = <A, I>(definition: Job.Definition<A, I>, record: JobRecord) =>
    Effect.flatMap(payloadOf(record), (bytes) => Effect.flatMap(Effect.try(() => Msgpack.decode(bytes)), payloadDecoder(definition.payload)))

  /**
   * A job's result encoded with the definition's `result` schema, msgpack'd: `InvalidOption`
   * naming `result` when the definition has no result schema or the schema refuses it,
   * `ValueTooLarge` over 64 KiB (it is stored in the job's record).
   */
  const encodeResult = (definition: Job.Definition<any, any, any>, result: unknown): Effect.Effect<Uint8Array, InvalidOption | ValueTooLarge> => {
    if (definition.result === undefined) {
      return Effect.fail(Rules.invalid("result", result, `job ${definition.queue} has no result schema (Job.define's result)`))
    }
    return payloadEncoder(definition.result)(result).pipe(
      Effect.mapError((error) => Rules.invalid("result", result, error.message)),
      Effect.flatMap((encoded) => {
        const b = Msgpack.encode(encoded)
        return b.length <= maxResultBytes ? Effect.succeed(b) : Effect.fail(new ValueTooLarge({ what: "value", size: b.length, limit: maxResultBytes }))
      })
    )
  }

  /** A stored result decoded with the definition's `result` schema (none without one, or without a result). */
  const decodeResult = <R>(definition: Job.Definition<any, any, R>, record: JobRecord): Effect.Effect<Option.Option<R>, InvalidPayload> =>
    definition.result === undefined || record.result === undefined ? Effect.succeedNone : Effect.try(() => Msgpack.decode(record.result!)).pipe(
      Effect.flatMap(payloadDecoder(definition.result)),
      Effect.map(Option.some),
      Effect.mapError((error) => new InvalidPayload({ detail: `result of job ${record.id} does not decode: ${String(error)}` }))
    )

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

  return { encodePayload, decodePayload, encodeResult, decodeResult, offload, dropPayloads, committing, payloadOf }
}
