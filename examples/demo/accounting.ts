// The demo's accounting: is every acknowledged job where it should be?
//
// Each enqueue of the demo writes a marker `enq/<id>` (the value: its queue) into the queue
// store's user KV in the same commit as the job (`enqueue(def, payload, { kv })`), so the markers
// are exactly the enqueues that were committed: every one whose call returned, and maybe a few
// whose answer a kill cut off. The accounting reads the markers, then lists every job of the demo's
// queues in every state (done and dead jobs are kept), and finds:
//   - lost: a marker whose job is in no state (or in another queue);
//   - listed twice: a job found in two states, or twice in one;
//   - completed twice: a done job whose history holds other than one `Completed` attempt (any
//     other job: none), or a
//     queue whose `done` counter (one per ack, in the ack's commit) is not its number of done jobs
//     (and likewise `dead`);
//   - strangers: a job of the demo's queues that no marker and no cron slot accounts for;
//   - a torn settlement: a done order without its `shipped/<id>` marker (written by its ack in the
//     same commit), or a marker whose order is not done.
// It reads while nothing of the demo moves (before the consumers start, after they stopped); only
// a cron slot may be enqueued meanwhile, a new pending digest job, which no check compares.
import { Effect, Option } from "effect"
import type * as JobQueue from "../../src/JobQueue.ts"
import { Digest, Order, shippedKey } from "./jobs.ts"

/** The key prefix of the enqueue markers in the user KV. */
export const markerPrefix = "enq/"

const states: ReadonlyArray<JobQueue.JobStatus> = ["Pending", "Scheduled", "Claimed", "Done", "Dead"]

/** What the accounting found. */
export interface Report {
  /** Enqueue markers: the jobs the demo enqueued. */
  readonly enqueued: number
  /** The ids of those jobs (to resume the producer). */
  readonly ids: ReadonlySet<string>
  /** Jobs of the cron schedule found in the store. */
  readonly cron: number
  /** The demo's enqueued jobs by state. */
  readonly done: number
  readonly dead: number
  /** Pending, scheduled or claimed. */
  readonly waiting: number
  /** Attempts that ended `Retried` or `LeaseExpired`, over every job found. */
  readonly retried: number
  /** What does not add up, one line each (empty: every acknowledged job is accounted for). */
  readonly problems: ReadonlyArray<string>
}

const text = new TextDecoder()

/** Every entry of the user KV under `prefix`: the rest of its key to its value. */
const readMarkers = (queue: JobQueue.Service, prefix: string) =>
  Effect.gen(function*() {
    const markers = new Map<string, string>()
    let after: string | undefined
    while (true) {
      const page = yield* queue.kv.scan(prefix, { after, limit: 10_000 })
      for (const entry of page) markers.set(entry.key.slice(prefix.length), text.decode(entry.value))
      if (page.length < 10_000) return markers
      after = page[page.length - 1]!.key
    }
  })

/** A done order without its shipping marker, or a marker without its done order. */
const tornSettlements = (found: ReadonlyMap<string, JobQueue.ListedRecord>, shipped: ReadonlyMap<string, string>) => {
  const problems: Array<string> = []
  for (const job of found.values()) {
    if (job.queue === Order.queue && job.status === "Done" && !shipped.has(job.id)) problems.push(`${job.id} done without ${shippedKey(job.id)}`)
  }
  for (const id of shipped.keys()) {
    const job = found.get(id)
    if (job === undefined || job.queue !== Order.queue || job.status !== "Done") problems.push(`${shippedKey(id)} written, but ${id} is not a done order`)
  }
  return problems
}

/** Every job of `name` in `state`, page after page. */
const listAll = (queue: JobQueue.Service, name: string, state: JobQueue.JobStatus) =>
  Effect.gen(function*() {
    const jobs: Array<JobQueue.ListedRecord> = []
    let cursor: string | undefined
    do {
      const page = yield* queue.list(name, state, { cursor, limit: 1000 })
      jobs.push(...page.jobs)
      cursor = Option.getOrUndefined(page.cursor)
    } while (cursor !== undefined)
    return jobs
  })

const countOutcomes = (job: JobQueue.JobRecord, outcomes: ReadonlyArray<JobQueue.AttemptOutcome>) =>
  (job.history ?? []).filter((attempt) => outcomes.includes(attempt.outcome)).length

/** Runs the accounting over the demo's queues (`names`). */
export const account = (queue: JobQueue.Service, names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const markers = yield* readMarkers(queue, markerPrefix)
    const shipped = yield* readMarkers(queue, shippedKey(""))
    const found = new Map<string, JobQueue.ListedRecord>()
    const problems: Array<string> = []
    let retried = 0
    for (const name of names) {
      const byState = new Map<JobQueue.JobStatus, number>()
      for (const state of states) {
        const jobs = yield* listAll(queue, name, state)
        byState.set(state, jobs.length)
        for (const job of jobs) {
          if (found.has(job.id)) problems.push(`${job.id} listed twice (${found.get(job.id)!.status} and ${state})`)
          found.set(job.id, job)
          retried += countOutcomes(job, ["Retried", "LeaseExpired"])
          const completions = countOutcomes(job, ["Completed"])
          if (completions !== (state === "Done" ? 1 : 0)) problems.push(`${job.id} completed ${completions} times, and ${state}`)
        }
      }
      const stats = yield* queue.stats(name)
      if (stats.done !== byState.get("Done")) problems.push(`${name}: ${stats.done} acks counted, ${byState.get("Done")} done jobs`)
      if (stats.dead !== byState.get("Dead")) problems.push(`${name}: ${stats.dead} dead counted, ${byState.get("Dead")} dead jobs`)
    }
    let done = 0, dead = 0, waiting = 0
    for (const [id, name] of markers) {
      const job = found.get(id)
      if (job === undefined || job.queue !== name) problems.push(`${id} lost: enqueued in ${name}, found nowhere there`)
      else if (job.status === "Done") done++
      else if (job.status === "Dead") dead++
      else waiting++
    }
    let cron = 0
    for (const job of found.values()) {
      if (markers.has(job.id)) continue
      if (job.queue === Digest.queue) cron++
      else problems.push(`${job.id} in ${job.queue}: enqueued by no one`)
    }
    problems.push(...tornSettlements(found, shipped))
    return { enqueued: markers.size, ids: new Set(markers.keys()), cron, done, dead, waiting, retried, problems } satisfies Report
  })

/** The report in one line; the test of the demo reads it. */
export const describe = (when: "start" | "stop" | "end", report: Report): string => {
  const figures = `${report.enqueued} enqueued, ${report.cron} cron, ${report.done} done, ${report.dead} dead, ` +
    `${report.waiting} waiting, ${report.retried} retried`
  return report.problems.length === 0
    ? `accounting (${when}): ${figures}: every acknowledged job is accounted for (none lost, none done twice, no torn settlement)`
    : `accounting (${when}): ${figures}: ${report.problems.length} PROBLEMS:\n  ${report.problems.slice(0, 20).join("\n  ")}`
}
