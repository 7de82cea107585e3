/**
 * Conversions between the queue core's arguments (`src/queue/core.ts`) and their wire forms
 * (`protocol.ts`), one pair per shape, used by the client to send and by the server to receive:
 * enqueue options (the priority as its number, a delay in milliseconds, `runAt` in epoch ms, `kv`
 * as entries), settlement effects, and held jobs (their payload, or why it could not be read).
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import * as Job from "../Job.ts"
import type { EnqueueOptions, PayloadStoreError } from "../JobQueue.ts"
import type * as Core from "../queue/core.ts"
import type * as Effects from "../queue/effects.ts"
import type * as Protocol from "./protocol.ts"

type WireOptions = typeof Protocol.EnqueueOptions.Type
type WireEffects = typeof Protocol.Effects.Type
type WireHeld = typeof Protocol.HeldJob.Type

/** Enqueue options (checked) as they cross. */
export const toWireOptions = (options: EnqueueOptions | undefined): WireOptions => {
  if (options === undefined) return {}
  const { delay, kv, priority, runAt, ...rest } = options
  return {
    ...definedOnly(rest),
    ...(priority === undefined ? {} : { priority: Job.priorityValue(priority) }),
    ...(delay === undefined ? {} : { delayMillis: Duration.toMillis(Duration.fromInputUnsafe(delay)) }),
    ...(runAt === undefined ? {} : { runAt: typeof runAt === "number" ? runAt : runAt.getTime() }),
    ...(kv === undefined ? {} : { kv: Object.entries(kv).map(([key, value]) => ({ key, value })) })
  }
}

/** Enqueue options as a server receives them (to be checked as a local caller's are). */
export const fromWireOptions = (options: WireOptions): EnqueueOptions => {
  const { delayMillis, kv, ...rest } = options
  return {
    ...rest,
    ...(delayMillis === undefined ? {} : { delay: delayMillis }),
    ...(kv === undefined ? {} : { kv: Object.fromEntries(kv.map(({ key, value }) => [key, value])) })
  }
}

/** Encoded effects as they cross. */
export const toWireEffects = (effects: Effects.Encoded): WireEffects => ({
  enqueue: effects.enqueue.map(([settings, payload, options]) => ({ settings, payload, options: toWireOptions(options) })),
  kv: effects.writes.put.map(([key, value]) => ({ key, value })),
  kvDelete: [...effects.writes.delete]
})

/** A held job as it crosses: its payload read back (or why it could not be). */
export const toWireHeld = (held: Core.HeldJob): Effect.Effect<WireHeld> =>
  Effect.map(
    Effect.result(held.payload),
    (payload): WireHeld => ({
      record: held.record,
      token: held.token,
      payload: payload._tag === "Success"
        ? { _tag: "Read", bytes: payload.success }
        : { _tag: "Unreadable", error: payload.failure }
    })
  )

/**
 * A held job as a client receives it. A remote claim's cancel request is seen at its next lease
 * renewal (`extendLease` fails with `CancelRequested`), not at once.
 */
export const fromWireHeld = (held: WireHeld): Core.HeldJob => ({
  record: held.record,
  token: held.token,
  cancelled: Effect.never,
  payload: held.payload._tag === "Read"
    ? Effect.succeed(held.payload.bytes)
    : Effect.fail(held.payload.error as PayloadStoreError)
})

/** The fields of an object that are set (the wire has no `undefined`). */
export const definedOnly = <A extends object>(options: A | undefined): { [K in keyof A]-?: Exclude<A[K], undefined> } =>
  Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined)) as never
