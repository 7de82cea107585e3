/**
 * The S3 backend, on `@aws-sdk/client-s3` with the SDK's retries off (the store's retry policy
 * retries instead, on Effect's `Clock`). Every request is interruptible: interruption aborts it.
 *
 * @internal
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig
} from "@aws-sdk/client-s3"
import { Duration, Effect, Option, Redacted, type Scope, Stream } from "effect"
import type { ListEntry, Service, StoredObject } from "../ObjectStore.ts"
import * as ObjectStoreError from "../ObjectStoreError.ts"
import { InvalidKey } from "../ObjectStoreError.ts"
import { maxKeyBytes } from "./validate.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly bucket: string
  /** Root of this store inside the bucket; a `/` is added when missing. Default: the bucket root. */
  readonly prefix?: string | undefined
  /** For S3-compatible servers (R2, MinIO, Ceph): their URL. */
  readonly endpoint?: string | undefined
  /** Default `us-east-1`. */
  readonly region?: string | undefined
  /** Without them the SDK's default chain is used (`AWS_ACCESS_KEY_ID`, profiles, roles). */
  readonly credentials?: {
    readonly accessKeyId: string
    readonly secretAccessKey: Redacted.Redacted<string>
    readonly sessionToken?: Redacted.Redacted<string> | undefined
  } | undefined
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need. */
  readonly forcePathStyle?: boolean | undefined
  /**
   * Send `If-Match` as a quoted entity tag, as RFC 9110 and AWS expect (default `true`). Ceph's
   * RADOS Gateway 16 compares the header byte-wise with the unquoted ETag and needs `false`.
   */
  readonly quoteIfMatch?: boolean | undefined
  /** A request that takes longer fails `Unavailable` and is aborted (default 30 seconds). */
  readonly requestTimeout?: Duration.Input | undefined
}

interface SdkError {
  readonly name?: string
  readonly code?: string
  readonly $metadata?: { readonly httpStatusCode?: number }
}

