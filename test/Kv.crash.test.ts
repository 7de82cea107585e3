// kill -9 of a child process committing under load on the directory backend, again and again:
// after every restart, every acknowledged commit is there.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as Kv from "../src/Kv.ts"
import { makePrng } from "../src/internal/prng.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { startChild } from "./utils/child.ts"

const encode = (text: string) => new TextEncoder().encode(text)

/** Opens the KV in this process and reads what the acknowledgements promise. */
const check = (directory: string, acked: ReadonlyMap<number, number>) =>
  Effect.gen(function*() {
    const kv = yield* Kv.Kv
    const problems: Array<string> = []
    for (const [w, n] of acked) {
      const counter = Option.map(yield* kv.get(encode(`counter/${w}`)), (v) => Number(new TextDecoder().decode(v)))
      if (Option.isNone(counter) || counter.value < n) problems.push(`counter/${w} is ${Option.getOrUndefined(counter)}, acked ${n}`)
      const log = yield* kv.scan({ prefix: encode(`log/${w}/`) })
      if (log.length < n) problems.push(`log/${w} has ${log.length} entries, acked ${n}`)
    }
    return problems
  }).pipe(Effect.provide(Kv.layer().pipe(Layer.provide(ObjectStore.layerFileSystem({ directory })))))

describe("Kv under kill -9", () => {
  it("6 kills at random moments under load: every acknowledged commit survives each restart", async () => {
    const directory = mkdtempSync(path.join(tmpdir(), "bucketq-kv-crash-"))
    try {
      const prng = makePrng("kv-kill-9")
      const acked = new Map<number, number>()
      for (let round = 0; round < 6; round++) {
        const child = startChild("kvWorker.ts", [directory])
        const before = child.lines.length
        await child.waitForLines((l) => l.startsWith("ack "), before + 50 + prng.int(0, 400))
        await new Promise((resolve) => setTimeout(resolve, prng.int(0, 20)))
        child.process.kill("SIGKILL")
        assert.strictEqual(await child.exited, "SIGKILL", child.stderr)
        for (const line of child.lines) {
          const [, w, n] = line.split(" ")
          if (line.startsWith("ack ")) acked.set(Number(w), Math.max(acked.get(Number(w)) ?? 0, Number(n)))
        }
        const problems = await Effect.runPromise(check(directory, acked))
        assert.deepStrictEqual(problems, [], `round ${round}`)
      }
      assert.isAbove([...acked.values()].reduce((a, b) => a + b, 0), 300)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  }, 120_000)
})
