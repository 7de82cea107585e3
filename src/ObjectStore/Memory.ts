/**
 * The in-memory backend: a sorted key index over a map, exact conditional semantics, ETags from
 * a counter. Every operation is one synchronous step, so it is atomic.
 *
 * @internal
 */
import { Effect, Option, Stream } from "effect"
import type { ListEntry, Metadata, Service } from "../ObjectStore.ts"
import * as ObjectStoreError from "../ObjectStoreError.ts"
import { BTree } from "../internal/btree.ts"
import { compareKeys } from "../internal/keyOrder.ts"
import { sliceRange } from "./validate.ts"

interface Entry {
  readonly bytes: Uint8Array
  readonly etag: string
  readonly metadata: Metadata
}

/** Keys per page of a listing, as S3 answers. */
export const listPageSize = 1000

/**
 * Pages of entries of the keys starting with `prefix` after `startAfter`, in key order, from a
 * function that lists up to `limit` keys after a given one. Each page searches again, so writes
 * between pages are seen as S3 would.
 *
 * @internal
 */
export const listPaged = <A>(
  keysAfter: (after: string | undefined, prefix: string, limit: number) => ReadonlyArray<string>,
  entry: (key: string) => A | undefined,
  prefix: string,
  startAfter: string | undefined
): Stream.Stream<A> =>
  Stream.paginate(startAfter, (after) =>
    Effect.sync(() => {
      const keys = keysAfter(after, prefix, listPageSize + 1)
      const pageKeys = keys.slice(0, listPageSize)
      const page: Array<A> = []
      for (const key of pageKeys) {
        const value = entry(key)
        if (value !== undefined) page.push(value)
      }
      const more = keys.length > listPageSize
      return [page, more ? Option.some(pageKeys[pageKeys.length - 1]) : Option.none()] as const
    }))

/** @internal */
export const make: Effect.Effect<Service> = Effect.sync(() => {
  const objects = new Map<string, Entry>()
  // the key index, in code point order (UTF-8 byte order)
  const keys = new BTree<string, undefined>(undefined, compareKeys)
  let version = 0

  const write = (key: string, bytes: Uint8Array, metadata: Metadata | undefined): string => {
    const etag = `m${(++version).toString(16).padStart(12, "0")}`
    keys.set(key, undefined)
    objects.set(key, { bytes: bytes.slice(), etag, metadata: { ...metadata } })
    return etag
  }

  /** Up to `limit` keys with `prefix`, strictly after `after`. */
  const keysAfter = (after: string | undefined, prefix: string, limit: number): Array<string> => {
    const out: Array<string> = []
    const from = after === undefined || compareKeys(after, prefix) < 0 ? prefix : after
    for (const key of keys.keys(from)) {
      if (after !== undefined && key === after) continue
      if (!key.startsWith(prefix)) break // past the keys with the prefix
      out.push(key)
      if (out.length >= limit) break
    }
    return out
  }

  const missing = (operation: "get" | "head", key: string) => ObjectStoreError.make(operation, key, "NotFound")

  return {
    get: (key, options) =>
      Effect.suspend(() => {
        const entry = objects.get(key)
        if (entry === undefined) return Effect.fail(missing("get", key))
        return Effect.succeed({
          key,
          etag: entry.etag,
          size: entry.bytes.length,
          metadata: { ...entry.metadata },
          bytes: sliceRange(entry.bytes, options).slice()
        })
      }),
    head: (key) =>
      Effect.suspend(() => {
        const entry = objects.get(key)
        if (entry === undefined) return Effect.fail(missing("head", key))
        return Effect.succeed({ key, etag: entry.etag, size: entry.bytes.length, metadata: { ...entry.metadata } })
      }),
    put: (key, bytes, condition, metadata) =>
      Effect.suspend(() => {
        const current = objects.get(key)
        const failed = condition?.ifNoneMatch === "*"
          ? current !== undefined
          : condition?.ifMatch !== undefined && current?.etag !== condition.ifMatch
        if (failed) return Effect.fail(ObjectStoreError.make("put", key, "PreconditionFailed"))
        return Effect.succeed(write(key, bytes, metadata))
      }),
    delete: (key) =>
      Effect.sync(() => {
        if (objects.delete(key)) keys.delete(key)
      }),
    list: (prefix, options) =>
      listPaged<ListEntry>(
        keysAfter,
        (key) => {
          const entry = objects.get(key)
          return entry && { key, size: entry.bytes.length, etag: entry.etag }
        },
        prefix,
        options?.startAfter
      )
  }
})