const unquote = (etag: string | undefined): string => (etag ?? "").replace(/^W\//, "").replace(/^"(.*)"$/, "$1")

/** Maps an SDK failure to a store error by HTTP status and error name. */
/** @internal */
export const storeError = (operation: ObjectStoreError.Operation, key: string, cause: unknown) => {
  const error = (typeof cause === "object" && cause !== null ? cause : {}) as SdkError
  const status = error.$metadata?.httpStatusCode
  const name = error.name ?? ""
  const reason: ObjectStoreError.Reason["_tag"] = status === 412 || name === "PreconditionFailed"
    ? "PreconditionFailed"
    : name === "NoSuchBucket"
    ? "Unknown"
    : status === 404 || name === "NoSuchKey" || name === "NotFound"
    ? "NotFound"
    : status === 409 || name === "ConditionalRequestConflict"
    ? "Conflict"
    : status === 429 || status === 503 || name === "SlowDown" || name === "Throttling" || name === "ThrottlingException"
    ? "Throttled"
    : status !== undefined && status >= 500
    ? "Unavailable"
    : status === undefined
    ? "Unavailable" // no HTTP answer: connection refused or reset, DNS, socket timeout
    : "Unknown"
  const detail = [status, name, cause instanceof Error ? cause.message : undefined].filter(Boolean).join(" ")
  return ObjectStoreError.make(operation, key, reason, { detail, cause })
}

/** @internal */
export const make = (options: Options): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const bucket = options.bucket
    const root = options.prefix === undefined || options.prefix === "" || options.prefix.endsWith("/")
      ? options.prefix ?? ""
      : `${options.prefix}/`
    const quoteIfMatch = options.quoteIfMatch ?? true
    const timeout = Duration.fromInputUnsafe(options.requestTimeout ?? "30 seconds")
    const credentials = options.credentials
    const config: S3ClientConfig = {
      region: options.region ?? "us-east-1",
      maxAttempts: 1,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.forcePathStyle === undefined ? {} : { forcePathStyle: options.forcePathStyle }),
      ...(credentials === undefined ? {} : {
        credentials: {
          accessKeyId: credentials.accessKeyId,
          secretAccessKey: Redacted.value(credentials.secretAccessKey),
          ...(credentials.sessionToken === undefined ? {} : { sessionToken: Redacted.value(credentials.sessionToken) })
        }
      })
    }
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new S3Client(config)),
      (c) => Effect.sync(() => c.destroy())
    )

    /** Sends one request; interruption and the timeout abort it. */
    const send = <A>(
      operation: ObjectStoreError.Operation,
      key: string,
      request: (signal: AbortSignal) => Promise<A>
    ): Effect.Effect<A, ObjectStoreError.ObjectStoreError> =>
      Effect.tryPromise({ try: (signal) => request(signal), catch: (cause) => storeError(operation, key, cause) }).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.fail(ObjectStoreError.make(operation, key, "Unavailable", { detail: `no answer within ${Duration.format(timeout)}` }))
        })
      )

    // S3 limits the whole key, root prefix included, to 1,024 bytes.
    const rootBytes = Buffer.byteLength(root)
    const checked = <A, E>(key: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | InvalidKey> =>
      rootBytes + Buffer.byteLength(key) > maxKeyBytes ? Effect.fail(new InvalidKey({ key, reason: "TooLong" })) : effect

    const head: Service["head"] = (key) =>
      Effect.map(
        send("head", key, (abortSignal) => client.send(new HeadObjectCommand({ Bucket: bucket, Key: root + key }), { abortSignal })),
        (out) => ({ key, etag: unquote(out.ETag), size: out.ContentLength ?? 0, metadata: out.Metadata ?? {} })
      )

    /** Total size from `Content-Range: bytes 0-9/100`. */
    const totalSize = (contentRange: string | undefined, fallback: number) => {
      const total = contentRange === undefined ? NaN : Number(contentRange.split("/")[1])
      return Number.isFinite(total) ? total : fallback
    }

    const get: Service["get"] = (key, getOptions) => {
      const range = getOptions?.range
      // Ranges S3 cannot express (empty) or refuses (416: past the end, or any range of an empty
      // object) are answered from HEAD with no bytes.
      const emptyRange = Effect.map(head(key), (info): StoredObject => ({ ...info, bytes: new Uint8Array(0) }))
      if (range !== undefined && range.end !== undefined && range.end <= range.start) return emptyRange
      const Range = range === undefined ? undefined : `bytes=${range.start}-${range.end === undefined ? "" : range.end - 1}`
      return send("get", key, async (abortSignal) => {
        const out = await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: root + key, ...(Range === undefined ? {} : { Range }) }),
          { abortSignal }
        )
        const bytes = out.Body === undefined ? new Uint8Array(0) : await out.Body.transformToByteArray()
        return {
          key,
          etag: unquote(out.ETag),
          size: totalSize(out.ContentRange, bytes.length),
          metadata: out.Metadata ?? {},
          bytes
        } satisfies StoredObject
      }).pipe(
        Effect.catchIf(
          (error) => range !== undefined && (error.cause as SdkError | undefined)?.$metadata?.httpStatusCode === 416,
          () => emptyRange
        )
      )
    }

    const put: Service["put"] = (key, bytes, condition, metadata) => {
      const conditional = condition?.ifNoneMatch === "*"
        ? { IfNoneMatch: "*" }
        : condition?.ifMatch !== undefined
        ? { IfMatch: quoteIfMatch ? `"${condition.ifMatch}"` : condition.ifMatch }
        : {}
      return send("put", key, (abortSignal) =>
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: root + key,
            Body: bytes,
            ContentLength: bytes.length,
            Metadata: { ...metadata },
            ...conditional
          }),
          { abortSignal }
        )).pipe(
          Effect.map((out) => unquote(out.ETag)),
          // AWS answers If-Match on a missing key with 404; it is a failed precondition.
          Effect.catchIf(
            (error) => condition?.ifMatch !== undefined && error.reason._tag === "NotFound",
            () => Effect.fail(ObjectStoreError.make("put", key, "PreconditionFailed"))
          )
        )
    }

    const remove: Service["delete"] = (key) =>
      Effect.asVoid(
        send("delete", key, (abortSignal) =>
          client.send(new DeleteObjectCommand({ Bucket: bucket, Key: root + key }), { abortSignal }))
      )

    const list: Service["list"] = (prefix, listOptions) => {
      const startAfter = listOptions?.startAfter
      type Page = { readonly token?: string | undefined }
      return Stream.paginate<Page, ListEntry, ObjectStoreError.ObjectStoreError>({}, (page) =>
        send("list", prefix, (abortSignal) =>
          client.send(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: root + prefix,
              ...(page.token === undefined
                ? startAfter === undefined ? {} : { StartAfter: root + startAfter }
                : { ContinuationToken: page.token })
            }),
            { abortSignal }
          )).pipe(Effect.map((out) => {
            const entries = (out.Contents ?? []).map((o): ListEntry => ({
              key: (o.Key ?? "").slice(root.length),
              size: o.Size ?? 0,
              etag: unquote(o.ETag)
            }))
            const next = out.IsTruncated && out.NextContinuationToken ? Option.some({ token: out.NextContinuationToken }) : Option.none()
            return [entries, next] as const
          })))
    }

    return {
      get: (key, getOptions) => checked(key, get(key, getOptions)),
      head: (key) => checked(key, head(key)),
      put: (key, bytes, condition, metadata) => checked(key, put(key, bytes, condition, metadata)),
      delete: (key) => checked(key, remove(key)),
      list
    } satisfies Service
  })
