// The demo (examples/demo.ts) for real: run as a child process on a temporary directory with 400
// jobs, stopped midway (kill -9, or Ctrl-C), then run again to the end. What is checked is what a
// user reads: the accounting lines it prints at its start, when stopped and at its end, against
// the progress the stopped run had printed, and the figures the demo's rules fix in advance
// (examples/demo/jobs.ts: of jobs 0-399, 8 e-mails fail for good and 20 reports fail every
// attempt: 28 dead, 372 done). Then this process opens the store itself and counts again. And a
// store made wrong on purpose, which the demo's accounting must catch.
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { Order } from "../examples/demo/jobs.ts"
import { type Child, startChild } from "./utils/child.ts"

const jobs = 400
/** Of jobs 0-399: the e-mails n % 50 == 5 (8) and the reports n % 20 == 8 (20). */
const dead = 28
const queues = ["demo/orders", "demo/emails", "demo/reports"]

const runDemo = (directory: string, count = jobs, workMs = 40) =>
  startChild("examples/demo.ts", ["--jobs", String(count), "--work-ms", String(workMs)], {
    script: true,
    env: { BUCKETQ_URL: `file:${directory}` }
  })

interface Accounting {
  readonly enqueued: number
  readonly cron: number
  readonly done: number
  readonly dead: number
  readonly waiting: number
  readonly retried: number
}

const accountingLine =
  /^accounting \((start|stop|end)\): (\d+) enqueued, (\d+) cron, (\d+) done, (\d+) dead, (\d+) waiting, (\d+) retried: every acknowledged job is accounted for/

/** The accounting the child printed `when`; fails the test when there is none or it found problems. */
const accountingOf = (child: Child, when: "start" | "stop" | "end"): Accounting => {
  const line = child.lines.find((l) => l.startsWith(`accounting (${when})`))
  assert.isDefined(line, `no accounting (${when}) line; stdout:\n${child.lines.join("\n")}\nstderr: ${child.stderr}`)
  const match = accountingLine.exec(line!)
  assert.isNotNull(match, `the accounting found problems: ${child.lines.slice(child.lines.indexOf(line!)).join("\n")}`)
  const [enqueued, cron, done, dead, waiting, retried] = match!.slice(2).map(Number) as [number, number, number, number, number, number]
  return { enqueued, cron, done, dead, waiting, retried }
}

const progressLine = /^enqueued (\d+)\/\d+ · queued (\d+) · running (\d+) · done (\d+) · retried (\d+) · dead (\d+) · \d+ jobs\/s$/

/** The figures of a progress line (enqueued, done and dead), or undefined for another line. */
const progressOf = (line: string) => {
  const match = progressLine.exec(line)
  return match === null ? undefined : { enqueued: Number(match[1]), done: Number(match[4]), dead: Number(match[6]) }
}

/** Waits until the child printed a progress line with at least `done` jobs done, and returns the last one. */
const progressed = async (child: Child, done: number) => {
  await child.waitForLine((l) => (progressOf(l)?.done ?? 0) >= done)
  return progressOf(child.lines.filter((l) => progressOf(l) !== undefined).at(-1)!)!
}

/** Runs the demo again to its end and checks its end: every job done or dead, as its rules say. */
const finish = async (directory: string) => {
  const child = runDemo(directory)
  assert.strictEqual(await child.exited, 0, child.stderr)
  const end = accountingOf(child, "end")
  assert.deepStrictEqual(
    { enqueued: end.enqueued, done: end.done, dead: end.dead, waiting: end.waiting },
    { enqueued: jobs, done: jobs - dead, dead, waiting: 0 }
  )
  assert.isAbove(end.retried, 0)
  return child
}

/** Runs `f` on the demo's store, opened in this process (the demo has exited). */
const onStore = <A, E>(directory: string, f: (queue: JobQueue.Service) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    return yield* f(yield* JobQueue.JobQueue)
  })).pipe(Effect.provide(
    JobQueue.layer({ writerRecord: false }).pipe(
      Layer.provide(Kv.layer()),
      Layer.provide(ObjectStore.layerFileSystem({ directory }))
    )
  )))

/** Counts the enqueue markers and the queues' counters. */
const countStore = (directory: string) =>
  onStore(directory, (queue) =>
    Effect.gen(function*() {
      const markers = yield* queue.kv.scan("enq/", { limit: 10_000 })
      const stats = yield* Effect.forEach(queues, (name) => queue.stats(name))
      return {
        markers: markers.length,
        done: stats.reduce((sum, s) => sum + s.done, 0),
        dead: stats.reduce((sum, s) => sum + s.dead, 0),
        waiting: stats.reduce((sum, s) => sum + s.pending + s.scheduled + s.claimed, 0)
      }
    }))

