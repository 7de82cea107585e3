/**
 * The codecs of payloads and results: a definition's Schemas (their codecs built once per schema),
 * then msgpack; payloads over `maxPayloadBytes` refused (`PayloadTooLarge`), results over 64 KiB
 * (`ValueTooLarge`); a stored payload of an older version brought to the definition's through its
 * migrations. Pure: nothing here reads or writes the store, so the same codecs serve a queue in
 * this process and one reached over a connection (`codec.ts`).
 *
 * @internal
 */
import { Data, Effect, Option, Schema } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type { InvalidOption } from "../InvalidOption.ts"
import * as Msgpack from "../internal/msgpack.ts"
import * as Rules from "../internal/options.ts"
import type * as Job from "../Job.ts"
import { InvalidPayload, PayloadTooLarge } from "../JobQueueError.ts"
import { ValueTooLarge } from "../KvError.ts"

/** The largest encoded result, kept in the job's record. */
export const maxResultBytes = 64 * 1024

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

/** Type-side validators by schema: a migration's output checked against the next version's schema. */
const typeValidators = new WeakMap<object, (input: unknown) => Effect.Effect<unknown, Schema.SchemaError>>()

const typeValidator = (schema: Schema.Codec<any, any, never, never>): (input: unknown) => Effect.Effect<unknown, Schema.SchemaError> => {
  let validate = typeValidators.get(schema)
  if (validate === undefined) {
    validate = Schema.decodeUnknownEffect(Schema.toType(schema))
    typeValidators.set(schema, validate)
  }
  return validate
}

/**
 * A stored payload that cannot be brought to its definition's version: its version has no
 * migration, or a step failed. Internal: a claim dead-letters the job with `message` as reason.
 */
export class PayloadVersionError extends Data.TaggedError("PayloadVersionError")<{ readonly message: string }> {}

/**
 * The decoded payload of version `current` from `input`, stored with version `stored` (≠
 * `current`): decoded with the schema of the step from `stored`, then through each step up to
 * `current`, each output checked against the next version's schema (the next step's, or the
 * payload's for the last). Fails with `PayloadVersionError` naming the versions and what failed.
 */
const migrate = (definition: Job.Definition<any, any>, stored: number, current: number, input: unknown) => {
  const steps = definition.migrations ?? []
  const first = steps.findIndex((step) => step.from === stored)
  const failed = (detail: string) =>
    new PayloadVersionError({ message: `payload version ${stored} does not migrate to version ${current}: ${detail}` })
  if (first < 0) {
    const known = steps.length === 0 ? "none" : `from ${steps[0]!.from} to ${steps[steps.length - 1]!.from}`
    return Effect.fail(failed(
      stored > current
        ? `it is newer than the definition's version ${current}`
        : `the definition of "${definition.queue}" has no migration from version ${stored} (migrations: ${known})`
    ))
  }
  const decodeOld = Effect.mapError(
    payloadDecoder(steps[first]!.schema)(input),
    (error) => failed(`it does not decode as version ${stored}: ${error.message}`)
  )
  const step = (value: unknown, i: number): Effect.Effect<unknown, PayloadVersionError> => {
    if (i === steps.length) return Effect.succeed(value)
    const { from, migrate: f } = steps[i]!
    const next = i + 1 < steps.length ? steps[i + 1]!.schema : definition.payload
    return Effect.try({ try: () => f(value), catch: (error) => failed(`the migration from version ${from} threw: ${String(error)}`) }).pipe(
      Effect.flatMap((out) =>
        Effect.mapError(
          typeValidator(next)(out),
          (error) => failed(`the migration from version ${from} returned a value version ${from + 1} rejects: ${error.message}`)
        )
      ),
      Effect.flatMap((checked) => step(checked, i + 1))
    )
  }
  return Effect.flatMap(decodeOld, (value) => step(value, first))
}

/** The codecs of one queue. */
export type Codecs = ReturnType<typeof make>

/** The codecs of a queue taking payloads up to `maxPayload` encoded bytes. */
export const make = (maxPayload: number) => {
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

  /**
   * The encoded payload `bytes` of `record` decoded with the definition. Stored with the
   * definition's version (absent: 1), it is decoded with the payload schema; stored with another,
   * through the definition's migrations (`PayloadVersionError` when it cannot be): the current
   * version pays for nothing more than the comparison.
   */
  const decodeBytes = <A, I>(definition: Job.Definition<A, I>, record: JobRecord, bytes: Uint8Array) =>
    Effect.flatMap(Effect.try(() => Msgpack.decode(bytes)), (input): Effect.Effect<A, Schema.SchemaError | PayloadVersionError> => {
      const stored = record.payloadVersion ?? 1
      const current = definition.version ?? 1
      return stored === current
        ? payloadDecoder(definition.payload)(input)
        : migrate(definition, stored, current, input) as Effect.Effect<A, PayloadVersionError>
    })

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

  return { encodePayload, decodeBytes, encodeResult, decodeResult }
}
