// kill -9 of a process enqueuing and working jobs on the directory backend, again and again, then
// a drain: no acknowledged enqueue is lost, and no job completes twice.
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

describe("JobQueue under kill -9", () => {
  it("5 kills mid-workload, then a drain: every acknowledged enqueue is done exactly once", async () => {
    const directory = mkdtempSync(path.join(tmpdir(), "bucketq-queue-crash-"))
    try {
      const prng = makePrng("queue-kill-9")
      const enqueued = new Set<string>()
      const acked = new Map<string, number>()
      const record = (lines: ReadonlyArray<string>, round: number) => {
        const started = new Set<string>()
        for (const line of lines) {
          const [what, id] = line.split(" ")
          if (what === "enq") enqueued.add(id!)
          if (what === "ack") acked.set(id!, (acked.get(id!) ?? 0) + 1)
          if (what === "start") {
            // within one process, a job starts once (its 30 s lease never expires here)
            assert.isFalse(started.has(id!), `round ${round}: ${id} started twice`)
            started.add(id!)
          }
        }
      }
      for (let round = 0; round < 5; round++) {
        const child = startChild("queueWorker.ts", [directory, String(round), "work"])
        await child.waitForLines((l) => l.startsWith("ack "), 30 + prng.int(0, 150))
        await new Promise((resolve) => setTimeout(resolve, prng.int(0, 25)))
        child.process.kill("SIGKILL")
        assert.strictEqual(await child.exited, "SIGKILL", child.stderr)
        record(child.lines, round)
      }
      const drain = startChild("queueWorker.ts", [directory, "drain", "drain"])
      assert.strictEqual(await drain.exited, 0, drain.stderr)
      assert.include(drain.lines, "drained")
      record(drain.lines, 5)
      // an "ack" line can be lost in a kill after the ack was durable: ask the store
      const statuses = await Effect.runPromise(Effect.gen(function*() {
        const queue = yield* JobQueue.JobQueue
        return yield* Effect.forEach([...enqueued], (id) =>
          Effect.map(queue.get(id), (r) => [id, Option.match(r, { onNone: () => "gone", onSome: (x) => x.status })] as const))
      }).pipe(Effect.provide(JobQueue.layer().pipe(Layer.provide(Kv.layer()), Layer.provide(ObjectStore.layerFileSystem({ directory }))))))
      const lost = statuses.filter(([, status]) => status !== "Done")
      const twice = [...acked].filter(([, n]) => n > 1).map(([id]) => id)
      assert.deepStrictEqual(lost, [], "acknowledged enqueues not done")
      assert.deepStrictEqual(twice, [], "jobs acknowledged twice")
      assert.isAbove(enqueued.size, 100)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  }, 180_000)
})