const withDirectory = (test: (directory: string) => Promise<void>) => async () => {
  const directory = mkdtempSync(path.join(tmpdir(), "bucketq-demo-"))
  try {
    await test(directory)
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

describe("the demo", () => {
  it("killed with SIGKILL midway, it resumes from the store: every job it had shown enqueued, done or dead is found there, and the second run finishes all of them", withDirectory(async (directory) => {
    const first = runDemo(directory)
    const shown = await progressed(first, 60)
    first.process.kill("SIGKILL")
    assert.strictEqual(await first.exited, "SIGKILL")
    assert.deepStrictEqual(accountingOf(first, "start"), { enqueued: 0, cron: 0, done: 0, dead: 0, waiting: 0, retried: 0 })
    assert.isUndefined(first.lines.find((l) => l.startsWith("accounting (end)")), "the demo ended before it was killed")

    const second = await finish(directory)
    const start = accountingOf(second, "start")
    assert.isAtLeast(start.enqueued, shown.enqueued) // counted as the enqueues returned: durable
    // The progress line's done and dead come from the queues' counters, which count a settlement
    // once it is committed in the process, before it is durable (see the README's user KV notes);
    // the kill may lose those whose acks had not returned: at most the settlements that can be
    // under way at once (the orders' loop 16, each Worker its concurrency twice, the digest's 2).
    const underWay = 16 + 2 * 4 + 2 * 4 + 2
    assert.isAtLeast(start.done + start.cron + underWay, shown.done) // the progress line counts the digest's jobs among the done
    assert.isAtLeast(start.dead + underWay, shown.dead)
    assert.isAbove(start.waiting, 0)
    assert.strictEqual(start.enqueued, start.done + start.dead + start.waiting)

    assert.deepStrictEqual(await countStore(directory), { markers: jobs, done: jobs - dead, dead, waiting: 0 })
  }), 120_000)

  it("stopped with Ctrl-C (SIGINT) midway, it exits cleanly after its accounting, and the next run finishes the work", withDirectory(async (directory) => {
    const first = runDemo(directory)
    await progressed(first, 60)
    first.process.kill("SIGINT")
    assert.include([0, 130], await first.exited, first.stderr)
    const stop = accountingOf(first, "stop")
    assert.isAbove(stop.waiting, 0)
    assert.isDefined(first.lines.find((l) => l === `stopped: ${stop.waiting} jobs wait in the store; run it again to resume`))

    const second = await finish(directory)
    const start = accountingOf(second, "start")
    assert.deepStrictEqual(
      { enqueued: start.enqueued, done: start.done, dead: start.dead, waiting: start.waiting },
      { enqueued: stop.enqueued, done: stop.done, dead: stop.dead, waiting: stop.waiting }
    )
  }), 120_000)

  it("catches a job lost and torn settlements in a store made wrong on purpose: its accounting names each one, and it exits with 1 before any work", withDirectory(async (directory) => {
    const marker = new TextEncoder().encode(Order.queue)
    await onStore(directory, (queue) =>
      Effect.gen(function*() {
        // an order done by an ack without its effect
        yield* queue.enqueue(Order, { n: 0, amount: 10 }, { id: "order-000000", kv: { "enq/order-000000": marker } })
        const [claim] = yield* queue.claim(Order)
        yield* queue.ack(claim!)
        yield* queue.kv.put("enq/order-000005", marker) // an enqueue whose job is nowhere
        yield* queue.kv.put("shipped/order-000010", new Uint8Array([1])) // an effect without its ack
      }))
    const child = runDemo(directory)
    assert.strictEqual(await child.exited, 1, child.stderr)
    const at = child.lines.findIndex((l) => l.startsWith("accounting (start)"))
    assert.strictEqual(
      child.lines[at],
      "accounting (start): 2 enqueued, 0 cron, 1 done, 0 dead, 0 waiting, 0 retried: 3 PROBLEMS:"
    )
    assert.deepStrictEqual(child.lines.slice(at + 1).map((l) => l.trim()), [
      "order-000005 lost: enqueued in demo/orders, found nowhere there",
      "order-000000 done without shipped/order-000000",
      "shipped/order-000010 written, but order-000010 is not a done order"
    ])
  }), 60_000)

  it("refuses a bad flag with its usage and exit code 2, touching no store", withDirectory(async (directory) => {
    const child = startChild("examples/demo.ts", ["--jobs", "many"], { script: true, env: { BUCKETQ_URL: `file:${directory}/store` } })
    assert.strictEqual(await child.exited, 2)
    assert.include(child.stderr, "usage: npm run demo")
    assert.deepStrictEqual(child.lines, [])
    assert.isFalse(existsSync(path.join(directory, "store")))
  }), 60_000)
})
