/**
 * The wire protocol between a `QueueClient` and the `QueueServer` of the queue's writer: one
 * `RpcGroup` of the `JobQueue` operations that take no job definition, their payloads, results
 * and errors as schemas, and the `Authorized` middleware every request goes through.
 *
 * **Details**
 *
 * Records cross as stored (`schema/JobRecord.ts`: payloads and results encoded, bytes); errors
 * are the queue's own tagged errors, so a remote caller catches the same tags as a local one.
 * Argument shapes here are loose where the queue checks them (a state is any string, a limit
 * any number): the queue's checks answer, with its `InvalidOption`, exactly as locally. The
 * operations that carry a `Job.Definition` (enqueue, claim, settlements, schedule) cross as the
 * queue's core takes them (`src/queue/core.ts`): the definition's settings and encoded payloads,
 * results and follow-ups; the client keeps the Schemas, migrations and backoff.
 *
 * @internal
 */
import { type Config, Effect, Redacted, Schema } from "effect"
import { Rpc, RpcGroup, RpcMiddleware } from "effect/rpc"
import { Attempt, JobRecord } from "../../schema/JobRecord.ts"
import { MissedPolicy } from "../../schema/Schedule.ts"
import { InvalidOption } from "../InvalidOption.ts"
import {
  CancelRequested,
  ClaimLost,
  DuplicateJobId,
  InvalidJobId,
  InvalidPayload,
  InvalidQueueName,
  InvalidState,
  JobNotFound,
  PayloadMissing,
  PayloadTooLarge,
  Unauthorized,
  WriterUnavailable
} from "../JobQueueError.ts"
import { Closed, Corrupt, Fenced, TransactionConflict, ValueTooLarge } from "../KvError.ts"
import { ObjectStoreError } from "../ObjectStoreError.ts"
import { JobSettings } from "../queue/wire.ts"

// ---- errors ------------------------------------------------------------------------------------

// `WriterUnavailable` and `Unauthorized` are in the queue's own error types (a client's queue
// fails with them); the writer's queue never does, but its handlers are typed so. A read of the
// store's runs can fail (`Corrupt`, `ObjectStoreError`): reads and writes alike may.
const ReadError = [Fenced, Closed, Corrupt, ObjectStoreError, WriterUnavailable, Unauthorized] as const
const QueueError = [Fenced, Closed, TransactionConflict, ValueTooLarge, Corrupt, ObjectStoreError, WriterUnavailable, Unauthorized] as const

// ---- models ------------------------------------------------------------------------------------

/** A job of a listing by queue name: the record as stored, and why its payload could not be read. */
export const ListedRecord = Schema.Struct({ ...JobRecord.fields, payloadError: Schema.optional(Schema.String) })

const QueueStatsFields = {
  queue: Schema.String,
  pending: Schema.Number,
  scheduled: Schema.Number,
  claimed: Schema.Number,
  done: Schema.Number,
  dead: Schema.Number
}

/** `JobQueue.QueueStats`. */
export const QueueStats = Schema.Struct(QueueStatsFields)

/** `JobQueue.QueueInfo`. */
export const QueueInfo = Schema.Struct({ ...QueueStatsFields, paused: Schema.Boolean })

/** `JobQueue.CompletionOutcome`. */
export const CompletionOutcome = Schema.Union([
  Schema.TaggedStruct("Completed", { job: Schema.Option(JobRecord) }),
  Schema.TaggedStruct("TimedOut", {}),
  Schema.TaggedStruct("NotFound", {})
])

/** `JobQueue.ScheduleInfo`. */
export const ScheduleInfo = Schema.Struct({
  key: Schema.String,
  queue: Schema.String,
  cron: Schema.String,
  timezone: Schema.String,
  missed: MissedPolicy,
  maxCatchUp: Schema.Number,
  nextSlot: Schema.Option(Schema.Number),
  lastSlot: Schema.Option(Schema.Number)
})

const base = { id: Schema.String, queue: Schema.String, at: Schema.Number }

/** `JobQueue.JobEvent`. */
export const JobEvent = Schema.Union([
  Schema.TaggedStruct("Enqueued", base),
  Schema.TaggedStruct("Claimed", { ...base, attempt: Schema.Number }),
  Schema.TaggedStruct("Completed", base),
  Schema.TaggedStruct("Retried", { ...base, error: Schema.String, runAt: Schema.Option(Schema.Number) }),
  Schema.TaggedStruct("DeadLettered", { ...base, reason: Schema.String }),
  Schema.TaggedStruct("Cancelled", base)
])

