// kill -9 of a process running producers and a Worker (beside a bare claim/ack loop) together on the
// directory backend, 20 rounds in a row on the same directory, then a drain
// (test/fixtures/queueProducersWorker.ts). What the children print is what their callers were
// told: an "enq" line once an enqueue returned, an "acked" line once an ack returned.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { makePrng } from "../src/internal/prng.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { startChild } from "./utils/child.ts"

const rounds = Number(process.env.KILL_ROUNDS ?? 20)
const seed = process.env.KILL_SEED ?? "0"

/** What a child printed, in order, with the round it printed it in. */
interface Line {
  readonly round: number
  readonly words: ReadonlyArray<string>
}

describe("JobQueue with producers and a Worker under kill -9", () => {
  it(`${rounds} kills at random moments on one directory, then a drain: every acknowledged enqueue is done, and no job is handed out again after an ack that returned (seed ${seed})`, async () => {
    const directory = mkdtempSync(path.join(tmpdir(), "bucketq-kill-worker-"))
    try {
      const prng = makePrng(`producers-worker-kill-9-${seed}`)
      const lines: Array<Line> = []
      const keep = (round: number, printed: ReadonlyArray<string>) => {
        for (const line of printed) lines.push({ round, words: line.split(" ") })
      }
      for (let round = 0; round < rounds; round++) {
        const child = startChild("queueProducersWorker.ts", [directory, String(round), seed, "work"])
        // a random moment: after some acks, then up to 30 ms more
        await child.waitForLines((l) => l.startsWith("acked "), 5 + prng.int(0, 60))
        await new Promise((resolve) => setTimeout(resolve, prng.int(0, 30)))
        child.process.kill("SIGKILL")
        assert.strictEqual(await child.exited, "SIGKILL", child.stderr)
        keep(round, child.lines)
      }
      const drain = startChild("queueProducersWorker.ts", [directory, "drain", seed, "drain"])
      assert.strictEqual(await drain.exited, 0, drain.stderr)
      assert.include(drain.lines, "drained")
      keep(rounds, drain.lines)

      const enqueued = new Set<string>()
      const ackedIn = new Map<string, number>() // id -> round of the ack that returned
      const startedIn = new Map<string, number>() // id -> round it was last handed out in
      const violations: Array<string> = []
      let redelivered = 0 // handed out again after a kill, its earlier claim never acked: at-least-once at work
      for (const { round, words } of lines) {
        const [what, id, token, who] = words
        if (what === "enq") enqueued.add(id!)
        if (what === "start") {
          if (ackedIn.has(id!)) {
            violations.push(`${id} was handed out again (round ${round}, to the ${who}, token ${token}) after an ack that returned in round ${ackedIn.get(id!)}`)
          }
          // within one process a job is handed out once: its 30 s lease never runs out here
          if (startedIn.get(id!) === round) violations.push(`${id} was handed out twice in round ${round}`)
          if (startedIn.has(id!) && !ackedIn.has(id!)) redelivered++
          startedIn.set(id!, round)
        }
        if (what === "acked") {
          if (ackedIn.has(id!)) violations.push(`${id} was acked twice: in round ${ackedIn.get(id!)} and in round ${round}`)
          ackedIn.set(id!, round)
        }
        if (what === "damaged") violations.push(`${id} was handed a damaged payload in round ${round}`)
        if (what === "ended") violations.push(`${id} ended without a done record (${token}) in round ${round}`)
      }
      // what the store holds in the end
      const { stats, statuses } = await Effect.runPromise(Effect.gen(function*() {
        const queue = yield* JobQueue.JobQueue
        const statuses = yield* Effect.forEach([...new Set([...enqueued, ...ackedIn.keys()])], (id) =>
          Effect.map(queue.get(id), (r) => [id, Option.match(r, { onNone: () => "missing", onSome: (x) => x.status })] as const))
        return { stats: yield* queue.stats("tasks"), statuses }
      }).pipe(Effect.provide(JobQueue.layer().pipe(Layer.provide(Kv.layer()), Layer.provide(ObjectStore.layerFileSystem({ directory }))))))
      const notDone = statuses.filter(([, status]) => status !== "Done")
      assert.deepStrictEqual(violations, [], "handed out again after an ack that returned, or acked twice")
      assert.deepStrictEqual(notDone, [], "acknowledged enqueues (or acked jobs) not done after the drain")
      assert.deepStrictEqual([stats.pending, stats.scheduled, stats.claimed, stats.dead], [0, 0, 0, 0], JSON.stringify(stats))
      const byWorker = lines.filter((l) => l.words[0] === "acked" && l.words[2] === "worker").length
      const byLoop = lines.filter((l) => l.words[0] === "acked" && l.words[2] === "loop").length
      console.log(`${rounds} kills: ${enqueued.size} acknowledged enqueues, ${byWorker} acks by the Worker and ${byLoop} by the loop seen returned, ${stats.done} acks counted, ${redelivered} jobs handed out again after a kill`)
      assert.isAbove(enqueued.size, 20 * rounds)
      assert.isAbove(byWorker, 5 * rounds)
      assert.isAbove(byLoop, 0)
      assert.isAbove(redelivered, 0)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  }, 600_000)
})
