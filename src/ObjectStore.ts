/**
 * The only module that touches storage: a small object store interface (get, head, conditional
 * put, delete, ordered list) with backends for memory, a local directory and S3.
 *
 * **Details**
 *
 * Every layer validates input before any I/O (`InvalidKey`, `InvalidMetadata`, `InvalidRange`)
 * and retries transient failures (`Conflict`, `Throttled`, `Unavailable`) with bounded
 * exponential backoff and jitter driven by Effect's `Clock`, so `TestClock` controls it. Every
 * put carries a unique write token in its metadata; a retried conditional put whose first
 * attempt was applied (its response lost) is reported as success, while a foreign object at the
 * key is `PreconditionFailed`.
 *
 * Every backend layer counts its requests and bytes by kind in Effect's `Metric` registry
 * (`bucketq_store_requests_total{kind}`, `bucketq_store_bytes_total{kind,direction}`), each
 * attempt that reaches the backend, so that requests (and dollars, at a provider's list prices)
 * per job can be read off them.
 *
 * The directory backend's layers also provide `LocalLog`, the append-only log beside its objects
 * where the KV writes its WAL; it is a service of its own, not part of the store's interface, so
 * wrappers of the store never carry it.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Option, Result, type Stream } from "effect"
import { checkOneEffect } from "./internal/effectCopy.ts"
import { checked } from "./internal/options.ts"
import * as FileSystemStore from "./ObjectStore/FileSystem.ts"
import { storeContext } from "./ObjectStore/context.ts"
import { LocalLog, type Service as LocalLogService } from "./ObjectStore/LocalLog.ts"
import type { InvalidOption } from "./InvalidOption.ts"
import * as MemoryStore from "./ObjectStore/Memory.ts"
import { metered } from "./ObjectStore/Metered.ts"
import * as StoreOptions from "./ObjectStore/options.ts"
import * as Retry from "./ObjectStore/Retry.ts"
import * as S3Store from "./ObjectStore/S3.ts"
import { parseStoreUrl } from "./ObjectStore/url.ts"
import { validated } from "./ObjectStore/Validated.ts"
import type {
  InvalidKey,
  InvalidMetadata,
  InvalidRange,
  InvalidStoreUrl,
  ObjectStoreError
} from "./ObjectStoreError.ts"

/**
 * User metadata of an object: lowercase names (`[a-z0-9][a-z0-9-]*`), printable ASCII values.
 *
 * @category models
 * @since 0.1.0
 */
export type Metadata = Readonly<Record<string, string>>

/**
 * The condition of a put: create only if absent (`{ ifNoneMatch: "*" }`), replace only the
 * object with this ETag (`{ ifMatch }`), or none (`{}`).
 *
 * @category models
 * @since 0.1.0
 */
export type PutCondition =
  | { readonly ifNoneMatch: "*"; readonly ifMatch?: undefined }
  | { readonly ifMatch: string; readonly ifNoneMatch?: undefined }
  | { readonly ifNoneMatch?: undefined; readonly ifMatch?: undefined }

/**
 * A byte range `[start, end)`; `end` defaults to the end of the object. A range past the end
 * is clamped (possibly to no bytes), as slicing does.
 *
 * @category models
 * @since 0.1.0
 */