/** `JobQueue.KvEntry`. */
export const KvEntry = Schema.Struct({ key: Schema.String, value: Schema.Uint8Array })

// ---- the core's models (operations that carry a definition: see `src/queue/core.ts`) ------------

/**
 * `JobQueue.EnqueueOptions` on the wire: the priority as its number, a delay in milliseconds
 * (applied with the writer's clock), `runAt` in epoch milliseconds, `kv` as entries.
 */
export const EnqueueOptions = Schema.Struct({
  priority: Schema.optionalKey(Schema.Number),
  delayMillis: Schema.optionalKey(Schema.Number),
  runAt: Schema.optionalKey(Schema.Number),
  dedupKey: Schema.optionalKey(Schema.String),
  maxAttempts: Schema.optionalKey(Schema.Number),
  headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  id: Schema.optionalKey(Schema.String),
  kv: Schema.optionalKey(Schema.Array(KvEntry))
})

/** Settlement effects on the wire: follow-ups with their definitions' settings, payloads encoded. */
export const Effects = Schema.Struct({
  enqueue: Schema.Array(Schema.Struct({ settings: JobSettings, payload: Schema.Uint8Array, options: EnqueueOptions })),
  kv: Schema.Array(KvEntry),
  kvDelete: Schema.Array(Schema.String)
})

/** A claim on the wire: its job's id and its lease's token (the writer knows the rest). */
export const ClaimRef = Schema.Struct({ id: Schema.String, token: Schema.String })

/** A held job on the wire: the record as stored, the lease's token, the encoded payload or why it could not be read. */
export const HeldJob = Schema.Struct({
  record: JobRecord,
  token: Schema.String,
  payload: Schema.Union([
    Schema.TaggedStruct("Read", { bytes: Schema.Uint8Array }),
    Schema.TaggedStruct("Unreadable", { error: Schema.Union([PayloadMissing, Corrupt, ObjectStoreError]) })
  ])
})

/** `JobQueue.ScheduleOptions` but the payload (sent encoded), the priority as its number. */
export const ScheduleOptions = Schema.Struct({
  key: Schema.String,
  cron: Schema.String,
  timezone: Schema.optionalKey(Schema.String),
  missed: Schema.optionalKey(MissedPolicy),
  maxCatchUp: Schema.optionalKey(Schema.Number),
  priority: Schema.optionalKey(Schema.Number),
  maxAttempts: Schema.optionalKey(Schema.Number),
  headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
})

/**
 * Several operations of one kind in one request: the definitions' settings once each, and the
 * items, each naming its settings by index. The writer runs the items at once (they share its
 * group commit) and answers one `Outcome` per item, in order. Batching is what makes a remote
 * queue fast: a request costs the writer far more (framing, decoding, a fiber, the token check)
 * than the operation it carries.
 */
const Batch = <I extends Schema.Top>(item: I) => Schema.Struct({ settings: Schema.Array(JobSettings), items: Schema.Array(item) })

/** The outcome of one item of a `Batch`: its value, or its error. */
export const Outcome = <A extends Schema.Top, E extends Schema.Top>(value: A, error: E) =>
  Schema.Union([Schema.TaggedStruct("Ok", { value }), Schema.TaggedStruct("Failed", { error })])

/** An enqueue of a batch: its definition's settings (an index into the batch's), payload encoded, options. */
export const EnqueueItem = Schema.Struct({ settings: Schema.Number, payload: Schema.Uint8Array, options: EnqueueOptions })

/** An ack of a batch: the claim, its definition's settings (an index), the result encoded, the effects. */
export const AckItem = Schema.Struct({
  claim: ClaimRef,
  settings: Schema.Number,
  result: Schema.optionalKey(Schema.Uint8Array),
  effects: Schema.optionalKey(Effects)
})

/** Enqueues in one request (see `Batch`). */
export const EnqueueBatch = Batch(EnqueueItem)

/** Acks in one request (see `Batch`). */
export const AckBatch = Batch(AckItem)

const SettleErrors = [
  ClaimLost,
  InvalidOption,
  InvalidQueueName,
  InvalidJobId,
  InvalidPayload,
  PayloadTooLarge,
  DuplicateJobId,
  ...QueueError
] as const

// ---- middleware --------------------------------------------------------------------------------

/**
 * Checks the token of every request before its handler runs (see `QueueServer`); a request
 * without the right one fails with `Unauthorized`.
 *
 * @category middleware
 * @since 0.3.0
 */
export class Authorized extends RpcMiddleware.Service<Authorized>()("bucketq/remote/Authorized", {
  error: Unauthorized
}) {}

