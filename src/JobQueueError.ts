/**
 * Errors of the job queue.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A queue name is 1 to 255 bytes of UTF-8 without control characters.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidQueueName extends Schema.TaggedError<InvalidQueueName>()("InvalidQueueName", {
  queue: Schema.String,
  reason: Schema.String
}) {}

/**
 * An id override is 1 to 128 characters of `[A-Za-z0-9_-]`.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidJobId extends Schema.TaggedError<InvalidJobId>()("InvalidJobId", {
  id: Schema.String,
  reason: Schema.String
}) {}

/**
 * An id override names a job that still exists. Nothing was written.
 *
 * @category errors
 * @since 0.1.0
 */
export class DuplicateJobId extends Schema.TaggedError<DuplicateJobId>()("DuplicateJobId", {
  id: Schema.String
}) {}

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
}) {}

/**
 * The object holding an offloaded payload is gone (deleted from outside the queue).
 *
 * @category errors
 * @since 0.1.0
 */
export class PayloadMissing extends Schema.TaggedError<PayloadMissing>()("PayloadMissing", {
  id: Schema.String,
  key: Schema.String
}) {}

/**
 * The payload does not encode with the definition's schema. Nothing was written.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>()("InvalidPayload", {
  detail: Schema.String
}) {}

/**
 * The claim is no longer held: its lease expired and the job was requeued or claimed again, or it
 * was settled already. Nothing changed.
 *
 * @category errors
 * @since 0.1.0
 */
export class ClaimLost extends Schema.TaggedError<ClaimLost>()("ClaimLost", {
  id: Schema.String
}) {}

/**
 * The lease of a claim whose job was asked to cancel is not extended: the holder should stop.
 *
 * @category errors
 * @since 0.1.0
 */
export class CancelRequested extends Schema.TaggedError<CancelRequested>()("CancelRequested", {
  id: Schema.String
}) {}
