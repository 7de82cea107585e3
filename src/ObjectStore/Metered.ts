/**
 * The store's metrics, counted by every backend layer just above the backend, below the retry
 * policy, so that each attempt that reaches the backend is counted, as a provider bills it:
 *
 * - `bucketq_store_requests_total{kind}`: `get`, `head`, `put`, `delete`, and `list`, one request
 *   per page of `listPageSize` keys, as S3 pages a listing (a listing of no key is one request);
 * - `bucketq_store_bytes_total{kind,direction}`: the bytes of objects read (`get`, `read`) and
 *   written (`put`, `written`).
 *
 * A request (and the bytes it sends) is counted when it starts, whatever its outcome. The metrics are those of the registry
 * of the context the layer was built in. With S3's list prices, requests per job read as dollars
 * per job. The backend's local log (the directory's WAL) is not an object request and is not counted.
 *
 * @internal
 */
import { Effect, Metric, Stream } from "effect"
import type { Service } from "../ObjectStore.ts"
import type { Operation } from "../ObjectStoreError.ts"
import { listPageSize } from "./Memory.ts"

const requests = (kind: Operation) =>
  Metric.counter("bucketq_store_requests_total", {
    description: "Requests sent to the object store, by kind (a list request per page of 1000 keys)",
    incremental: true,
    attributes: { kind }
  })

const bytesTotal = (kind: Operation, direction: "read" | "written") =>
  Metric.counter("bucketq_store_bytes_total", {
    description: "Bytes of objects read from and written to the object store",
    incremental: true,
    attributes: { kind, direction }
  })

// One series per label set, built once: counting costs a registry lookup, no allocation.
const counted = {
  get: requests("get"),
  head: requests("head"),
  put: requests("put"),
  delete: requests("delete"),
  list: requests("list"),
  read: bytesTotal("get", "read"),
  written: bytesTotal("put", "written")
} as const

/** `store` with its requests and bytes counted in the registry of the context this runs in. */
export const metered = (store: Service): Effect.Effect<Service> =>
  Effect.map(Effect.context<never>(), (context): Service => {
    const count = (metric: Metric.Counter<number>, n: number) => metric.updateUnsafe(n, context)
    return {
      get: (key, options) =>
        Effect.suspend(() => {
          count(counted.get, 1)
          return Effect.map(store.get(key, options), (object) => {
            count(counted.read, object.bytes.length)
            return object
          })
        }),
      head: (key) =>
        Effect.suspend(() => {
          count(counted.head, 1)
          return store.head(key)
        }),
      put: (key, bytes, condition, metadata) =>
        Effect.suspend(() => {
          count(counted.put, 1)
          count(counted.written, bytes.length)
          return store.put(key, bytes, condition, metadata)
        }),
      delete: (key) =>
        Effect.suspend(() => {
          count(counted.delete, 1)
          return store.delete(key)
        }),
      list: (prefix, options) =>
        Stream.suspend(() => {
          // the first page is asked for at once; each further one once its first key is reached
          count(counted.list, 1)
          let seen = 0
          return Stream.map(store.list(prefix, options), (entry) => {
            if (seen > 0 && seen % listPageSize === 0) count(counted.list, 1)
            seen++
            return entry
          })
        })
    }
  })
