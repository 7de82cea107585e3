// bucketq in many processes, for real: one writer child on the directory backend serving its queue
// (QueueServer, test/fixtures/remoteWriter.ts), producer children (test/fixtures/remoteProducer.ts)
// and Worker children (test/fixtures/remoteWorker.ts) reaching it through QueueClient.layer, and
// this process as a client too. What a child prints is what its caller was told: "enq <id>" once
// an enqueue returned, "acked <id>" once an ack returned, "ran <id> <attempt>" when a handler
// started, "serving <epoch> <port>" once a writer serves.
//   - two producers and two workers against one writer: every acknowledged enqueue is done exactly
//     once, both workers did some of it; a job three times longer than its lease runs once.
//   - the writer killed (kill -9) or frozen (SIGSTOP) under that load with a standby writer
//     process watching: the standby takes over and serves on its own port within takeoverAfter
//     plus one heartbeat (plus its open); producers, given its URL too, go on there (an enqueue
//     sent again with its id is applied once), workers are restarted on it; every acknowledged
//     enqueue is there and gets done, every acknowledged completion stays done; the frozen
//     writer, resumed, is Fenced.
//   - the connection cut under requests (the writer killed while enqueues and acks are in flight):
//     each fails with a typed WriterUnavailable, never a defect or a hang; once the writer is back
//     on the same directory and port, an enqueue sent again with its id or dedup key was applied
//     once, and an ack sent again is ClaimLost when the first one was applied, never a second
//     completion.
// The figures measured (takeover time, jobs/s) are printed for the README.
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer, Option, Redacted, Schedule, type Scope } from "effect"
import * as JobQueue from "../src/JobQueue.ts"
import * as QueueClient from "../src/QueueClient.ts"
import { Slow, Task } from "./fixtures/remoteJobs.ts"
import { type Child, startChild } from "./utils/child.ts"

const token = "many-processes-token"
const takeoverMs = 1500
const heartbeatMs = takeoverMs / 3
/** Room for the standby's open (recovery of the directory store), its listen, and a loaded machine. */
const openAllowanceMs = 2000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const urlOf = (port: number) => `ws://127.0.0.1:${port}/rpc`

/** The ids a child printed after `what` ("enq", "acked", "ran"). */
const printed = (child: Child, what: string) =>
  child.lines.filter((l) => l.startsWith(`${what} `)).map((l) => l.split(" ")[1]!)

/** How many times each id occurs. */
const counts = (ids: ReadonlyArray<string>) => {
  const map = new Map<string, number>()
  for (const id of ids) map.set(id, (map.get(id) ?? 0) + 1)
  return map
}

/** A port free right now, for a process to listen on later. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const startWriter = async (directory: string, mode: "writer" | "standby", port = 0) => {
  const child = startChild("remoteWriter.ts", [directory, String(port), token, mode, String(takeoverMs)])
  if (mode === "standby") return { child, port }
  const line = await child.waitForLine((l) => l.startsWith("serving "))
  return { child, port: Number(line.split(" ")[2]) }
}

const startWorker = async (url: string, taskMs = 5) => {
  const child = startChild("remoteWorker.ts", [url, token, "4", String(taskMs)])
  await child.waitForLine((l) => l === "ready")
  return child
}

const startProducer = (name: string, count: number, urls: ReadonlyArray<string>) =>
  startChild("remoteProducer.ts", [token, name, String(count), urls.join(",")])

/** The client's queue for `url`, in the scope. */
const clientOf = (url: string, retry?: QueueClient.Options["retry"]) =>
  Effect.map(
    Layer.build(QueueClient.layer({ url, token: Redacted.make(token), ...(retry === undefined ? {} : { retry }) })),
    (context) => Context.get(context, JobQueue.JobQueue)
  )

/** Runs `f` with a client of the writer at `url`. */
const withClient = <A, E>(url: string, f: (queue: JobQueue.Service) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(clientOf(url), f)))

/** The status of every id, read from the writer at `url`. */
const statuses = (url: string, ids: ReadonlyArray<string>) =>
  withClient(url, (queue) =>
    Effect.gen(function*() {
      const found = new Map<string, string>()
      yield* Effect.forEach(ids, (id) =>
        Effect.map(queue.get(id), (record) => found.set(id, Option.match(record, { onNone: () => "missing", onSome: (r) => r.status }))), {
        concurrency: 16,
        discard: true
      })
      return found
    }))

