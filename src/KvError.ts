/**
 * Errors of the transactional KV engine.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A transaction read or wrote something that a transaction committed after it began also wrote
 * (snapshot isolation: write-write; serializable: also read-write and scanned ranges). Nothing of
 * it was committed. `Kv.transaction` re-runs the function up to `maxRetries` times before failing
 * with this.
 *
 * @category errors
 * @since 0.1.0
 */
export class TransactionConflict extends Schema.TaggedError<TransactionConflict>()("TransactionConflict", {
  attempts: Schema.Number
}) {
  override get message(): string {
    return `transaction conflicted ${this.attempts} time(s)`
  }
}

/**
 * Another writer opened the same store: this one lost its place and acknowledges nothing more.
 * Every commit pending when it was found out, and every later one, fails with this.
 *
 * @category errors
 * @since 0.1.0
 */
export class Fenced extends Schema.TaggedError<Fenced>()("Fenced", {
  epoch: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `writer of epoch ${this.epoch} was fenced: ${this.detail}`
  }
}

/**
 * The KV is closed (its layer's scope ended, or it stopped after a failure it cannot recover
 * from, given in `detail`).
 *
 * @category errors
 * @since 0.1.0
 */
export class Closed extends Schema.TaggedError<Closed>()("Closed", {
  detail: Schema.String
}) {
  override get message(): string {
    return `kv closed: ${this.detail}`
  }
}

/**
 * A stored object failed its checks (magic, format version, CRC32, structure). No value is read
 * from it.
 *
 * @category errors
 * @since 0.1.0
 */
export class Corrupt extends Schema.TaggedError<Corrupt>()("Corrupt", {
  key: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `corrupt object ${JSON.stringify(this.key)}: ${this.detail}`
  }
}

/**
 * A key, a value or a whole commit is over its limit (`limit` bytes): keys up to 4 KiB, values up
 * to 256 KiB, one commit up to 16 MiB by default (see `Kv.Options`). Nothing was written.
 *
 * @category errors
 * @since 0.1.0
 */
export class ValueTooLarge extends Schema.TaggedError<ValueTooLarge>()("ValueTooLarge", {
  what: Schema.Literals(["key", "value", "commit"]),
  size: Schema.Number,
  limit: Schema.Number
}) {
  override get message(): string {
    return `${this.what} of ${this.size} bytes is over the limit of ${this.limit} bytes`
  }
}

/**
 * A conditional write (`Kv.writeIf`) found a key present that had to be absent, or absent that had
 * to be present. Nothing was written.
 *
 * @category errors
 * @since 0.1.0
 */
export class WriteConditionFailed extends Schema.TaggedError<WriteConditionFailed>()("WriteConditionFailed", {
  /** The key, as latin1 (one char per byte). */
  key: Schema.String,
  expectedPresent: Schema.Boolean
}) {
  override get message(): string {
    return `write condition failed: key ${JSON.stringify(this.key.slice(0, 200))} was expected ${this.expectedPresent ? "present" : "absent"}`
  }
}
