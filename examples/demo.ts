// The bucketq demo: a bounded amount of work over four queues on a local directory, that can be
// stopped at any moment (Ctrl-C, kill -9) and run again to resume, and that checks at its start,
// when stopped by Ctrl-C and at its end that every acknowledged job is accounted for
// (examples/demo/accounting.ts).
//
//   npm run demo                      3000 jobs in ./.bucketq-demo (BUCKETQ_URL=file:./.bucketq-demo)
//   npm run demo -- --jobs 500 --work-ms 50
//
// What it does (examples/demo/jobs.ts): enqueues jobs 0 to jobs - 1 that are not in the store yet,
// each with a marker in the queue store's user KV in the same commit; runs a claim loop for the
// orders that settles with effects, a Worker for each other queue (retries, dead letters, a rate
// limit) and a cron schedule; shows a live progress line (examples/demo/progress.ts); once every
// job is done or dead and the digest queue is empty, stops the consumers, prints the accounting
// and a summary. Exit code 0, 1 when the accounting finds a problem (or a consumer fails), 2 for
// bad flags, 130 when stopped by Ctrl-C.
import { NodeRuntime } from "@effect/platform-node"
import { Clock, Effect, Fiber, Ref } from "effect"
// the modules it uses rather than the package's index, which loads the RPC modules too (a second
// more at every start)
import { QueueLive } from "../layers/QueueLive.ts"
import * as JobQueue from "../src/JobQueue.ts"
import { account, describe, markerPrefix } from "./demo/accounting.ts"
import { Digest, digestSchedule, jobOf, queues, workers } from "./demo/jobs.ts"
import * as Progress from "./demo/progress.ts"

/** The accounting found problems (it printed them): the exit code is 1. */
const failed = Effect.sync(() => void (process.exitCode = 1))

interface Flags {
  readonly jobs: number
  readonly workMs: number
}

/** `--jobs N` (default 3000) and `--work-ms N` (default 20), whole numbers; else undefined. */
const parseFlags = (args: ReadonlyArray<string>): Flags | undefined => {
  const flags = { jobs: 3000, workMs: 20 }
  for (let i = 0; i < args.length; i += 2) {
    const value = Number(args[i + 1])
    if (!Number.isSafeInteger(value) || value < 0) return undefined
    if (args[i] === "--jobs" && value >= 1) flags.jobs = value
    else if (args[i] === "--work-ms") flags.workMs = value
    else return undefined
  }
  return flags
}

const utf8 = new TextEncoder()

/** Enqueues jobs 0 to `jobs` - 1 that are not in `present`, each with its marker, counting them in `enqueued`. */
const produce = (queue: JobQueue.Service, jobs: number, present: ReadonlySet<string>, enqueued: Ref.Ref<number>) =>
  Effect.forEach(
    Array.from({ length: jobs }, (_, n) => jobOf(n)).filter((job) => !present.has(job.id)),
    (job) =>
      Effect.andThen(
        job.enqueue(queue, { kv: { [`${markerPrefix}${job.id}`]: utf8.encode(job.queue) } }),
        Ref.update(enqueued, (n) => n + 1)
      ),
    { concurrency: 16, discard: true }
  )

/** Waits until the queues named have nothing pending, scheduled or claimed. */
const drained = (queue: JobQueue.Service, names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    while (true) {
      const t = yield* Progress.totals(queue, names)
      if (t.queued + t.running === 0) return
      yield* Effect.sleep("100 millis")
    }
  })

const summary = (queue: JobQueue.Service, seconds: number) =>
  Effect.gen(function*() {
    for (const name of queues) {
      const s = yield* queue.stats(name)
      yield* Progress.say(`  ${name.padEnd(14)} done ${String(s.done).padStart(6)}  dead ${String(s.dead).padStart(5)}`)
    }
    yield* Progress.say(`finished in ${seconds.toFixed(1)} s. Run it again to check the store once more; delete the store's directory to start over.`)
  })

const main = (flags: Flags, url: string) =>
  Effect.gen(function*() {
    const queue = yield* JobQueue.JobQueue
    const startedAt = yield* Clock.currentTimeMillis
    yield* Progress.say(`bucketq demo: ${flags.jobs} jobs over ${queues.join(", ")} in ${url} (Ctrl-C or kill -9 it, then run it again)`)
    const before = yield* account(queue, queues)
    yield* Progress.say(describe("start", before))
    if (before.problems.length > 0) return yield* failed

    yield* queue.schedule(Digest, { ...digestSchedule, payload: { note: "digest" }, missed: "none" })
    const enqueued = yield* Ref.make(before.enqueued)
    const finish = yield* Progress.start({ queue, names: queues, total: flags.jobs, enqueued, retriedBefore: before.retried })
    const working = yield* Effect.forkScoped(workers(flags.workMs))
    const work = Effect.gen(function*() {
      yield* produce(queue, flags.jobs, before.ids, enqueued)
      yield* drained(queue, queues.filter((name) => name !== Digest.queue))
      yield* queue.unschedule(digestSchedule.key)
      yield* drained(queue, queues)
    })
    yield* Effect.raceFirst(work, Fiber.join(working)) // the consumers end only by failing
    yield* Fiber.interrupt(working)
    yield* finish

    const after = yield* account(queue, queues)
    yield* Progress.say(describe("end", after))
    if (after.problems.length > 0) return yield* failed
    yield* summary(queue, ((yield* Clock.currentTimeMillis) - startedAt) / 1000)
  }).pipe(
    Effect.scoped,
    Effect.onInterrupt(() =>
      Effect.gen(function*() {
        const report = yield* account(yield* JobQueue.JobQueue, queues)
        yield* Progress.say(describe("stop", report))
        yield* Progress.say(`stopped: ${report.waiting} jobs wait in the store; run it again to resume`)
      }).pipe(Effect.ignore)
    )
  )

process.env.BUCKETQ_URL ??= "file:./.bucketq-demo"
const flags = parseFlags(process.argv.slice(2))
if (flags === undefined) {
  process.stderr.write("usage: npm run demo -- [--jobs N (from 1, default 3000)] [--work-ms N (default 20)]\n")
  process.exit(2)
}
NodeRuntime.runMain(main(flags, process.env.BUCKETQ_URL).pipe(Effect.provide(QueueLive)))
