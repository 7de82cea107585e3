/**
 * Shared msgpack codecs for the hot paths. The library's `encode`/`decode` functions build a new
 * `Encoder`/`Decoder` per call (the encoder with a 2 KiB buffer, which the result is a view of);
 * one instance each is reused here. Both are re-entrant (a nested call works on a clone).
 *
 * @internal
 */
import { Decoder, Encoder } from "@msgpack/msgpack"

const encoder = new Encoder({ ignoreUndefined: true })
const decoder = new Decoder()

/** msgpack of `value`, `undefined` fields left out; the bytes are a copy of their own. */
export const encode = (value: unknown): Uint8Array => encoder.encode(value)

/** The value msgpack `bytes` hold; throws on malformed input. */
export const decode = (bytes: Uint8Array): unknown => decoder.decode(bytes)
