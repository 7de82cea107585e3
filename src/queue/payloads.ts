/**
 * Payloads: their codecs (the definition's Schema, then msgpack), built once per schema, and
 * the framing of a payload stored as an object of its own (`schema/PayloadObject.ts`: magic,
 * kind, format version and a CRC32), whose checks failing is `Corrupt` naming the object.
 *
 * @internal
 */
import { Effect, Schema } from "effect"
import * as PayloadObject from "../../schema/PayloadObject.ts"
import { Corrupt } from "../KvError.ts"

/** Encoded payloads up to this size are stored inline by default. */
export const defaultOffloadThreshold = 256 * 1024
export const defaultMaxPayload = 64 * 1024 * 1024
export const payloadPrefix = "payloads/"

/** Payload codecs by schema, built once per schema rather than per job. */
export const payloadEncoders = new WeakMap<object, (payload: unknown) => Effect.Effect<unknown, Schema.SchemaError>>()
export const payloadDecoders = new WeakMap<object, (input: unknown) => Effect.Effect<unknown, Schema.SchemaError>>()

export const payloadEncoder = <A>(schema: Schema.Codec<A, any, never, never>): (payload: A) => Effect.Effect<unknown, Schema.SchemaError> => {
  let encode = payloadEncoders.get(schema)
  if (encode === undefined) {
    encode = Schema.encodeEffect(schema) as (payload: unknown) => Effect.Effect<unknown, Schema.SchemaError>
    payloadEncoders.set(schema, encode)
  }
  return encode
}

export const payloadDecoder = <A>(schema: Schema.Codec<A, any, never, never>): (input: unknown) => Effect.Effect<A, Schema.SchemaError> => {
  let decode = payloadDecoders.get(schema)
  if (decode === undefined) {
    decode = Schema.decodeUnknownEffect(schema)
    payloadDecoders.set(schema, decode)
  }
  return decode as (input: unknown) => Effect.Effect<A, Schema.SchemaError>
}

/** The encoded payload a payload object holds, or `Corrupt` naming the object and the check it fails. */
export const unframePayload = (key: string, bytes: Uint8Array): Effect.Effect<Uint8Array, Corrupt> =>
  Effect.try({
    try: () => PayloadObject.decode(bytes),
    catch: (error) => new Corrupt({ key, detail: error instanceof Error ? error.message : String(error) })
  })
