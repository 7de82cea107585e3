// The standby writer across real processes on the directory backend (test/fixtures/standbyWorker.ts),
// with a short takeoverAfter (1.5 s: a heartbeat every 500 ms). What the children print is what
// their callers were told: an "enq" line once an enqueue returned, an "ack" line once an ack
// returned, "serving <epoch>" once a writer serves, "fenced" when it found out it was fenced.
//   - kill -9 of the writer under load: the standby takes over within takeoverAfter plus one
//     heartbeat (plus its open), measured from the kill and printed; afterwards every
//     acknowledged enqueue is there and every acknowledged completion is done.
//   - a writer frozen (SIGSTOP, as in a long GC or VM pause) with two standbys watching: exactly
//     one takes over and serves; the writer, resumed (SIGCONT), is a zombie that finds itself
//     Fenced, and the writer record stays the new writer's.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { staleLockMillis } from "../src/ObjectStore/FileSystem.ts"
import * as WriterRecord from "../src/WriterRecord.ts"
import { type Child, startChild } from "./utils/child.ts"

const takeoverMs = 1500
const heartbeatMs = takeoverMs / 3
/** Room for the standby's open (recovery of the directory store) and for a loaded machine. */
const openAllowanceMs = 1500

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const idsPrinted = (child: Child, what: string) =>
  child.lines.filter((l) => l.startsWith(`${what} `)).map((l) => l.slice(what.length + 1))

/** Opens the store in this process (fencing whoever still writes) and reads the jobs and the record. */
const inspect = (directory: string, ids: ReadonlyArray<string>) =>
  Effect.runPromise(Effect.gen(function*() {
    const store = yield* ObjectStore.ObjectStore
    const record = yield* WriterRecord.read(store)
    const queue = yield* JobQueue.JobQueue
    const statuses = new Map<string, string>()
    for (const id of ids) statuses.set(id, Option.match(yield* queue.get(id), { onNone: () => "missing", onSome: (r) => r.status }))
    return { record, statuses }
  }).pipe(Effect.provide(
    JobQueue.layer({ writerRecord: false }).pipe(
      Layer.provide(Kv.layer()),
      Layer.provideMerge(ObjectStore.layerFileSystem({ directory }))
    )
  )))

/** Checks that every enqueue `writer` was told of is there, and every ack it was told of is done. */
const checkAcknowledged = async (directory: string, writers: ReadonlyArray<Child>) => {
  const enqueued = writers.flatMap((w) => idsPrinted(w, "enq"))
  const acked = writers.flatMap((w) => idsPrinted(w, "ack"))
  const { record, statuses } = await inspect(directory, [...new Set([...enqueued, ...acked])])
  assert.deepStrictEqual(enqueued.filter((id) => statuses.get(id) === "missing"), [], "acknowledged enqueues missing")
  assert.deepStrictEqual(acked.filter((id) => statuses.get(id) !== "Done"), [], "acknowledged completions not done")
  return { enqueued: enqueued.length, acked: acked.length, record }
}

const serving = (child: Child) => child.lines.some((l) => l.startsWith("serving "))
const fenced = (child: Child) => child.lines.some((l) => l.startsWith("fenced"))

