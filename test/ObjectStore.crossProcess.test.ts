// The directory backend across OS processes: put-if-absent races, ifMatch counters, and kill -9
// in the middle of writes.
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as ObjectStore from "../src/ObjectStore.ts"
import { makePrng } from "../src/internal/prng.ts"
import { startChild } from "./utils/child.ts"
import { isCompletePayload } from "./utils/payload.ts"

const withDirectory = async <A>(use: (dir: string) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(path.join(tmpdir(), "bucketq-xproc-"))
  try {
    return await use(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const inStore = <A, E>(directory: string, effect: Effect.Effect<A, E, ObjectStore.ObjectStore>) =>
  Effect.runPromise(Effect.provide(effect, ObjectStore.layerFileSystem({ directory })))

const isOutcome = (line: string) => line === "won" || line === "lost" || line.startsWith("error")

describe("directory backend across processes", () => {
  it("6 processes racing put-if-absent on one key: exactly one winner, 5 rounds", () =>
    withDirectory(async (dir) => {
      const keys = Array.from({ length: 5 }, (_, round) => `race/${round}`)
      const children = Array.from({ length: 6 }, (_, i) => startChild("storeWorker.ts", ["race", dir, keys.join(","), `p${i}`]))
      for (const [round, key] of keys.entries()) {
        await Promise.all(children.map((c) => c.waitForLines((l) => l === "ready", round + 1)))
        for (const c of children) c.process.stdin.write("go\n")
        await Promise.all(children.map((c) => c.waitForLines(isOutcome, round + 1)))
        const results = children.map((c) => c.lines.filter(isOutcome)[round]!)
        const winners = results.flatMap((r, i) => (r === "won" ? [i] : []))
        assert.strictEqual(winners.length, 1, `round ${round}: ${results.join(", ")}`)
        assert.isTrue(results.every((r) => r === "won" || r === "lost"), results.join(", "))
        const stored = await inStore(dir, Effect.flatMap(ObjectStore.ObjectStore, (s) => s.get(key)))
        assert.strictEqual(new TextDecoder().decode(stored.bytes), `p${winners[0]}`)
      }
      assert.deepStrictEqual(await Promise.all(children.map((c) => c.exited)), [0, 0, 0, 0, 0, 0])
    }), 60_000)

  it("2 processes and this one incrementing one counter with ifMatch lose no update", () =>
    withDirectory(async (dir) => {
      await inStore(dir, Effect.flatMap(ObjectStore.ObjectStore, (s) => s.put("counter", new TextEncoder().encode("0"))))
      const children = [0, 1].map(() => startChild("storeWorker.ts", ["count", dir, "counter", "150"]))
      const codes = await Promise.all(children.map((c) => c.exited))
      assert.deepStrictEqual(codes, [0, 0], children.map((c) => c.stderr).join("\n"))
      const value = await inStore(dir, Effect.flatMap(ObjectStore.ObjectStore, (s) => s.get("counter")))
      assert.strictEqual(new TextDecoder().decode(value.bytes), "300")
      // the lock files are gone once every writer is done
      assert.deepStrictEqual(readdirSync(path.join(dir, "%lock")), [])
    }), 60_000)

  it("kill -9 mid-write, 8 times: every acknowledged write is there, whole; no partial object; no temp file listed", () =>
    withDirectory(async (dir) => {
      const prng = makePrng("kill-9")
      let acknowledged = -1
      for (let round = 0; round < 8; round++) {
        const child = startChild("storeWorker.ts", ["crash", dir])
        const target = acknowledged + 3 + prng.int(0, 40)
        await child.waitForLine((l) => l.startsWith("ack ") && Number(l.slice(4)) >= target)
        await new Promise((resolve) => setTimeout(resolve, prng.int(0, 15)))
        child.process.kill("SIGKILL")
        assert.strictEqual(await child.exited, "SIGKILL")
        const acks = child.lines.filter((l) => l.startsWith("ack ")).map((l) => Number(l.slice(4)))
        acknowledged = Math.max(acknowledged, ...acks)

        const check = await inStore(dir, Effect.gen(function*() {
          const store = yield* ObjectStore.ObjectStore
          const keys = (yield* Stream.runCollect(store.list(""))).map((e) => e.key)
          const obj = yield* store.get("obj")
          const seqs = keys.filter((k) => k.startsWith("seq/"))
          const incomplete: Array<string> = []
          for (const key of seqs) if (!isCompletePayload((yield* store.get(key)).bytes)) incomplete.push(key)
          return { keys, obj, seqs, incomplete }
        }))
        assert.isTrue(check.keys.every((k) => k === "obj" || k.startsWith("seq/")), check.keys.slice(0, 5).join(","))
        assert.isTrue(isCompletePayload(check.obj.bytes), `round ${round}: obj is partial`)
        assert.isAtLeast(Number(check.obj.metadata.n), acknowledged)
        assert.deepStrictEqual(check.incomplete, [])
        // seq/0 .. seq/acknowledged all present (one more may have landed unacknowledged)
        assert.isAtLeast(check.seqs.length, acknowledged + 1)
        assert.isAtMost(check.seqs.length, acknowledged + 2)
        assert.strictEqual(check.seqs[acknowledged], `seq/${String(acknowledged).padStart(8, "0")}`)
        // opening the store removed the dead writer's temp files
        const leftovers = readdirSync(path.join(dir, "%tmp")).filter((f) => f.startsWith(`${child.process.pid}.`))
        assert.deepStrictEqual(leftovers, [])
      }
    }), 120_000)
})
