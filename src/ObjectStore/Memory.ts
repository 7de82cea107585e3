/**
 * The in-memory backend: a sorted key index over a map, exact conditional semantics, ETags from
 * a counter. Every operation is one synchronous step, so it is atomic.
 *
 * @internal
 */
import { Effect, Option, Stream } from "effect"
import type { ListEntry, Metadata, Service } from "../ObjectStore.ts"
import * as ObjectStoreError from "../ObjectStoreError.ts"
import { compareKeys, lowerBound, upperBound } from "../internal/keyOrder.ts"
import { sliceRange } from "./validate.ts"

interface Entry {
  readonly bytes: Uint8Array
  readonly etag: string
  readonly metadata: Metadata
}

/** Keys per page of a listing, as S3 answers. */
export const listPageSize = 1000

/**
 * Pages of `[key, value]` from a sorted key array: keys starting with `prefix`, after
 * `startAfter`. Each page searches again, so writes between pages are seen as S3 would.
 *
 * @internal
 */
export const listSorted = <A>(
  sortedKeys: () => ReadonlyArray<string>,
  entry: (key: string) => A | undefined,
  prefix: string,
  startAfter: string | undefined
): Stream.Stream<A> =>
  Stream.paginate(startAfter, (after) =>
    Effect.sync(() => {
      const keys = sortedKeys()
      let i = after === undefined || compareKeys(after, prefix) < 0 ? lowerBound(keys, prefix) : upperBound(keys, after)
      const page: Array<A> = []
      let last: string | undefined
      while (i < keys.length && page.length < listPageSize) {
        const key = keys[i++]!
        if (!key.startsWith(prefix)) break
        const value = entry(key)
        if (value !== undefined) page.push(value)
        last = key
      }
      const more = page.length === listPageSize && i < keys.length && keys[i]!.startsWith(prefix)
      return [page, more ? Option.some(last) : Option.none()] as const
    }))

/** @internal */
export const make: Effect.Effect<Service> = Effect.sync(() => {
  const objects = new Map<string, Entry>()
  const keys: Array<string> = []
  let version = 0

  const write = (key: string, bytes: Uint8Array, metadata: Metadata | undefined): string => {
    const etag = `m${(++version).toString(16).padStart(12, "0")}`
    if (!objects.has(key)) keys.splice(lowerBound(keys, key), 0, key)
    objects.set(key, { bytes: bytes.slice(), etag, metadata: { ...metadata } })
    return etag
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
        if (objects.delete(key)) keys.splice(lowerBound(keys, key), 1)
      }),
    list: (prefix, options) =>
      listSorted<ListEntry>(
        () => keys,
        (key) => {
          const entry = objects.get(key)
          return entry && { key, size: entry.bytes.length, etag: entry.etag }
        },
        prefix,
        options?.startAfter
      )
  }
})
