/**
 * A job payload stored as an object of its own (`payloads/<ulid>`: an encoded payload over the
 * queue's `offloadThreshold`), format version 1:
 *
 * ```
 * frame(kind 4, version 1, the encoded payload: msgpack of the definition schema's encoded value)
 * ```
 *
 * The frame (`src/internal/binary.ts`) is the one every KV object has: the magic `"BQKV"`, the
 * kind, the format version, the body, and a CRC32 of everything before it. So an object that was
 * damaged, cut short or is not a payload object is refused as a whole, never decoded. Kinds 1 to 3
 * are the KV's WAL segments, manifests and runs.
 *
 * @since 0.1.0
 */
import { frame, unframe } from "../src/internal/binary.ts"

/**
 * The frame kind of payload objects.
 *
 * @category constants
 * @since 0.1.0
 */
export const kind = 4

/**
 * The format version written, and the only one read.
 *
 * @category constants
 * @since 0.1.0
 */
export const version = 1

/**
 * The object holding an encoded payload.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encode = (payload: Uint8Array): Uint8Array => frame(kind, version, payload)

/**
 * The encoded payload an object holds, after checking its magic, kind, version and CRC32; throws
 * `DecodeError` (saying which check failed) on anything else.
 *
 * @category encoding
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Uint8Array => unframe(bytes, kind, version)
