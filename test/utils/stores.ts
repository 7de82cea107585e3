// The backends every store-level suite runs against, each test on a fresh, empty namespace.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer, Redacted } from "effect"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Kv from "../../src/Kv.ts"
import * as ObjectStore from "../../src/ObjectStore.ts"

export interface Backend {
  readonly name: string
  /** A layer with a new, empty store on every build. */
  readonly layer: (options?: { readonly retry?: ObjectStore.RetryOptions | false }) => Layer.Layer<ObjectStore.ObjectStore, unknown>
}

export const memory: Backend = {
  name: "memory",
  layer: (options) => ObjectStore.layerMemory(options)
}

/** A temp directory removed when the layer's scope closes. */
export const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(path.join(tmpdir(), "bucketq-test-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export const fileSystem: Backend = {
  name: "directory",
  layer: (options) =>
    Layer.unwrap(Effect.map(tempDirectory, (directory) => ObjectStore.layerFileSystem({ directory, ...options })))
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
  layer: (options) =>
    Layer.suspend(() => ObjectStore.layerS3({ ...s3Options(`test-${runId}/${++s3Namespace}`), ...options }))
}

/** A job queue (and its KV writer) over `store`, built in the current scope. */
export const queueOver = (store: ObjectStore.Service, options?: JobQueue.Options) =>
  Effect.map(
    Layer.build(JobQueue.layer(options).pipe(Layer.provide(Kv.layer()), Layer.provide(Layer.succeed(ObjectStore.ObjectStore, store)))),
    (context) => Context.get(context, JobQueue.JobQueue)
  )
