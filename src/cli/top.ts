/**
 * `bucketq top`: a live view of the store's queues, refreshed every second. Each refresh takes a
 * `Snapshot` (the queues' counters, the oldest pending job of each, recent failures) and `render`
 * draws it against the previous one, whose difference gives the rates; `render` is pure, so its
 * output is tested exactly, and the loop only reads, draws and waits (`Schedule`, `Clock`).
 *
 * **Bounded reads.** The oldest pending job is looked for among the first 100 a queue would hand
 * out (priority first, then enqueue order), and recent failures among the first 100 dead jobs of
 * each queue: a refresh reads a bounded number of records whatever the size of the queues. With
 * no writer running, each refresh loads a new read-only snapshot of the store.
 *
 * @internal
 */
import { Clock, Console, Effect, Schedule } from "effect"
import type { QueueInfo, Reader } from "../JobQueue.ts"
import { failWith } from "./failure.ts"
import * as Format from "./format.ts"
import type { Target } from "./target.ts"

/** A dead job, as the view lists it. */
export interface Failure {
  readonly id: string
  readonly queue: string
  readonly failedAt: number
  readonly error: string
}

/** What one refresh saw. */
export interface Snapshot {
  /** When it was taken (epoch ms, the `Clock`'s). */
  readonly at: number
  /** Where it came from (`writer <address>` or `read-only`). */
  readonly source: string
  readonly queues: ReadonlyArray<QueueInfo>
  /** The enqueue instant of the oldest pending job seen, by queue (none pending: absent). */
  readonly oldestPending: ReadonlyMap<string, number>
  /** The latest failures, newest first (at most `failuresShown`). */
  readonly failures: ReadonlyArray<Failure>
}

/** Jobs read per queue for the oldest pending job and for failures. */
const sample = 100
/** Failures the view lists. */
export const failuresShown = 5

/** A snapshot of the queues through `reader`, taken now. */
export const snapshot = (reader: Reader, source: string) =>
  Effect.gen(function*() {
    const queues = yield* reader.queues()
    const oldestPending = new Map<string, number>()
    const failures: Array<Failure> = []
    for (const info of queues) {
      if (info.pending > 0) {
        const page = yield* reader.list(info.queue, "Pending", { limit: sample })
        if (page.jobs.length > 0) oldestPending.set(info.queue, Math.min(...page.jobs.map((job) => job.enqueuedAt)))
      }
      if (info.dead > 0) {
        for (const job of yield* reader.deadJobs(info.queue, { limit: sample })) {
          failures.push({ id: job.id, queue: job.queue, failedAt: job.failedAt ?? job.enqueuedAt, error: job.lastError ?? "" })
        }
      }
    }
    failures.sort((a, b) => b.failedAt - a.failedAt || (a.id < b.id ? 1 : -1))
    return {
      at: yield* Clock.currentTimeMillis,
      source,
      queues,
      oldestPending,
      failures: failures.slice(0, failuresShown)
    } satisfies Snapshot
  }).pipe(failWith("could not read the queues"))

const jobsOf = (q: QueueInfo) => q.pending + q.scheduled + q.claimed + q.done + q.dead

/** Per second from `before` to `after` over `seconds`, one decimal; `-` without a previous refresh. */
const rate = (before: number | undefined, after: number, seconds: number): string =>
  before === undefined || seconds <= 0 ? "-" : (Math.max(0, after - before) / seconds).toFixed(1)

/**
 * The view of `next`, with rates since `previous` (none: the first refresh, rates `-`): a title
 * line (the store, the source, the instant), the queues' table, and the recent failures.
 */
export const render = (url: string, previous: Snapshot | undefined, next: Snapshot): string => {
  const seconds = previous === undefined ? 0 : (next.at - previous.at) / 1000
  const before = new Map((previous?.queues ?? []).map((q) => [q.queue, q]))
  const rows = next.queues.map((q) => {
    const was = previous === undefined ? undefined : before.get(q.queue)
    const known = previous === undefined ? undefined : 0 // a queue new since the last refresh started at nothing
    const oldest = next.oldestPending.get(q.queue)
    return [
      q.queue,
      ...Format.counts(q),
      q.paused ? "yes" : "no",
      { right: rate(was === undefined ? known : jobsOf(was), jobsOf(q), seconds) },
      { right: rate(was === undefined ? known : was.done, q.done, seconds) },
      { right: rate(was === undefined ? known : was.dead, q.dead, seconds) },
      oldest === undefined ? "-" : Format.age(next.at - oldest)
    ]
  })
  const title = `bucketq top  ${url}  ${next.source}  ${Format.instant(next.at)}\n`
  const queues = rows.length === 0 ? "no queues\n" : Format.table(
    ["QUEUE", ...Format.states.map((s) => s.toUpperCase()), "PAUSED", "IN/S", "DONE/S", "DEAD/S", "OLDEST PENDING"],
    rows
  )
  const failures = next.failures.length === 0 ? "no recent failures\n" : "recent failures:\n" + Format.table(
    ["ID", "QUEUE", "FAILED", "ERROR"],
    next.failures.map((f) => [f.id, f.queue, `${Format.age(next.at - f.failedAt)} ago`, f.error])
  )
  return `${title}\n${queues}\n${failures}`
}

/** Clears a terminal before each frame; frames to a pipe are separated by a blank line instead. */
const frameStart = (first: boolean) => (process.stdout.isTTY === true ? "\x1b[2J\x1b[H" : first ? "" : "\n")

/** Refreshes the view every second, `count` times (undefined: until interrupted). */
export const run = (target: Target, url: string, count: number | undefined) =>
  Effect.gen(function*() {
    let previous: Snapshot | undefined
    const refresh = Effect.scoped(Effect.gen(function*() {
      const next = yield* snapshot(yield* target.reload, target.source)
      yield* Console.log(frameStart(previous === undefined) + render(url, previous, next).replace(/\n$/, ""))
      previous = next
    }))
    const every = Schedule.spaced("1 second")
    yield* count === undefined
      ? Effect.repeat(refresh, every)
      : Effect.repeat(refresh, every.pipe(Schedule.upTo({ times: Math.max(0, count - 1) })))
  })
