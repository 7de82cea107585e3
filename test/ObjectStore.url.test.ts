// Store URLs and the environment-driven layer.
import { existsSync } from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Result } from "effect"
import { StoreLive } from "../layers/StoreLive.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { parseStoreUrl } from "../src/ObjectStore/url.ts"
import { tempDirectory } from "./utils/stores.ts"

const withEnv = (env: Record<string, string>) => Layer.provide(StoreLive, ConfigProvider.layer(ConfigProvider.fromUnknown(env)))

const roundTrip = Effect.gen(function*() {
  const store = yield* ObjectStore.ObjectStore
  yield* store.put("url/k", new TextEncoder().encode("v"), { ifNoneMatch: "*" })
  return new TextDecoder().decode((yield* store.get("url/k")).bytes)
})

describe("store URLs", () => {
  it("parses file:, memory: and s3:// and refuses the rest", () => {
    const ok = (url: string) => Result.getOrThrow(parseStoreUrl(url))
    assert.deepStrictEqual(ok("file:./.bucketq"), { _tag: "FileSystem", directory: "./.bucketq" })
    assert.deepStrictEqual(ok("file:///var/lib/q"), { _tag: "FileSystem", directory: "/var/lib/q" })
    assert.deepStrictEqual(ok("memory:"), { _tag: "Memory" })
    assert.deepStrictEqual(ok("s3://my-bucket/queues/emails"), { _tag: "S3", bucket: "my-bucket", prefix: "queues/emails" })
    assert.deepStrictEqual(ok("s3://my-bucket"), { _tag: "S3", bucket: "my-bucket", prefix: "" })
    for (const bad of ["", "file:", "redis://x", "s3://", "s3://UPPER/x", "./dir"]) {
      const result = parseStoreUrl(bad)
      assert.isTrue(Result.isFailure(result), bad)
      if (Result.isFailure(result)) assert.strictEqual(result.failure._tag, "InvalidStoreUrl")
    }
  })

  it.live("BUCKETQ_URL=memory: is an in-memory store", () =>
    Effect.map(Effect.provide(roundTrip, withEnv({ BUCKETQ_URL: "memory:" })), (v) => assert.strictEqual(v, "v")))

  it.live("BUCKETQ_URL=file:<dir> stores files in that directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDirectory
      assert.strictEqual(yield* Effect.provide(roundTrip, withEnv({ BUCKETQ_URL: `file:${dir}` })), "v")
      assert.isTrue(existsSync(path.join(dir, "url%", "k")))
    }))

  it.live("BUCKETQ_URL=s3://bucket/prefix uses BUCKETQ_S3_ENDPOINT and the AWS_* variables", () =>
    Effect.gen(function*() {
      const env = process.env
      const layer = withEnv({
        BUCKETQ_URL: `s3://${env.S3_BUCKET}/url-test-${process.pid}`,
        BUCKETQ_S3_ENDPOINT: env.S3_ENDPOINT!,
        BUCKETQ_S3_QUOTE_IF_MATCH: env.S3_QUOTE_IF_MATCH ?? "true",
        AWS_REGION: env.AWS_REGION ?? "us-east-1",
        AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID!,
        AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY!
      })
      assert.strictEqual(yield* Effect.provide(roundTrip, layer), "v")
    }))

  it.live("an invalid BUCKETQ_URL fails the layer with InvalidStoreUrl", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.provide(roundTrip, withEnv({ BUCKETQ_URL: "redis://localhost" })))
      assert.strictEqual(error._tag, "InvalidStoreUrl")
    }))
})
