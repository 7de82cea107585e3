// The backends every store-level suite runs against, each test on a fresh, empty namespace, and
// how the helpers that open a KV or a queue over a store take it: with the directory backend's
// local log beside it (a store value alone would leave the log behind, and the directory suites
// would silently stop testing it).
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer, Redacted } from "effect"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import * as ObjectStore from "../../src/ObjectStore.ts"

export interface Backend {
  readonly name: string
  /** Whether its layer provides a `LocalLog` beside the store (the directory backend's does). */
  readonly localLog: boolean
  /**
   * A layer with a new, empty store on every build (the directory backend's also provides its
   * `LocalLog`: build it and pass the context on, see `StoreContext`).
   */
  readonly layer: (options?: { readonly retry?: ObjectStore.RetryOptions | false }) => Layer.Layer<ObjectStore.ObjectStore, unknown>
}

/**
 * A store as its layer provides it: the `ObjectStore`, and for the directory backend the
 * `LocalLog` beside it (the type names only the store, which is always there).
 */
export type StoreContext = Context.Context<ObjectStore.ObjectStore>

/**
 * What the helpers that open a KV or a queue take: a store's context, or a bare store value for
 * a store that has no local log (memory, S3, a fault-injected store).
 */
export type AnyStore = StoreContext | ObjectStore.Service

/** The directory stores the backends here built: passed bare, they would lose their local log. */
const directoryStores = new WeakSet<ObjectStore.Service>()

/**
 * The context to provide for `store`. A directory store built here passed bare is a defect: the
 * KV over it would run without the log, so the directory suites would not test the log.
 */
export const contextOf = (store: AnyStore): StoreContext => {
  if (Context.isContext(store)) return store as StoreContext
  if (directoryStores.has(store)) {
    throw new Error("a directory store passed as a bare value loses its local log: pass its context (the built layer's)")
  }
  return Context.make(ObjectStore.ObjectStore, store)
}

/** The store value of `store`, for its own operations. */
export const serviceOf = (store: AnyStore): ObjectStore.Service =>
  Context.isContext(store) ? Context.get(store as StoreContext, ObjectStore.ObjectStore) : store

/** A layer providing `store` (with its local log, if it has one). */
export const layerOf = (store: AnyStore): Layer.Layer<ObjectStore.ObjectStore> => Layer.succeedContext(contextOf(store))

/** `layer`'s store registered as a directory store (see `contextOf`). */
const registered = <E, R>(layer: Layer.Layer<ObjectStore.ObjectStore, E, R>) =>
  Layer.tap(layer, (context) => Effect.sync(() => void directoryStores.add(Context.get(context, ObjectStore.ObjectStore))))

/**
 * The directory store over `directory` (a process of its own: its own descriptors and caches),
 * built in the current scope: its context, with its `LocalLog`.
 */
export const directoryStore = (directory: string, options?: Omit<ObjectStore.FileSystemOptions, "directory">) =>
  Layer.build(registered(ObjectStore.layerFileSystem({ ...options, directory })))

export const memory: Backend = {
  name: "memory",
  localLog: false,
  layer: (options) => ObjectStore.layerMemory(options)
}

/** A temp directory removed when the layer's scope closes. */
export const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(path.join(tmpdir(), "bucketq-test-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export const fileSystem: Backend = {
  name: "directory",
  localLog: true,
  layer: (options) =>
    Layer.unwrap(Effect.map(tempDirectory, (directory) => registered(ObjectStore.layerFileSystem({ directory, ...options }))))
}

let s3Namespace = 0
const runId = `${process.pid}-${Math.floor(performance.timeOrigin)}`

/** Options for the S3 server of this run (started by the global setup, or given in the environment). */
export const s3Options = (prefix: string): ObjectStore.S3Options => {
  const env = process.env
  if (!env.S3_ENDPOINT || !env.S3_BUCKET) throw new Error("S3_ENDPOINT and S3_BUCKET are not set: the global setup did not run")
  return {
    bucket: env.S3_BUCKET,
    prefix,
    endpoint: env.S3_ENDPOINT,
    region: env.AWS_REGION ?? "us-east-1",
    forcePathStyle: true,
    quoteIfMatch: env.S3_QUOTE_IF_MATCH !== "false",
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: Redacted.make(env.AWS_SECRET_ACCESS_KEY) } }
      : {})
  }
}

export const s3: Backend = {
  name: "s3",
  localLog: false,
  layer: (options) =>
    Layer.suspend(() => ObjectStore.layerS3({ ...s3Options(`test-${runId}/${++s3Namespace}`), ...options }))
}

/** A job queue (and its KV writer) over `store`, built in the current scope. */
export const queueOver = (store: AnyStore, options?: JobQueue.Options) =>
  Effect.map(
    Layer.build(JobQueue.layer(options).pipe(Layer.provide(Kv.layer()), Layer.provide(layerOf(store)))),
    (context) => Context.get(context, JobQueue.JobQueue)
  )
