/**
 * The writer record: one small object, `writer` at the store's root (beside the KV's `manifest/`,
 * `wal/`, `runs/` and the queue's `payloads/`, none of which it can be mistaken for), that says
 * which writer holds the store, where it can be reached, and that it is alive. Format version 1:
 *
 * ```
 * frame(kind 5, version 1, msgpack of the encoded `WriterRecord` schema)
 * ```
 *
 * The frame (`src/internal/binary.ts`) is the one every KV object has (magic `"BQKV"`, kind,
 * version, body, CRC32 of all before), so a damaged record is refused as a whole.
 *
 * The writer of epoch `epoch` rewrites it every `takeoverAfter / 3` with `heartbeat` one higher,
 * always conditionally on the ETag it last wrote or read (see `src/WriterRecord.ts`): a record
 * only ever moves to the same or a newer epoch.
 *
 * @since 0.2.0
 */
import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack"
import { Schema } from "effect"
import { DecodeError, frame, unframe } from "../src/internal/binary.ts"

/**
 * The frame kind of the writer record.
 *
 * @category constants
 * @since 0.2.0
 */
export const kind = 5

/**
 * The format version written, and the only one read.
 *
 * @category constants
 * @since 0.2.0
 */
export const version = 1

/**
 * The object key of the writer record, relative to the store's root.
 *
 * @category constants
 * @since 0.2.0
 */
export const key = "writer"

/**
 * The stored fields.
 *
 * @category schemas
 * @since 0.2.0
 */
export const WriterRecord = Schema.Struct({
  /** The KV writer epoch of the writer that wrote it (see `schema/Manifest.ts`). */
  epoch: Schema.Int,
  /** Raised by one at every rewrite by the same writer, from 1 at its open. */
  heartbeat: Schema.Int,
  /** Where the writer serves the queue to other processes (RPC), when it does. */
  address: Schema.optionalKey(Schema.String),
  /** The writer's clock (ms) when it wrote the record: for people, never compared with another clock. */
  writtenAt: Schema.Number,
  /** The writer's process id, for people. */
  pid: Schema.Int,
  /** The writer's host name, for people. */
  host: Schema.String
})

/**
 * @category models
 * @since 0.2.0
 */
export type WriterRecord = typeof WriterRecord.Type

const encodeSchema = Schema.encodeSync(WriterRecord)
const decodeSchema = Schema.decodeUnknownSync(WriterRecord)

/**
 * The object holding `record`.
 *
 * @category encoding
 * @since 0.2.0
 */
export const encode = (record: WriterRecord): Uint8Array => frame(kind, version, msgpackEncode(encodeSchema(record)))

/**
 * The record an object holds, after checking its frame and schema; throws `DecodeError` (saying
 * which check failed) on anything else.
 *
 * @category encoding
 * @since 0.2.0
 */
export const decode = (bytes: Uint8Array): WriterRecord => {
  const body = unframe(bytes, kind, version)
  try {
    return decodeSchema(msgpackDecode(body))
  } catch (error) {
    throw new DecodeError(`writer record does not match its schema: ${String(error)}`)
  }
}
