/**
 * A manifest: the state of the store at one version, `manifest/<id>` (20-digit id), created with
 * put-if-absent at latest + 1 and never changed. The latest id wins.
 *
 * ```
 * frame(kind 2, version 1, msgpack of the encoded `Manifest` schema)
 * ```
 *
 * @since 0.1.0
 */
import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack"
import { Schema } from "effect"
import { DecodeError, frame, unframe } from "../src/internal/binary.ts"

/** @since 0.1.0 */
export const kind = 2
/** @since 0.1.0 */
export const version = 1

/**
 * A sorted run named by a manifest.
 *
 * @category schemas
 * @since 0.1.0
 */
export const RunRef = Schema.Struct({
  /** `runs/<id>`; a ULID, so its time says when it was written. */
  id: Schema.String,
  entries: Schema.Int,
  bytes: Schema.Int,
  /** Highest sequence number in it. */
  maxSeq: Schema.Int,
  /**
   * Nothing older is under it: written with no older run in force (its deletes were dropped), and
   * so are the runs after it in the list, if any.
   */
  full: Schema.Boolean,
  /**
   * One sorted run written as several objects (key ranges that do not overlap, in key order)
   * shares a group, the id of its first object; absent for a run of one object. Absent in
   * manifests written before groups existed (each run one object).
   */
  group: Schema.optional(Schema.String)
})

/**
 * @category models
 * @since 0.1.0
 */
export type RunRef = typeof RunRef.Type

/**
 * @category schemas
 * @since 0.1.0
 */
export const Manifest = Schema.Struct({
  /** Raised by one by every writer that opens the store; a higher epoch fences lower ones. */
  writerEpoch: Schema.Int,
  /** WAL ids up to this one are covered by the runs; replay starts after it. */
  replayAfterWalId: Schema.Int,
  /** Every sequence number up to this one is in the runs. */
  lastSeq: Schema.Int,
  /** Newest first: applying them oldest first rebuilds the state at `lastSeq`. */
  runs: Schema.Array(RunRef),
  /** When it was written (Effect `Clock`, ms). */
  createdAt: Schema.Number
})

/**
 * @category models
 * @since 0.1.0
 */
export type Manifest = typeof Manifest.Type

const encodeSchema = Schema.encodeSync(Manifest)
const decodeSchema = Schema.decodeUnknownSync(Manifest)

/**
 * @category encoding
 * @since 0.1.0
 */
export const encode = (manifest: Manifest): Uint8Array => frame(kind, version, msgpackEncode(encodeSchema(manifest)))

/**
 * Decodes a manifest; throws `DecodeError` on anything malformed.
 *
 * @category encoding
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Manifest => {
  const body = unframe(bytes, kind, version)
  try {
    return decodeSchema(msgpackDecode(body))
  } catch (error) {
    throw new DecodeError(`manifest does not match its schema: ${String(error)}`)
  }
}

/** The key of manifest `id`. @since 0.1.0 */
export const keyOf = (id: number): string => `manifest/${String(id).padStart(20, "0")}`
