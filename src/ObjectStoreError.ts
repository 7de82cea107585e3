/**
 * Errors of the object store layer.
 *
 * Every failure of a storage operation is one `ObjectStoreError` whose `reason` says what
 * happened; bad input is refused before any I/O with `InvalidKey` or `InvalidMetadata`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The condition of a conditional put did not hold: the key exists (`ifNoneMatch: "*"`), or it
 * is missing or has another ETag (`ifMatch`). Nothing was written. Never retried.
 *
 * @category errors
 * @since 0.1.0
 */
export class PreconditionFailed extends Schema.TaggedError<PreconditionFailed>()("PreconditionFailed", {}) {
  override get message(): string {
    return "the condition of the put did not hold (the key exists, or has another ETag)"
  }
}

/**
 * The key does not exist (`get`, `head`).
 *
 * @category errors
 * @since 0.1.0
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {}) {
  override get message(): string {
    return "the key does not exist"
  }
}

/**
 * A concurrent conditional write on the same key was in progress (S3's 409
 * `ConditionalRequestConflict`). Retried; the outcome is then decided by the write token.
 *
 * @category errors
 * @since 0.1.0
 */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {}) {
  override get message(): string {
    return "a concurrent conditional write of the key was in progress"
  }
}

/**
 * The store asked us to slow down (HTTP 429/503 `SlowDown`). Retried with backoff.
 *
 * @category errors
 * @since 0.1.0
 */
export class Throttled extends Schema.TaggedError<Throttled>()("Throttled", {}) {
  override get message(): string {
    return "the store asked to slow down"
  }
}

/**
 * The store could not be reached or answered with a server error, or the request timed out.
 * The operation may or may not have been applied. Retried with backoff.
 *
 * @category errors
 * @since 0.1.0
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {}) {
  override get message(): string {
    return "the store could not be reached, failed, or timed out"
  }
}

/**
 * A stored object is not in the format this backend wrote. Never retried.
 *
 * @category errors
 * @since 0.1.0
 */
export class Corrupt extends Schema.TaggedError<Corrupt>()("Corrupt", {}) {
  override get message(): string {
    return "the stored object is not in the format this backend writes"
  }
}

/**
 * Anything else (access denied, a missing bucket, an unexpected answer). Never retried.
 *
 * @category errors
 * @since 0.1.0
 */
export class Unknown extends Schema.TaggedError<Unknown>()("Unknown", {}) {
  override get message(): string {
    return "the store failed in an unexpected way"
  }
}

/**
 * The causes an `ObjectStoreError` can have.
 *
 * @category errors
 * @since 0.1.0
 */
export const Reason = Schema.Union([PreconditionFailed, NotFound, Conflict, Throttled, Unavailable, Corrupt, Unknown])

/**
 * @category errors
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * The store operations, as named in errors and counters.
 *
 * @category models
 * @since 0.1.0
 */
export const Operation = Schema.Literals(["get", "head", "put", "delete", "list"])

/**
 * @category models
 * @since 0.1.0
 */
export type Operation = typeof Operation.Type

/**
 * A failed storage operation.
 *
 * **Details**
 *
 * `reason` is a tagged union (`PreconditionFailed | NotFound | Conflict | Throttled |
 * Unavailable | Corrupt | Unknown`), so `Effect.catchReason("ObjectStoreError", "NotFound", …)`
 * handles one cause. `key` is the key relative to the store's root (the list prefix for `list`).
 * `detail` is a human-readable description from the backend; `cause` keeps the original error.
 *
 * @category errors
 * @since 0.1.0
 */
export class ObjectStoreError extends Schema.TaggedError<ObjectStoreError>()("ObjectStoreError", {
  operation: Operation,
  key: Schema.String,
  reason: Reason,
  detail: Schema.optionalKey(Schema.String),
  cause: Schema.optionalKey(Schema.Defect())
}) {
  override get message(): string {
    const detail = this.detail === undefined ? "" : `; ${this.detail}`
    return `${this.operation} of ${JSON.stringify(this.key)} failed with ${this.reason._tag} (${this.reason.message})${detail}`
  }
}

