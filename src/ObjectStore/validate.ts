/**
 * Input checks shared by every backend: keys, list prefixes, metadata and ranges are refused
 * before any I/O.
 *
 * @internal
 */
import { Effect } from "effect"
import type { GetOptions, Metadata } from "../ObjectStore.ts"
import { InvalidKey, InvalidMetadata, InvalidRange } from "../ObjectStoreError.ts"

/** Longest key, in UTF-8 bytes (S3's limit). */
export const maxKeyBytes = 1024

/** Most user metadata, names and values together, in bytes (S3's limit). */
export const maxMetadataBytes = 2048

/** Metadata names starting with this are reserved for bucketq itself. */
export const reservedMetadataPrefix = "bucketq-"

const encoder = new TextEncoder()

// U+0000-U+001F and U+007F
// eslint-disable-next-line no-control-regex
const controlCharacter = /[\u0000-\u001f\u007f]/

const utf8Length = (s: string): number => encoder.encode(s).length

/** Why `key` is not a valid key, or undefined when it is. */
export const keyProblem = (key: string): InvalidKey["reason"] | undefined => {
  if (key.length === 0) return "Empty"
  if (key.length > maxKeyBytes / 3 && utf8Length(key) > maxKeyBytes) return "TooLong"
  if (controlCharacter.test(key)) return "ControlCharacter"
  for (const segment of key.split("/")) {
    if (segment === "" || segment === "." || segment === "..") return "InvalidSegment"
  }
  return undefined
}

/** Fails with `InvalidKey` unless `key` is a valid key. */
export const checkKey = (key: string): Effect.Effect<void, InvalidKey> => {
  const reason = keyProblem(key)
  return reason === undefined ? Effect.void : Effect.fail(new InvalidKey({ key, reason }))
}

/**
 * A list prefix may be empty or end inside a segment (`"wal/000"`), but every complete segment
 * in it follows the key rules, and it has no control characters.
 */
export const checkPrefix = (prefix: string): Effect.Effect<void, InvalidKey> => {
  if (prefix.length === 0) return Effect.void
  if (utf8Length(prefix) > maxKeyBytes) return Effect.fail(new InvalidKey({ key: prefix, reason: "TooLong" }))
  if (controlCharacter.test(prefix)) return Effect.fail(new InvalidKey({ key: prefix, reason: "ControlCharacter" }))
  const complete = prefix.split("/").slice(0, -1)
  for (const segment of complete) {
    if (segment === "" || segment === "." || segment === "..") {
      return Effect.fail(new InvalidKey({ key: prefix, reason: "InvalidSegment" }))
    }
  }
  return Effect.void
}

/** `startAfter` of a list need not be a key, but it is bounded like one. */
export const checkStartAfter = (startAfter: string): Effect.Effect<void, InvalidKey> => {
  if (utf8Length(startAfter) > maxKeyBytes) return Effect.fail(new InvalidKey({ key: startAfter, reason: "TooLong" }))
  if (controlCharacter.test(startAfter)) {
    return Effect.fail(new InvalidKey({ key: startAfter, reason: "ControlCharacter" }))
  }
  return Effect.void
}

const metadataName = /^[a-z0-9][a-z0-9-]{0,127}$/
const printableAscii = /^[\x20-\x7e]*$/

/**
 * Fails with `InvalidMetadata` unless every entry of `metadata` may be stored on every backend.
 * Reserved names are refused by the retry policy, which adds its own (`bucketq-token`).
 */
export const checkMetadata = (metadata: Metadata | undefined): Effect.Effect<void, InvalidMetadata> => {
  if (metadata === undefined) return Effect.void
  let total = 0
  for (const [name, value] of Object.entries(metadata)) {
    if (!metadataName.test(name)) return Effect.fail(new InvalidMetadata({ name, reason: "InvalidName" }))
    if (typeof value !== "string" || !printableAscii.test(value)) {
      return Effect.fail(new InvalidMetadata({ name, reason: "InvalidValue" }))
    }
    total += name.length + value.length
    if (total > maxMetadataBytes) return Effect.fail(new InvalidMetadata({ name, reason: "TooLarge" }))
  }
  return Effect.void
}

/** Fails with `InvalidRange` for a negative start or an end before the start. */
export const checkRange = (key: string, options: GetOptions | undefined): Effect.Effect<void, InvalidRange> => {
  const range = options?.range
  if (range === undefined) return Effect.void
  const { end, start } = range
  const bad = !Number.isSafeInteger(start) || start < 0 ||
    (end !== undefined && (!Number.isSafeInteger(end) || end < start))
  if (!bad) return Effect.void
  return Effect.fail(new InvalidRange({ key, start, ...(end === undefined ? {} : { end }) }))
}

/** The bytes `[start, end)` of `bytes`, clamped to its length; the whole of it without a range. */
export const sliceRange = (bytes: Uint8Array, options: GetOptions | undefined): Uint8Array => {
  const range = options?.range
  if (range === undefined) return bytes
  return bytes.subarray(Math.min(range.start, bytes.length), Math.min(range.end ?? bytes.length, bytes.length))
}

/** Fails with `InvalidMetadata` if a name of `metadata` is reserved for bucketq. */
export const checkUnreserved = (metadata: Metadata | undefined): Effect.Effect<void, InvalidMetadata> => {
  for (const name of Object.keys(metadata ?? {})) {
    if (name.startsWith(reservedMetadataPrefix)) return Effect.fail(new InvalidMetadata({ name, reason: "Reserved" }))
  }
  return Effect.void
}