describe("The standby writer across processes", () => {
  it("kill -9 of the writer under load: the standby takes over within takeoverAfter plus one heartbeat, with every acknowledged enqueue and completion", async () => {
    const directory = mkdtempSync(path.join(tmpdir(), "bucketq-standby-"))
    const children: Array<Child> = []
    try {
      const writer = startChild("standbyWorker.ts", [directory, "w", "writer", String(takeoverMs)])
      children.push(writer)
      await writer.waitForLine((l) => l === "serving 1")
      const standby = startChild("standbyWorker.ts", [directory, "s", "standby", String(takeoverMs)])
      children.push(standby)
      await writer.waitForLines((l) => l.startsWith("ack "), 300)
      await sleep(2 * takeoverMs) // the standby watches a live writer: it must not take over
      assert.isFalse(serving(standby), "a standby never takes over from a writer that heartbeats")
      const killedAt = performance.now()
      writer.process.kill("SIGKILL")
      assert.strictEqual(await writer.exited, "SIGKILL", writer.stderr)
      await standby.waitForLine((l) => l.startsWith("serving "))
      const took = performance.now() - killedAt
      console.log(`standby took over ${Math.round(took)} ms after kill -9 (takeoverAfter ${takeoverMs} ms, heartbeat every ${heartbeatMs} ms)`)
      assert.strictEqual(standby.lines.find((l) => l.startsWith("serving ")), "serving 2")
      assert.isAtMost(took, takeoverMs + heartbeatMs + openAllowanceMs)
      assert.isAtLeast(took, takeoverMs - heartbeatMs - 100)
      await standby.waitForLines((l) => l.startsWith("ack "), 50)
      standby.process.kill("SIGKILL")
      await standby.exited
      const checked = await checkAcknowledged(directory, [writer, standby])
      console.log(`${checked.enqueued} acknowledged enqueues and ${checked.acked} acknowledged completions, all there after the takeover`)
      assert.isAbove(checked.enqueued, 300)
      assert.strictEqual(Option.map(checked.record, (r) => r.epoch).pipe(Option.getOrUndefined), 2)
    } finally {
      for (const child of children) child.process.kill("SIGKILL")
      rmSync(directory, { recursive: true, force: true })
    }
  }, 120_000)

  it("a writer frozen under load with two standbys watching: exactly one serves; the writer, resumed, is Fenced and the record stays the new writer's", async () => {
    const directory = mkdtempSync(path.join(tmpdir(), "bucketq-standby-"))
    const children: Array<Child> = []
    try {
      const writer = startChild("standbyWorker.ts", [directory, "w", "writer", String(takeoverMs)])
      children.push(writer)
      await writer.waitForLine((l) => l === "serving 1")
      const standbys = [
        startChild("standbyWorker.ts", [directory, "a", "standby", String(takeoverMs)]),
        startChild("standbyWorker.ts", [directory, "b", "standby", String(takeoverMs)])
      ]
      children.push(...standbys)
      await writer.waitForLines((l) => l.startsWith("ack "), 200)
      await sleep(takeoverMs)
      const stoppedAt = performance.now()
      writer.process.kill("SIGSTOP")
      await Promise.race(standbys.map((s) => s.waitForLine((l) => l.startsWith("serving "))))
      const took = performance.now() - stoppedAt
      console.log(`a standby took over ${Math.round(took)} ms after the writer froze (takeoverAfter ${takeoverMs} ms)`)
      // a writer frozen while it held the lock of its record (a heartbeat's put, a few ms in each
      // 500) holds it up to staleLockMillis more: the directory store breaks a lock no sooner
      assert.isAtMost(took, takeoverMs + heartbeatMs + openAllowanceMs + staleLockMillis)
      await sleep(3 * takeoverMs) // a loser that opened finds out within a fence check (takeoverAfter / 3)
      const live = standbys.filter((s) => serving(s) && !fenced(s))
      assert.strictEqual(live.length, 1, `serving: ${standbys.map((s) => s.lines.filter((l) => /^(serving|fenced)/.test(l)).join(",")).join(" | ")}`)
      const winner = live[0]!
      const winnerEpoch = Number(winner.lines.find((l) => l.startsWith("serving "))!.split(" ")[1])
      const ackedBefore = idsPrinted(winner, "ack").length
      await winner.waitForLines((l) => l.startsWith("ack "), ackedBefore + 20)

      // the zombie wakes up: its next commit fails Fenced, its late heartbeat leaves the record alone
      writer.process.kill("SIGCONT")
      assert.strictEqual(await writer.exited, 3, writer.stderr)
      assert.isTrue(fenced(writer))
      await sleep(takeoverMs)
      for (const child of children) child.process.kill("SIGKILL")
      await Promise.all(children.map((c) => c.exited))
      const checked = await checkAcknowledged(directory, [writer, ...standbys])
      const loser = standbys.find((s) => s !== winner)!
      const loserFate = serving(loser)
        ? `served ${loser.lines.find((l) => l.startsWith("serving "))} until it found itself fenced`
        : loser.lines.some((l) => l.includes("standby lost the takeover")) ? "lost the race while opening and waited again" : "kept waiting"
      console.log(`${checked.enqueued} acknowledged enqueues and ${checked.acked} acknowledged completions, all there; the winner had epoch ${winnerEpoch}; the other standby ${loserFate}`)
      assert.strictEqual(Option.map(checked.record, (r) => r.epoch).pipe(Option.getOrUndefined), winnerEpoch)
    } finally {
      for (const child of children) child.process.kill("SIGKILL")
      rmSync(directory, { recursive: true, force: true })
    }
  }, 120_000)
})