/**
 * Builds an `ObjectStoreError` from a reason tag.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (
  operation: Operation,
  key: string,
  reason: Reason["_tag"],
  options?: { readonly detail?: string | undefined; readonly cause?: unknown }
): ObjectStoreError =>
  new ObjectStoreError({
    operation,
    key,
    reason: makeReason(reason),
    ...(options?.detail === undefined ? {} : { detail: options.detail }),
    ...(options?.cause === undefined ? {} : { cause: options.cause })
  })

const makeReason = (tag: Reason["_tag"]): Reason => {
  switch (tag) {
    case "PreconditionFailed":
      return new PreconditionFailed()
    case "NotFound":
      return new NotFound()
    case "Conflict":
      return new Conflict()
    case "Throttled":
      return new Throttled()
    case "Unavailable":
      return new Unavailable()
    case "Corrupt":
      return new Corrupt()
    case "Unknown":
      return new Unknown()
  }
}

/**
 * Whether a failed operation may succeed when tried again. `Conflict`, `Throttled` and
 * `Unavailable` are; the others are final.
 *
 * @category predicates
 * @since 0.1.0
 */
export const isRetryable = (error: ObjectStoreError): boolean => {
  const tag = error.reason._tag
  return tag === "Conflict" || tag === "Throttled" || tag === "Unavailable"
}

/**
 * Whether `error` is an `ObjectStoreError` whose put found its condition false: the key existed
 * (`ifNoneMatch: "*"`), or its etag was another (`ifMatch`).
 *
 * @category predicates
 * @since 0.2.0
 */
export const isPreconditionFailed = (error: unknown): boolean =>
  error instanceof ObjectStoreError && error.reason._tag === "PreconditionFailed"

/**
 * A key was refused before any I/O.
 *
 * **Details**
 *
 * Keys are non-empty, at most 1024 UTF-8 bytes, contain no control characters (U+0000 to U+001F,
 * U+007F), and are made of `/`-separated segments none of which is empty, `.` or `..`. The
 * directory backend also refuses a segment longer than 254 bytes (a file name limit).
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidKey extends Schema.TaggedError<InvalidKey>()("InvalidKey", {
  key: Schema.String,
  reason: Schema.Literals(["Empty", "TooLong", "ControlCharacter", "InvalidSegment", "SegmentTooLong"])
}) {
  override get message(): string {
    return `invalid object key ${JSON.stringify(this.key.slice(0, 200))}: ${this.reason}`
  }
}

/**
 * User metadata was refused before any I/O.
 *
 * **Details**
 *
 * Names match `[a-z0-9][a-z0-9-]*` (at most 128 characters) and do not start with `bucketq-`
 * (reserved); values are printable ASCII; names and values together take at most 2 KiB (the
 * limit S3 sets on user metadata).
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidMetadata extends Schema.TaggedError<InvalidMetadata>()("InvalidMetadata", {
  name: Schema.String,
  reason: Schema.Literals(["InvalidName", "Reserved", "InvalidValue", "TooLarge"])
}) {
  override get message(): string {
    return `invalid object metadata ${JSON.stringify(this.name)}: ${this.reason}`
  }
}

/**
 * A range read asked for a negative start or an end before its start.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidRange extends Schema.TaggedError<InvalidRange>()("InvalidRange", {
  key: Schema.String,
  start: Schema.Number,
  end: Schema.optionalKey(Schema.Number)
}) {
  override get message(): string {
    return `invalid range [${this.start}, ${this.end ?? "end"}) for ${JSON.stringify(this.key)}`
  }
}

/**
 * Any error an object store call can fail with.
 *
 * @category errors
 * @since 0.1.0
 */
export type StoreError = ObjectStoreError | InvalidKey | InvalidMetadata | InvalidRange

/**
 * A store URL that names no backend: bucketq understands `file:<directory>`, `memory:` and
 * `s3://<bucket>/<prefix>`.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidStoreUrl extends Schema.TaggedError<InvalidStoreUrl>()("InvalidStoreUrl", {
  url: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid store URL ${JSON.stringify(this.url)}: ${this.detail}`
  }
}