/**
 * The shared token of a server or a client, read from its `Config` when it is one: a non-empty
 * string, else `InvalidOption` (its value is never shown).
 */
export const resolveToken = (
  token: Redacted.Redacted<string> | Config.Config<Redacted.Redacted<string>>
): Effect.Effect<Redacted.Redacted<string>, InvalidOption | Config.ConfigError> =>
  Effect.flatMap(Redacted.isRedacted(token) ? Effect.succeed(token) : token, (resolved) => {
    const value: unknown = Redacted.value(resolved)
    return typeof value === "string" && value.length > 0
      ? Effect.succeed(resolved)
      : Effect.fail(new InvalidOption({ option: "token", value: "<not shown>", reason: "must be a non-empty string" }))
  })

/**
 * The largest message either end takes (a frame of the binary serialization): room for the
 * largest payload the queue takes by default (64 MiB, `JobQueue.Options.maxPayloadBytes`) and the
 * rest of its request, under the WebSocket server's own limit (100 MiB). The serialization's
 * default (16 MiB) would refuse a payload above it.
 */
export const maxMessageBytes = 96 * 1024 * 1024

/**
 * The payload bytes a claim's answer carries at most: one job always (its payload may be the
 * largest there is), more only while their payloads stay within this; the writer gives the others
 * back (released: pending again, the attempt not counted) for the next claim.
 */
export const maxClaimPayloadBytes = 64 * 1024 * 1024

/** The header the token travels in, `Bearer <token>` (in the WebSocket handshake). */
export const tokenHeader = "authorization"

// ---- operations --------------------------------------------------------------------------------

const Id = { id: Schema.String }
const Queue = { queue: Schema.String }

