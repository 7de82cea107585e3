/**
 * Settlement effects, the core's part: follow-up enqueues and user KV writes committed in the same
 * transaction as an ack, a dead-lettering or a nack that dead-letters. Checked and encoded by the
 * codec (`codec.ts`), they are made ready (large payloads offloaded) before the settlement's commit, so that effects that
 * do not check fail the settlement with nothing written and the claim left as it was; a
 * settlement that does not commit (`ClaimLost`, a conflict) applies none of them, and the
 * payload objects written for them are deleted (see `payloads.committing`).
 *
 * @internal
 */
import { Effect } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import type { EnqueueOptions, EnqueueResult } from "../JobQueue.ts"
import type { Tx } from "../kv/engine.ts"
import type { PrepareError } from "./enqueue.ts"
import type * as Events from "./events.ts"
import type { Bookkeeping } from "./leases.ts"
import type { Payloads } from "./payloads.ts"
import { noWrites, stageWrites, type UserWrites } from "./userKv.ts"
import type { JobSettings } from "./wire.ts"

/** Effects checked and ready to stage. */
export interface Prepared {
  /** Follow-up jobs, and whether each one's id is the caller's (checked for a duplicate). */
  readonly jobs: ReadonlyArray<{ readonly record: JobRecord; readonly checkId: boolean }>
  readonly writes: UserWrites
}

/** No effects. */
export const none: Prepared = { jobs: [], writes: noWrites }

/**
 * Effects as they reach the writer: each follow-up with its definition's settings, its payload
 * encoded (checked, as its options), and the user KV writes checked. What a settlement of a
 * definition in another process sends.
 */
export interface Encoded {
  readonly enqueue: ReadonlyArray<readonly [settings: JobSettings, payload: Uint8Array, options: EnqueueOptions | undefined]>
  readonly writes: UserWrites
}

/** What the settlements need of enqueue: a follow-up's record made ready, and staging it. */
export interface Enqueuing {
  readonly ready: (settings: JobSettings, payload: Uint8Array, options: EnqueueOptions | undefined) => Effect.Effect<JobRecord, PrepareError>
  readonly stageNew: (tx: Tx, record: JobRecord, checkId: boolean) => Effect.Effect<EnqueueResult, any>
}

/** The effects of the settlements of one queue. */
export type Effects = ReturnType<typeof make>

/** Settlement effects over the queue's enqueue steps, payloads and bookkeeping. */
export const make = (enqueuing: Enqueuing, payloads: Payloads, book: Bookkeeping, events: Events.EventHub) => {
  /**
   * Makes encoded effects ready to stage: each follow-up's record built and its payload offloaded
   * when large. On a failure, the payload objects already written for the others are deleted.
   */
  const ready = (encoded: Encoded | undefined): Effect.Effect<Prepared, PrepareError> =>
    Effect.suspend((): Effect.Effect<Prepared, PrepareError> => {
      if (encoded === undefined) return Effect.succeed(none)
      const jobs: Array<{ record: JobRecord; checkId: boolean }> = []
      return Effect.forEach(encoded.enqueue, ([settings, payload, options]) =>
        Effect.map(enqueuing.ready(settings, payload, options), (record) => {
          jobs.push({ record, checkId: options?.id !== undefined })
        }), { discard: true }).pipe(
          Effect.onError(() => payloads.dropPayloads(jobs.map((job) => job.record))),
          Effect.as({ jobs, writes: encoded.writes })
        )
    })

  /** Stages prepared effects in the settlement's transaction; the enqueue results, in order. */
  const stage = (tx: Tx, prepared: Prepared) =>
    Effect.suspend(() => {
      stageWrites(tx, prepared.writes)
      return Effect.forEach(prepared.jobs, ({ checkId, record }) => enqueuing.stageNew(tx, record, checkId))
    })

  /**
   * Once the settlement is durable: the payload objects of follow-ups a dedup hit answered are
   * deleted, and the claims waiting on the queues of the new pending jobs are woken.
   */
  const settled = (prepared: Prepared, results: ReadonlyArray<EnqueueResult>) =>
    Effect.suspend(() => {
      const unused: Array<JobRecord> = []
      prepared.jobs.forEach(({ record }, i) => {
        if (results[i]?.created === false) return unused.push(record)
        if (record.status === "Pending") book.announce(record.queue)
        events.enqueued(record)
      })
      return payloads.dropPayloads(unused)
    })

  /** The records whose payload objects a failed settlement leaves behind. */
  const records = (prepared: Prepared): ReadonlyArray<JobRecord> => prepared.jobs.map((job) => job.record)

  return { ready, stage, settled, records }
}