/** `promise`, or a failure naming `what` after `ms`. */
const within = <A>(ms: number, promise: Promise<A>, what: string) =>
  Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`not within ${ms} ms: ${what}`)))])

/** Waits until `check` holds, polling, for at most `ms`. */
const eventually = async (ms: number, check: () => Promise<boolean> | boolean, what: string) => {
  const until = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`not within ${ms} ms: ${what}`)
    await sleep(100)
  }
}

describe("bucketq in many processes", () => {
  it("two producers and two workers in four processes against one writer: every acknowledged enqueue done exactly once, by both workers; a job longer than its lease runs once", async () => {
    const directory = mkdtempSync(path.join(tmpdir(), "bucketq-many-"))
    const children: Array<Child> = []
    try {
      const writer = await startWriter(directory, "writer")
      children.push(writer.child)
      const url = urlOf(writer.port)
      const workers = await Promise.all([startWorker(url), startWorker(url)])
      children.push(...workers)
      const perProducer = 120
      const producers = [startProducer("a", perProducer, [url]), startProducer("b", perProducer, [url])]
      children.push(...producers)
      // timed from the first enqueue, not from the children's start (loading tsx takes seconds here)
      await Promise.race(producers.map((p) => p.waitForLine((l) => l.startsWith("enq "))))
      const startedAt = performance.now()
      await Promise.all(producers.map((p) => p.waitForLine((l) => l === "finished")))
      const enqueued = producers.flatMap((p) => printed(p, "enq"))
      assert.strictEqual(enqueued.length, 2 * perProducer)
      assert.strictEqual(new Set(enqueued).size, enqueued.length, "every enqueue returned its own id")
      await eventually(30_000, () => workers.flatMap((w) => printed(w, "acked")).length >= enqueued.length, "every job acked")
      const took = performance.now() - startedAt
      console.log(
        `remote run: ${enqueued.length} jobs enqueued by 2 producer processes and done by 2 worker processes in ${Math.round(took)} ms (${
          Math.round(enqueued.length / (took / 1000))
        } jobs/s end to end)`
      )

      const ran = counts(workers.flatMap((w) => printed(w, "ran")))
      const acked = counts(workers.flatMap((w) => printed(w, "acked")))
      assert.deepStrictEqual(enqueued.filter((id) => ran.get(id) !== 1), [], "each job ran exactly once")
      assert.deepStrictEqual(enqueued.filter((id) => acked.get(id) !== 1), [], "each job acked exactly once")
      assert.strictEqual(ran.size, enqueued.length, "nothing else ran")
      const perWorker = workers.map((w) => printed(w, "acked").length)
      console.log(`the two workers did ${perWorker.join(" and ")} jobs`)
      assert.isTrue(perWorker.every((n) => n > 0), "both workers did some of the work")

      const found = await statuses(url, enqueued)
      assert.deepStrictEqual(enqueued.filter((id) => found.get(id) !== "Done"), [], "every acknowledged enqueue is done")
      const stats = await withClient(url, (queue) => queue.stats("tasks"))
      assert.deepStrictEqual([stats.pending, stats.scheduled, stats.claimed, stats.done, stats.dead], [0, 0, 0, enqueued.length, 0])

      // a job three times its lease, run by a remote worker: its lease is renewed over the connection
      const slowId = await withClient(url, (queue) => Effect.map(queue.enqueue(Slow, { ms: 3000 }), (r) => r.id))
      const outcome = await withClient(url, (queue) => queue.awaitCompletion(slowId, { timeout: "15 seconds" }))
      assert.strictEqual(outcome._tag, "Completed")
      assert.strictEqual(workers.flatMap((w) => printed(w, "ran")).filter((id) => id === slowId).length, 1, "the long job ran once")
      const history = await withClient(url, (queue) => queue.history(slowId))
      assert.deepStrictEqual(history.map((a) => a.outcome), ["Completed"])
    } finally {
      for (const child of children) child.process.kill("SIGKILL")
      await Promise.all(children.map((c) => c.exited))
      rmSync(directory, { recursive: true, force: true })
    }
  }, 60_000)

  const failover = (signal: "SIGKILL" | "SIGSTOP") => async () => {
    const directory = mkdtempSync(path.join(tmpdir(), "bucketq-many-"))
    const children: Array<Child> = []
    try {
      const writer = await startWriter(directory, "writer")
      children.push(writer.child)
      const standby = await startWriter(directory, "standby", await freePort())
      children.push(standby.child)
      const [url, standbyUrl] = [urlOf(writer.port), urlOf(standby.port)]
      const before = await Promise.all([startWorker(url), startWorker(url)])
      children.push(...before)
      const producers = [startProducer("a", 120, [url, standbyUrl]), startProducer("b", 120, [url, standbyUrl])]
      children.push(...producers)
      await eventually(30_000, () =>
        producers.flatMap((p) => printed(p, "enq")).length >= 60 && before.flatMap((w) => printed(w, "acked")).length >= 20, "load")
      assert.isFalse(standby.child.lines.some((l) => l.startsWith("serving")), "a standby never takes over from a writer that heartbeats")

      const stoppedAt = performance.now()
      writer.child.process.kill(signal)
      const serving = await within(15_000, standby.child.waitForLine((l) => l.startsWith("serving ")), "the takeover")
      const took = performance.now() - stoppedAt
      console.log(`${signal}: the standby process served on its own port ${Math.round(took)} ms after the writer stopped (takeoverAfter ${takeoverMs} ms, heartbeat every ${heartbeatMs} ms)`)
      assert.strictEqual(serving, `serving 2 ${standby.port}`)
      assert.isAtMost(took, takeoverMs + heartbeatMs + openAllowanceMs)
      assert.isAtLeast(took, takeoverMs - heartbeatMs - 100)

      const after = await Promise.all([startWorker(standbyUrl), startWorker(standbyUrl)])
      children.push(...after)
      if (signal === "SIGSTOP") {
        // the frozen writer resumes: its next commit finds it fenced; nothing it is sent is applied
        writer.child.process.kill("SIGCONT")
        assert.strictEqual(await within(15_000, writer.child.exited, "the resumed writer fenced"), 3, writer.child.stderr)
        assert.include(writer.child.lines, "fenced")
      } else {
        assert.strictEqual(await writer.child.exited, "SIGKILL")
      }
      for (const worker of before) worker.process.kill("SIGKILL")
      await Promise.all(before.map((w) => w.exited))
      await within(30_000, Promise.all(producers.map((p) => p.waitForLine((l) => l === "finished"))), "the producers")

      const enqueued = [...new Set(producers.flatMap((p) => printed(p, "enq")))]
      const ackedBefore = [...new Set(before.flatMap((w) => printed(w, "acked")))]
      const lostBatches = producers.flatMap((p) => p.lines.filter((l) => l.startsWith("batchlost ")).map((l) => Number(l.split(" ")[1])))
      const resent = producers.flatMap((p) => p.lines.filter((l) => l.endsWith(" dup")))
      await eventually(30_000, async () => {
        const stats = await withClient(standbyUrl, (queue) => queue.stats("tasks"))
        return stats.pending + stats.scheduled + stats.claimed === 0
      }, "every job done after the takeover")
      const found = await statuses(standbyUrl, [...enqueued, ...ackedBefore])
      assert.deepStrictEqual(enqueued.filter((id) => found.get(id) !== "Done"), [], "every acknowledged enqueue is done")
      assert.deepStrictEqual(ackedBefore.filter((id) => found.get(id) !== "Done"), [], "every acknowledged completion stays done")
      const stats = await withClient(standbyUrl, (queue) => queue.stats("tasks"))
      assert.strictEqual(stats.dead, 0)
      const lost = lostBatches.reduce((a, b) => a + b, 0)
      assert.isAtLeast(stats.done, enqueued.length)
      assert.isAtMost(stats.done, enqueued.length + lost, "nothing was enqueued twice")
      console.log(`${signal}: ${enqueued.length} acknowledged enqueues (${resent.length} sent again to the standby after the first was applied, ${lostBatches.length} batch(es) of ${lost} jobs unacknowledged), all done; ${ackedBefore.length} completions acknowledged before, all still done; the workers after the takeover did ${after.map((w) => printed(w, "acked").length).join(" and ")} jobs`)
    } finally {
      for (const child of children) child.process.kill("SIGKILL")
      await Promise.all(children.map((c) => c.exited))
      rmSync(directory, { recursive: true, force: true })
    }
  }

  it("kill -9 of the writer under load with a standby writer process: it takes over within takeoverAfter plus one heartbeat and serves; every acknowledged enqueue gets done, every acknowledged completion stays done", failover("SIGKILL"), 90_000)

  it("a writer frozen under load (SIGSTOP) with a standby writer process: it takes over and serves; the writer, resumed, is Fenced and applies nothing more", failover("SIGSTOP"), 90_000)

  it("the connection cut under enqueues and acks: each fails with a typed WriterUnavailable, never a defect or a hang; sent again once the writer is back, an enqueue with an id or dedup key is applied once, an ack is ClaimLost if it was applied", async () => {
    const directory = mkdtempSync(path.join(tmpdir(), "bucketq-many-"))
    const children: Array<Child> = []
    try {
      const first = await startWriter(directory, "writer")
      children.push(first.child)
      const url = urlOf(first.port)
      await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        // a short wait for the connection, so that the calls made while the writer is down end soon
        const queue = yield* clientOf(url, { maxAttempts: 2, base: "50 millis", max: "50 millis" })
        /**
         * Runs `send` for every n, four at a time, and kills the writer the moment `killAfter`
         * have succeeded: the other calls are in flight or not sent yet (polling for the count
         * instead let a fast writer answer every call before the kill).
         */
        const cut = <A, E>(ns: ReadonlyArray<number>, killAfter: number, send: (n: number) => Effect.Effect<A, E>, writer: Child) =>
          Effect.gen(function*() {
            let succeeded = 0
            const exits = new Map<number, Exit.Exit<A, E>>()
            const fiber = yield* Effect.forkChild(Effect.forEach(ns, (n) =>
              Effect.map(Effect.exit(send(n)), (exit) => {
                exits.set(n, exit)
                if (Exit.isSuccess(exit) && ++succeeded === killAfter) writer.process.kill("SIGKILL")
              }), { concurrency: 4, discard: true }))
            yield* Effect.promise(() => eventually(20_000, () => succeeded >= killAfter, "calls before the cut"))
            yield* Effect.promise(() => writer.exited)
            // bounded: every call ends, typed, soon after the cut
            yield* Fiber.join(fiber).pipe(Effect.timeout("20 seconds"), Effect.orDie)
            const failures = [...exits].flatMap(([n, exit]) => Exit.isFailure(exit) ? [[n, exit.cause] as const] : [])
            for (const [n, cause] of failures) {
              assert.deepStrictEqual(cause.reasons.map((r) => r._tag), ["Fail"], `call ${n}: ${Cause.pretty(cause)}`)
              const error = Option.getOrThrow(Cause.findErrorOption(cause)) as { readonly _tag: string; readonly reason: string }
              assert.strictEqual(error._tag, "WriterUnavailable", `call ${n}: ${Cause.pretty(cause)}`)
              assert.include(["Dropped", "Unreachable"], error.reason)
            }
            const reasons = failures.map(([, cause]) => (Option.getOrThrow(Cause.findErrorOption(cause)) as { readonly reason: string }).reason)
            assert.isAbove(failures.length, 0, "the cut fell under calls")
            return { failed: failures.map(([n]) => n), dropped: reasons.filter((r) => r === "Dropped").length }
          })
        /** Sends again once the writer is back (the client reconnects on its own meanwhile). */
        const again = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.exit(effect.pipe(Effect.retry({
            while: (e) => (e as { readonly _tag?: string; readonly reason?: string })._tag === "WriterUnavailable" &&
              (e as { readonly reason?: string }).reason === "Unreachable",
            schedule: Schedule.spaced("200 millis"),
            times: 50
          })))
        const restart = Effect.promise(async () => {
          const next = await startWriter(directory, "writer", first.port)
          children.push(next.child)
          return next.child
        })

        // enqueues: even n with an id of its own, odd n with a dedup key
        const ns = Array.from({ length: 120 }, (_, n) => n)
        const enqueue = (n: number) =>
          n % 2 === 0 ? queue.enqueue(Task, { n }, { id: `cut-${n}` }) : queue.enqueue(Task, { n }, { dedupKey: `key-${n}` })
        const enqueues = yield* cut(ns, 20, enqueue, first.child)
        const second = yield* restart
        let applied = 0
        for (const n of enqueues.failed) {
          const exit = yield* again(enqueue(n))
          if (Exit.isSuccess(exit)) {
            if (!exit.value.created) applied++ // the dedup key's job was there: its id is returned
            continue
          }
          const error = Option.getOrThrow(Cause.findErrorOption(exit.cause)) as { readonly _tag: string }
          assert.strictEqual(error._tag, "DuplicateJobId", `enqueue ${n} sent again: ${Cause.pretty(exit.cause)}`)
          assert.strictEqual(n % 2, 0)
          applied++
        }
        console.log(`enqueues cut: ${enqueues.failed.length} of ${ns.length} failed (${enqueues.dropped} Dropped, the rest Unreachable); sent again, ${applied} had been applied`)
        const pending = yield* queue.list(Task, "Pending", { limit: 1000 })
        assert.deepStrictEqual(pending.jobs.map((job) => (job.payload as { readonly n: number }).n).sort((a, b) => a - b), ns, "every job once, none twice")
        assert.strictEqual((yield* queue.stats("tasks")).pending, ns.length)

        // acks of held claims, made durable by a later commit
        const claims = yield* queue.claim(Task, { max: 100, lease: "5 minutes" })
        assert.strictEqual(claims.length, 100)
        yield* queue.enqueue(Slow, { ms: 0 }, { id: "durable-after-the-claims" })
        const acks = yield* cut(claims.map((_, i) => i), 3, (i) => queue.ack(claims[i]!), second)
        yield* restart
        const resent = new Map<number, string>()
        for (const i of acks.failed) {
          const exit = yield* again(queue.ack(claims[i]!))
          if (Exit.isSuccess(exit)) {
            resent.set(i, "Acked")
            continue
          }
          const error = Option.getOrThrow(Cause.findErrorOption(exit.cause)) as { readonly _tag: string }
          assert.strictEqual(error._tag, "ClaimLost", `ack ${claims[i]!.job.id} sent again: ${Cause.pretty(exit.cause)}`)
          resent.set(i, "ClaimLost")
        }
        // A ClaimLost is either the first ack applied (the job is done, once) or the claim requeued
        // when the writer opened again: the writer requeues every claim a previous process left
        // (history "Interrupted"), a remote worker's too. Never a second completion.
        let appliedFirst = 0
        let requeuedAtOpen = 0
        for (const [i, claim] of claims.entries()) {
          const record = Option.getOrThrow(yield* queue.get(claim.job.id))
          const outcomes = (yield* queue.history(claim.job.id)).map((a) => a.outcome)
          if (!acks.failed.includes(i) || resent.get(i) === "Acked") {
            assert.deepStrictEqual([record.status, outcomes], ["Done", ["Completed"]], `job ${claim.job.id}: acked, completed once`)
          } else if (record.status === "Done") {
            assert.deepStrictEqual(outcomes, ["Completed"], `job ${claim.job.id}: completed once`)
            appliedFirst++
          } else {
            assert.deepStrictEqual([record.status, outcomes], ["Pending", ["Interrupted"]], `job ${claim.job.id}: requeued at the open`)
            requeuedAtOpen++
          }
        }
        const done = claims.length - requeuedAtOpen
        console.log(`acks cut: ${acks.failed.length} of ${claims.length} failed (${acks.dropped} Dropped); sent again, ${resent.size - appliedFirst - requeuedAtOpen} applied now, ${appliedFirst} ClaimLost as applied the first time, ${requeuedAtOpen} ClaimLost as the claim was requeued at the writer's open`)
        const stats = yield* queue.stats("tasks")
        assert.deepStrictEqual([stats.pending, stats.claimed, stats.done, stats.dead], [ns.length - done, 0, done, 0])
      })))
    } finally {
      for (const child of children) child.process.kill("SIGKILL")
      await Promise.all(children.map((c) => c.exited))
      rmSync(directory, { recursive: true, force: true })
    }
  }, 60_000)
})