export interface Range {
  readonly start: number
  readonly end?: number | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export interface GetOptions {
  readonly range?: Range | undefined
}

/**
 * @category models
 * @since 0.1.0
 */
export interface ListOptions {
  /** Only keys strictly after this one (in key order). */
  readonly startAfter?: string | undefined
}

/**
 * What `head` tells about an object. `etag` is unquoted; `size` is the whole object's size.
 *
 * @category models
 * @since 0.1.0
 */
export interface ObjectInfo {
  readonly key: string
  readonly etag: string
  readonly size: number
  readonly metadata: Metadata
}

/**
 * An object read by `get`: its info, and the bytes of the requested range (all of it without
 * a range).
 *
 * @category models
 * @since 0.1.0
 */
export interface StoredObject extends ObjectInfo {
  readonly bytes: Uint8Array
}

/**
 * One key of a listing.
 *
 * @category models
 * @since 0.1.0
 */
export interface ListEntry {
  readonly key: string
  readonly size: number
  readonly etag: string
}

/**
 * The operations of an object store. Keys are relative to the store's root (its directory,
 * or the S3 prefix).
 *
 * @category models
 * @since 0.1.0
 */
export interface Service {
  /** Reads an object, or the bytes of `range` of it. Missing: `NotFound`. */
  readonly get: (
    key: string,
    options?: GetOptions
  ) => Effect.Effect<StoredObject, ObjectStoreError | InvalidKey | InvalidRange>
  /** Reads an object's ETag, size and metadata. Missing: `NotFound`. */
  readonly head: (key: string) => Effect.Effect<ObjectInfo, ObjectStoreError | InvalidKey>
  /**
   * Writes an object, atomically: readers see the old object or the new one, never a part.
   * Succeeds with the new ETag once the object is durable. A failed condition is
   * `PreconditionFailed` and writes nothing. Once it succeeded, the store holds no reference to
   * `bytes` (the memory backend keeps a copy): the caller may write over them.
   */
  readonly put: (
    key: string,
    bytes: Uint8Array,
    condition?: PutCondition,
    metadata?: Metadata
  ) => Effect.Effect<string, ObjectStoreError | InvalidKey | InvalidMetadata>
  /** Deletes an object; a missing key is not an error. */
  readonly delete: (key: string) => Effect.Effect<void, ObjectStoreError | InvalidKey>
  /** The keys starting with `prefix`, in key order (UTF-8 byte order), paginated underneath. */
  readonly list: (
    prefix: string,
    options?: ListOptions
  ) => Stream.Stream<ListEntry, ObjectStoreError | InvalidKey>
}

/**
 * The append-only log a backend may offer beside its objects: the directory backend's layers
 * (`layerFileSystem`, and `layerUrl`/`layerConfig` for a `file:` URL) provide it with their
 * `ObjectStore`, and the KV finds it in context (`Effect.serviceOption`), so it never appears
 * in a requirement. The KV writes its WAL there, one append and `fdatasync` per group commit
 * instead of one object. A layer that replaces the store with one that behaves differently
 * (`FaultInjection.layer`) provides none: the KV over it writes WAL objects.
 *
 * @category services
 * @since 0.1.0
 */
export { LocalLog }

/**
 * The operations of a `LocalLog`: its epochs, a writer's appender, a takeover (fence and seal),
 * a read that writes nothing, and the deletion of a part.
 *
 * @category models
 * @since 0.1.0
 */
export type { LocalLogService }

/**
 * The object store service.
 *
 * @category services
 * @since 0.1.0
 */
export class ObjectStore extends Context.Service<ObjectStore, Service>()("bucketq/ObjectStore") {}

/**
 * Options of the retry policy every layer applies (see `layerRetry`); `false` turns it off.
 *
 * @category models
 * @since 0.1.0
 */
export type RetryOptions = Retry.RetryOptions

const finish = (retry: RetryOptions | false | undefined) => (store: Service): Service =>
  validated(retry === false ? store : Retry.retrying(store, retry ?? {}))

/**
 * A backend's store as its layer provides it: its requests and bytes counted (the store's
 * metrics, below the retry policy: every attempt), then `finish`.
 */
const backend = (retry: RetryOptions | false | undefined) => (store: Service): Effect.Effect<Service> =>
  Effect.map(metered(store), finish(retry))

/**
 * What every store layer checks when it is built, before any I/O: that it runs on bucketq's copy
 * of `effect` (see `internal/effectCopy`), then the option `check` finds broken.
 */
const checkOptions = (check: () => InvalidOption | undefined): Effect.Effect<void, InvalidOption> =>
  Effect.andThen(checkOneEffect, Effect.suspend(() => checked(check())))


/**
 * Wraps the store in context with the retry policy: bounded exponential backoff with jitter
 * (defaults: 6 attempts, 50 ms doubling up to 5 s), and write tokens that make a retried
 * conditional put whose response was lost a success. Every backend layer already includes
 * it unless built with `retry: false`; this layer is for putting it over another wrapper,
 * such as fault injection. Options that break their rules (`maxAttempts` a whole number from 1,
 * `base` and `max` finite, non-negative durations) fail the layer with `InvalidOption`.
 *
 * A `LocalLog` in context is provided again beside the wrapped store (the retry policy changes
 * no object), so `layerRetry()` over `layerFileSystem({ retry: false })` keeps the directory's
 * log, as the directory layer with its own retry policy does; over `FaultInjection.layer` there
 * is none.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerRetry = (options?: RetryOptions): Layer.Layer<ObjectStore, InvalidOption, ObjectStore> =>
  Layer.effectContext(
    Effect.andThen(
      checkOptions(() => StoreOptions.retryOptionsError("options", options)),
      Effect.zipWith(ObjectStore, Effect.serviceOption(LocalLog), (store, log) => storeContext(finish(options ?? {})(store), log))
    )
  )

/**
 * An in-memory store with exact conditional semantics and ETags. Each build is a new, empty
 * store. A bad `retry` option fails the layer with `InvalidOption`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemory = (options?: { readonly retry?: RetryOptions | false }): Layer.Layer<ObjectStore, InvalidOption> =>
  Layer.effect(
    ObjectStore,
    Effect.andThen(checkOptions(() => StoreOptions.memoryOptionsError(options)), Effect.flatMap(MemoryStore.make, backend(options?.retry)))
  )

/**
 * Options of the directory backend.
 *
 * @category models
 * @since 0.1.0
 */
export type FileSystemOptions = FileSystemStore.Options & { readonly retry?: RetryOptions | false }

/**
 * A store in a local directory (created if missing). Keys map to files; a put is durable
 * (fsync of the file and of its directory) before it succeeds; put-if-absent and `ifMatch` are
 * atomic against writers in this and other processes; a crash mid-put leaves the old object or
 * the new one. Bad options (an empty `directory`, a `logPartBytes` under 1 KiB, a bad `retry`)
 * fail the layer with `InvalidOption` before the directory is touched.
 *
 * The layer also provides the directory's `LocalLog`, where a KV over the store writes its WAL.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerFileSystem = (
  options: FileSystemOptions
): Layer.Layer<ObjectStore | LocalLog, ObjectStoreError | InvalidOption> =>
  Layer.effectContext(
    Effect.andThen(
      checkOptions(() => StoreOptions.fileSystemOptionsError(options)),
      Effect.suspend(() =>
        Effect.flatMap(FileSystemStore.make(options), ({ log, store }) =>
          Effect.map(backend(options.retry)(store), (finished) => Context.make(ObjectStore, finished).pipe(Context.add(LocalLog, log)))
        )
      )
    )
  )

/**
 * Options of the S3 backend.
 *
 * @category models
 * @since 0.1.0
 */
export type S3Options = S3Store.Options & { readonly retry?: RetryOptions | false }

/**
 * A store in an S3 bucket (or any S3-compatible server) under `prefix`, with
 * `@aws-sdk/client-s3`. The SDK's own retries are off; interruption aborts the request. Bad
 * options (a bucket name outside `[A-Za-z0-9._-]`, a prefix with empty, `.` or `..` segments,
 * an endpoint that is not an http(s) URL, a secret that is not `Redacted`, a request timeout
 * that is not a finite duration above zero…) fail the layer with `InvalidOption`, before any request.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerS3 = (options: S3Options): Layer.Layer<ObjectStore, InvalidOption> =>
  Layer.effect(
    ObjectStore,
    Effect.andThen(
      checkOptions(() => StoreOptions.s3OptionsError(options)),
      Effect.suspend(() => Effect.flatMap(S3Store.make(options), backend(options.retry)))
    )
  )

/**
 * `layerS3` with its options read from `Config` (secrets as `Config.Redacted`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layerS3Config = (config: Config.Wrap<S3Options>): Layer.Layer<ObjectStore, Config.ConfigError | InvalidOption> =>
  Layer.unwrap(Effect.map(Config.unwrap(config), layerS3))

/**
 * A store from a URL: `file:<directory>` (relative to the working directory unless absolute),
 * `memory:`, or `s3://<bucket>/<prefix>` with the other S3 options from `s3`.
 *
 * For a `file:` URL the layer provides the directory's `LocalLog` too, as `layerFileSystem`
 * does; its type names only the `ObjectStore` that every URL gives (a layer's output type is
 * what it provides at least), and the KV looks for the log without requiring it.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerUrl = (
  url: string,
  s3?: Omit<S3Options, "bucket" | "prefix">
): Layer.Layer<ObjectStore, InvalidStoreUrl | ObjectStoreError | InvalidOption> => {
  const location = parseStoreUrl(url)
  if (Result.isFailure(location)) return Layer.effect(ObjectStore, Effect.fail(location.failure))
  switch (location.success._tag) {
    case "Memory":
      return layerMemory()
    case "FileSystem":
      return layerFileSystem({ directory: location.success.directory })
    case "S3":
      return layerS3({ ...s3, bucket: location.success.bucket, prefix: location.success.prefix })
  }
}

/**
 * The store named by the environment (or any `ConfigProvider`):
 *
 * - `BUCKETQ_URL`: `file:./.bucketq` (the default), `memory:` or `s3://<bucket>/<prefix>`;
 * - for S3: `BUCKETQ_S3_ENDPOINT` (S3-compatible servers), `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
 *   `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (read as redacted; without them the SDK's
 *   default credential chain is used), `BUCKETQ_S3_FORCE_PATH_STYLE` (default: true when an
 *   endpoint is set), `BUCKETQ_S3_QUOTE_IF_MATCH` (default true).
 *
 * As with `layerUrl`, a `file:` URL also provides the directory's `LocalLog`.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig: Layer.Layer<ObjectStore, Config.ConfigError | InvalidStoreUrl | ObjectStoreError | InvalidOption> = Layer.unwrap(
  Effect.gen(function*() {
    const url = yield* Config.withDefault(Config.String("BUCKETQ_URL"), "file:./.bucketq")
    const endpoint = yield* Config.option(Config.String("BUCKETQ_S3_ENDPOINT"))
    const region = yield* Config.option(Config.String("AWS_REGION"))
    const accessKeyId = yield* Config.option(Config.String("AWS_ACCESS_KEY_ID"))
    const secretAccessKey = yield* Config.option(Config.Redacted("AWS_SECRET_ACCESS_KEY"))
    const sessionToken = yield* Config.option(Config.Redacted("AWS_SESSION_TOKEN"))
    const forcePathStyle = yield* Config.withDefault(Config.Boolean("BUCKETQ_S3_FORCE_PATH_STYLE"), Option.isSome(endpoint))
    const quoteIfMatch = yield* Config.withDefault(Config.Boolean("BUCKETQ_S3_QUOTE_IF_MATCH"), true)
    const credentials = Option.isSome(accessKeyId) && Option.isSome(secretAccessKey)
      ? {
        accessKeyId: accessKeyId.value,
        secretAccessKey: secretAccessKey.value,
        ...(Option.isSome(sessionToken) ? { sessionToken: sessionToken.value } : {})
      }
      : undefined
    return layerUrl(url, {
      endpoint: Option.getOrUndefined(endpoint),
      region: Option.getOrUndefined(region),
      credentials,
      forcePathStyle,
      quoteIfMatch
    })
  })
)
