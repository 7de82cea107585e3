/**
 * The on-disk form of one object of the directory backend, format version 2:
 *
 * ```
 * "BQO" 0x01 | header length (u32 BE) | CRC32 of the header (u32 BE) | header (JSON) | body
 * ```
 *
 * The header holds the ETag, the user metadata and the body's size, so that all are replaced
 * atomically with the body by one rename or link. A file whose body is not the size its header
 * gives (cut short, or grown) is corrupt: an empty body (a WAL fence) cannot be faked by
 * truncating a non-empty one. The body's content is the caller's concern (every Kv object and
 * offloaded payload carries its own CRC32). Version 1 (no size) is not read.
 *
 * @since 0.1.0
 */
import { crc32 } from "node:zlib"
import { Option, Schema } from "effect"

/**
 * The header of a stored object.
 *
 * @category schemas
 * @since 0.1.0
 */
export const Header = Schema.Struct({
  version: Schema.Literal(2),
  etag: Schema.String,
  metadata: Schema.Record(Schema.String, Schema.String),
  /** Bytes of the body. */
  size: Schema.Int
})

/**
 * @category models
 * @since 0.1.0
 */
export type Header = typeof Header.Type

const magic = [0x42, 0x51, 0x4f, 0x01] as const

/**
 * Bytes before the header JSON: magic, length, CRC32.
 *
 * @category constants
 * @since 0.1.0
 */
export const prefixLength = 12

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })
const decodeHeader = Schema.decodeUnknownOption(Header)

/**
 * The bytes before the body: magic, length, CRC32 and header.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeHead = (header: Header): Uint8Array => {
  const json = encoder.encode(JSON.stringify(header))
  const out = new Uint8Array(prefixLength + json.length)
  out.set(magic, 0)
  const view = new DataView(out.buffer)
  view.setUint32(4, json.length)
  view.setUint32(8, crc32(json))
  out.set(json, prefixLength)
  return out
}

/**
 * The result of reading the start of a file: its header and where the body begins; or how many
 * bytes are needed to read the header; or the file is not in this format.
 *
 * @category models
 * @since 0.1.0
 */
export type ParsedHead =
  | { readonly _tag: "Parsed"; readonly header: Header; readonly bodyOffset: number }
  | { readonly _tag: "NeedBytes"; readonly bytes: number }
  | { readonly _tag: "Corrupt"; readonly detail: string }

/**
 * Parses the head of a file from its first bytes.
 *
 * @category encoding
 * @since 0.1.0
 */
export const parseHead = (bytes: Uint8Array): ParsedHead => {
  if (bytes.length < prefixLength) {
    return { _tag: "Corrupt", detail: `${bytes.length} bytes, shorter than the object prefix` }
  }
  if (magic.some((b, i) => bytes[i] !== b)) return { _tag: "Corrupt", detail: "not a bucketq object (magic)" }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const length = view.getUint32(4)
  const bodyOffset = prefixLength + length
  if (bytes.length < bodyOffset) return { _tag: "NeedBytes", bytes: bodyOffset }
  const json = bytes.subarray(prefixLength, bodyOffset)
  if (crc32(json) !== view.getUint32(8)) return { _tag: "Corrupt", detail: "header checksum mismatch" }
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(json))
  } catch (error) {
    return { _tag: "Corrupt", detail: `header is not JSON: ${String(error)}` }
  }
  const header = decodeHeader(parsed)
  if (Option.isNone(header)) return { _tag: "Corrupt", detail: "header has an unknown format" }
  return { _tag: "Parsed", header: header.value, bodyOffset }
}
