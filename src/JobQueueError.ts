/**
 * Errors of the job queue. Each has a `message` built from its fields, so `String(error)` and
 * `Cause.pretty` say what went wrong, not only which error it was.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * An option of a queue operation broke its rule (the same class as the KV's and the store's).
 *
 * @category errors
 * @since 0.1.0
 */
export { InvalidOption } from "./InvalidOption.ts"

/**
 * A queue name was refused, by `Job.define` (which throws it) or by an operation given a name or
 * a hand-built definition (which fails with it). Nothing was written.
 *
 * **Details**
 *
 * A queue name is 1 to 128 characters of `[A-Za-z0-9._:-]` and `/`; `/` separates segments,
 * none of which is empty, `.` or `..` (names nest, `mail/eu`, and never climb, `../etc`).
 * `queue` is the name given (rendered as text when it was not a string), `reason` the rule.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidQueueName extends Schema.TaggedError<InvalidQueueName>()("InvalidQueueName", {
  queue: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid queue name ${JSON.stringify(this.queue.slice(0, 200))}: ${this.reason}`
  }
}

/**
 * An id override is 1 to 128 characters of `[A-Za-z0-9_-]`.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidJobId extends Schema.TaggedError<InvalidJobId>()("InvalidJobId", {
  id: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid job id ${JSON.stringify(this.id.slice(0, 200))}: ${this.reason}`
  }
}

/**
 * An id override names a job that still exists. Nothing was written.
 *
 * @category errors
 * @since 0.1.0
 */
export class DuplicateJobId extends Schema.TaggedError<DuplicateJobId>()("DuplicateJobId", {
  id: Schema.String
}) {
  override get message(): string {
    return `a job with id ${JSON.stringify(this.id)} exists already`
  }
}

/**
 * The encoded payload is over the largest the queue takes (`maxPayloadBytes`, default 64 MiB;
 * payloads over 256 KiB are stored as objects of their own). Nothing was written.
 *
 * @category errors
 * @since 0.1.0
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  size: Schema.Number,
  limit: Schema.Number
}) {
  override get message(): string {
    return `encoded payload of ${this.size} bytes is over the limit of ${this.limit} bytes`
  }
}

/**
 * The object holding an offloaded payload is gone (deleted from outside the queue).
 *
 * @category errors
 * @since 0.1.0
 */
export class PayloadMissing extends Schema.TaggedError<PayloadMissing>()("PayloadMissing", {
  id: Schema.String,
  key: Schema.String
}) {
  override get message(): string {
    return `payload object ${JSON.stringify(this.key)} of job ${this.id} is missing`
  }
}

/**
 * The payload does not encode with the definition's schema. Nothing was written.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>()("InvalidPayload", {
  detail: Schema.String
}) {
  override get message(): string {
    return `payload does not encode with the definition's schema: ${this.detail}`
  }
}

/**
 * The claim is no longer held: its lease expired and the job was requeued or claimed again, or it
 * was settled already. Nothing changed.
 *
 * @category errors
 * @since 0.1.0
 */
export class ClaimLost extends Schema.TaggedError<ClaimLost>()("ClaimLost", {
  id: Schema.String
}) {
  override get message(): string {
    return `the claim of job ${this.id} is no longer held (its lease expired, or it was settled)`
  }
}

/**
 * The lease of a claim whose job was asked to cancel is not extended: the holder should stop.
 *
 * @category errors
 * @since 0.1.0
 */
export class CancelRequested extends Schema.TaggedError<CancelRequested>()("CancelRequested", {
  id: Schema.String
}) {
  override get message(): string {
    return `job ${this.id} was asked to cancel: its lease is not extended`
  }
}

/**
 * No job has this id (it never existed, or it was removed: acknowledged without `keepDone`,
 * cancelled, swept by its retention). Nothing changed.
 *
 * @category errors
 * @since 0.2.0
 */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `no job ${this.id}`
  }
}

/**
 * The job is not in the state the operation needs (`expected`), for example `requeueDead` of a job
 * that is pending. Nothing changed.
 *
 * @category errors
 * @since 0.2.0
 */
export class InvalidState extends Schema.TaggedError<InvalidState>()("InvalidState", {
  id: Schema.String,
  state: Schema.String,
  expected: Schema.String
}) {
  override get message(): string {
    return `job ${this.id} is ${this.state}, not ${this.expected}`
  }
}

/**
 * The writer process of the queue (see `QueueServer`) could not be reached by a `QueueClient`:
 * the connection was refused or dropped and did not come back within the client's bounded retry,
 * or it dropped during an operation that is not safe to repeat, or during a stream (`reason`
 * `"Dropped"`: a change the operation asked for may or may not have been applied). `url` is the server's address, `attempts` how many
 * times the operation was tried, `detail` the transport's last error.
 *
 * @category errors
 * @since 0.3.0
 */
export class WriterUnavailable extends Schema.TaggedError<WriterUnavailable>()("WriterUnavailable", {
  url: Schema.String,
  reason: Schema.Literals(["Unreachable", "Dropped"]),
  attempts: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    const why = this.reason === "Dropped"
      ? "the connection dropped during the operation (a change it asked for may or may not have been applied)"
      : `not reachable after ${this.attempts} attempt${this.attempts === 1 ? "" : "s"}`
    return `the queue's writer at ${this.url} is unavailable: ${why} (${this.detail})`
  }
}

/**
 * A request without the server's token (missing, or another one). Refused before it reached the
 * queue: nothing changed. The token is never part of it.
 *
 * @category errors
 * @since 0.3.0
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.Literals(["MissingToken", "WrongToken"])
}) {
  override get message(): string {
    return this.reason === "MissingToken"
      ? "the request carries no token: refused by the queue's server"
      : "the request's token is not the server's: refused by the queue's server"
  }
}

