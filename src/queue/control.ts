/**
 * Control of queues and jobs: `pause` and `resume` of a queue, `wake` of a scheduled job, and
 * `queues()`, every queue with its counters.
 *
 * **Pause.** A paused queue's flag is a key of its own in the KV (durable, so it survives a
 * reopen); the flags are loaded at open and kept in memory, updated by `pause` and `resume` in this
 * process (the only writer), so that a claim asks a set, not the store. A paused queue's claims
 * return nothing (one with `wait` waits, and `resume` wakes it); enqueues still succeed.
 *
 * **Wake** moves a scheduled job (delayed, or waiting out its backoff) to pending now, in one
 * durable transaction with its counters, then wakes the claims waiting on its queue.
 *
 * @internal
 */
import { Effect } from "effect"
import type { JobRecord } from "../../schema/JobRecord.ts"
import { checked } from "../internal/options.ts"
import type { QueueInfo, Service } from "../JobQueue.ts"
import { afterPrefix, Changes } from "../kv/engine.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import type { Bookkeeping } from "./leases.ts"
import * as QueueOptions from "./options.ts"
import { counterOf, locate, move, retries, stage, without } from "./records.ts"

/** The value of a pause flag (its presence is what counts). */
const flag = "\x01"

type Counts = { -readonly [K in keyof QueueInfo]: QueueInfo[K] }

/** The pause flags loaded, and `pause`, `resume`, `wake`, `queues` and `isPaused` of the queue of `ctx`. */
export const make = (ctx: QueueContext, book: Bookkeeping) =>
  Effect.gen(function*() {
    const { kv, live } = ctx
    const { announce } = book

    const paused = new Set<string>()
    for (const [key] of yield* kv.scan(Keys.pausedPrefix, afterPrefix(Keys.pausedPrefix))) {
      const queue = Keys.parsePaused(key)
      if (queue !== undefined) paused.add(queue)
    }

    /** Whether claims of `queue` are paused (the claim's hot path: a set lookup, none when nothing is paused). */
    const isPaused = (queue: string): boolean => paused.size > 0 && paused.has(queue)

    const pause: Service["pause"] = (queue) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.queueNameError(queue))
        const changes = new Changes()
        changes.put(Keys.paused(queue), flag)
        yield* kv.write(changes)
        paused.add(queue)
      })

    const resume: Service["resume"] = (queue) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.queueNameError(queue))
        const changes = new Changes()
        changes.delete(Keys.paused(queue))
        yield* kv.write(changes)
        paused.delete(queue)
        announce(queue)
      })

    const wake: Service["wake"] = (id) =>
      Effect.gen(function*() {
        yield* checked(QueueOptions.idArgumentError(id))
        yield* live
        const { value: woken } = yield* kv.transaction((tx) =>
          Effect.map(locate(tx, id), (found) => {
            if (found === undefined) return undefined
            const [key, record] = found
            if (record.status !== "Scheduled") return "NotScheduled" as const
            const pending: JobRecord = { ...without(record, "runAt"), status: "Pending" }
            tx.delete(key)
            stage(tx, pending)
            move(tx, record.queue, "Scheduled", "Pending")
            return pending
          }), retries)
        if (woken === undefined) return "NotFound" as const
        if (woken === "NotScheduled") return woken
        announce(woken.queue)
        return "Woken" as const
      })

    const queues: Service["queues"] = () =>
      Effect.gen(function*() {
        yield* live
        const byQueue = new Map<string, Counts>()
        const countsOf = (queue: string) => {
          let counts = byQueue.get(queue)
          if (counts === undefined) {
            counts = { queue, pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0, paused: paused.has(queue) }
            byQueue.set(queue, counts)
          }
          return counts
        }
        for (const [key, value] of yield* kv.scan(Keys.statsPrefix, afterPrefix(Keys.statsPrefix))) {
          const stat = Keys.parseStat(key)
          if (stat === undefined) continue
          const counts = countsOf(stat.queue)
          const n = counterOf(value)
          switch (stat.status) {
            case "Pending":
              counts.pending = n
              break
            case "Scheduled":
              counts.scheduled = n
              break
            case "Claimed":
              counts.claimed = n
              break
            case "Done":
              counts.done = n
              break
            case "Dead":
              counts.dead = n
          }
        }
        for (const queue of paused) countsOf(queue)
        return [...byQueue.values()].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0))
      })

    return { isPaused, pause, resume, wake, queues }
  })