/** The operations of `JobQueue.Service` that take no definition. */
export class QueueRpcs extends RpcGroup.make(
  Rpc.make("Get", {
    payload: Id,
    success: Schema.Option(JobRecord),
    error: Schema.Union([PayloadMissing, ...ReadError])
  }),
  Rpc.make("History", {
    payload: Id,
    success: Schema.Array(Attempt),
    error: Schema.Union([JobNotFound, InvalidOption, ...ReadError])
  }),
  Rpc.make("Stats", { payload: Queue, success: QueueStats, error: Schema.Union([InvalidQueueName, ...ReadError]) }),
  Rpc.make("Queues", { success: Schema.Array(QueueInfo), error: Schema.Union([...ReadError]) }),
  Rpc.make("List", {
    payload: {
      queue: Schema.String,
      state: Schema.String,
      cursor: Schema.optionalKey(Schema.String),
      limit: Schema.optionalKey(Schema.Number)
    },
    success: Schema.Struct({ jobs: Schema.Array(ListedRecord), cursor: Schema.Option(Schema.String) }),
    error: Schema.Union([InvalidQueueName, InvalidOption, ...ReadError])
  }),
  Rpc.make("DeadJobs", {
    payload: { queue: Schema.String, after: Schema.optionalKey(Schema.String), limit: Schema.optionalKey(Schema.Number) },
    success: Schema.Array(ListedRecord),
    error: Schema.Union([InvalidQueueName, InvalidOption, ...ReadError])
  }),
  Rpc.make("RequeueDead", {
    payload: Id,
    error: Schema.Union([InvalidJobId, JobNotFound, InvalidState, ...QueueError])
  }),
  Rpc.make("RequeueAllDead", {
    payload: Queue,
    success: Schema.Number,
    error: Schema.Union([InvalidQueueName, InvalidOption, ...QueueError])
  }),
  Rpc.make("PurgeDead", { payload: Queue, success: Schema.Number, error: Schema.Union([InvalidQueueName, ...QueueError]) }),
  Rpc.make("Wake", {
    payload: Id,
    success: Schema.Literals(["Woken", "NotScheduled", "NotFound"]),
    error: Schema.Union([InvalidJobId, ...QueueError])
  }),
  Rpc.make("Pause", { payload: Queue, error: Schema.Union([InvalidQueueName, ...QueueError]) }),
  Rpc.make("Resume", { payload: Queue, error: Schema.Union([InvalidQueueName, ...QueueError]) }),
  Rpc.make("Cancel", {
    payload: Id,
    success: Schema.Literals(["Removed", "Requested", "NotFound"]),
    error: Schema.Union([...QueueError])
  }),
  Rpc.make("AwaitCompletion", {
    // milliseconds; none (or Infinity): no timeout. The client converts and checks the duration.
    payload: { id: Schema.String, timeoutMillis: Schema.optionalKey(Schema.Number) },
    success: CompletionOutcome,
    error: Schema.Union([InvalidOption, ...ReadError])
  }),
  Rpc.make("KvGet", {
    payload: { key: Schema.String },
    success: Schema.Option(Schema.Uint8Array),
    error: Schema.Union([InvalidOption, ...ReadError])
  }),
  Rpc.make("KvPut", {
    payload: { key: Schema.String, value: Schema.Uint8Array },
    error: Schema.Union([InvalidOption, ...QueueError])
  }),
  Rpc.make("KvDelete", { payload: { key: Schema.String }, error: Schema.Union([InvalidOption, ...QueueError]) }),
  Rpc.make("KvCompareAndSet", {
    // a missing `expected` is "absent", a missing `next` "delete"
    payload: { key: Schema.String, expected: Schema.optionalKey(Schema.Uint8Array), next: Schema.optionalKey(Schema.Uint8Array) },
    success: Schema.Boolean,
    error: Schema.Union([InvalidOption, ...QueueError])
  }),
  Rpc.make("KvScan", {
    payload: { prefix: Schema.String, after: Schema.optionalKey(Schema.String), limit: Schema.optionalKey(Schema.Number) },
    success: Schema.Array(KvEntry),
    error: Schema.Union([InvalidOption, ...ReadError])
  }),
  Rpc.make("Schedules", { success: Schema.Array(ScheduleInfo), error: Schema.Union([...ReadError]) }),
  Rpc.make("Unschedule", {
    payload: { key: Schema.String },
    success: Schema.Literals(["Removed", "NotFound"]),
    error: Schema.Union([InvalidOption, ...QueueError])
  }),
  Rpc.make("Events", { success: JobEvent, error: Schema.Union([WriterUnavailable, Unauthorized]), stream: true }),
  // the core (see `src/queue/core.ts`): a definition's settings, encoded payloads and results
  // enqueues and acks cross in batches (see `Batch`): what one client sends in the same moment
  Rpc.make("Enqueue", {
    payload: EnqueueBatch,
    success: Schema.Array(Outcome(
      Schema.Struct({ id: Schema.String, created: Schema.Boolean }),
      Schema.Union([InvalidOption, InvalidQueueName, InvalidJobId, InvalidPayload, DuplicateJobId, PayloadTooLarge, ...QueueError])
    ))
  }),
  Rpc.make("EnqueueBatch", {
    payload: { settings: JobSettings, payloads: Schema.Array(Schema.Uint8Array) },
    success: Schema.Array(Schema.String),
    error: Schema.Union([InvalidOption, InvalidQueueName, PayloadTooLarge, ...QueueError])
  }),
  Rpc.make("Claim", {
    // `waitMillis` absent: wait until a job arrives
    payload: { queue: Schema.String, max: Schema.Number, leaseMillis: Schema.Number, waitMillis: Schema.optionalKey(Schema.Number) },
    success: Schema.Array(HeldJob),
    error: Schema.Union([InvalidOption, InvalidQueueName, ...QueueError])
  }),
  Rpc.make("Ack", {
    payload: AckBatch,
    success: Schema.Array(Outcome(Schema.Void, Schema.Union([...SettleErrors])))
  }),
  Rpc.make("Nack", {
    payload: { claim: ClaimRef, error: Schema.String, delayMillis: Schema.Number, effects: Schema.optionalKey(Effects) },
    success: Schema.Literals(["Retried", "DeadLettered"]),
    error: Schema.Union([...SettleErrors])
  }),
  Rpc.make("DeadLetter", {
    payload: { claim: ClaimRef, reason: Schema.String, effects: Schema.optionalKey(Effects) },
    error: Schema.Union([...SettleErrors])
  }),
  Rpc.make("Release", { payload: { claim: ClaimRef }, error: Schema.Union([ClaimLost, ...QueueError]) }),
  Rpc.make("Discard", { payload: { claim: ClaimRef }, error: Schema.Union([ClaimLost, ...QueueError]) }),
  Rpc.make("ExtendLease", {
    payload: { claim: ClaimRef, millis: Schema.Number },
    error: Schema.Union([ClaimLost, CancelRequested, InvalidOption, ...ReadError])
  }),
  Rpc.make("Schedule", {
    payload: {
      settings: JobSettings,
      payload: Schema.Uint8Array,
      options: ScheduleOptions
    },
    success: ScheduleInfo,
    error: Schema.Union([InvalidOption, InvalidQueueName, PayloadTooLarge, ...QueueError])
  })
).middleware(Authorized) {}
