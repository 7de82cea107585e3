// Damage to the directory backend's local log: a byte flipped at every position class of every
// frame of every part, of the part headers and of the seal, and every part cut at every frame
// boundary and inside frames. Whatever the damage, reopening yields exactly the acknowledged
// history or fails with Corrupt naming the file: never fewer acknowledged commits.
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer, Scope } from "effect"
import * as LogPart from "../schema/LogPart.ts"
import * as Kv from "../src/Kv.ts"
import type { Corrupt } from "../src/KvError.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { bytes, text } from "./utils/exits.ts"
import { tempDirectory } from "./utils/stores.ts"

const logPartBytes = 1024
// no runs: every acknowledged commit lives in the log alone
const kvOptions: Kv.Options = { runFlushSegments: 1_000_000, memtableBytes: 1 << 30 }

/** A KV writer over `directory` in a scope of its own, left open (as a crashed process leaves it). */
const openKv = (directory: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Kv.layer(kvOptions).pipe(Layer.provide(ObjectStore.layerFileSystem({ directory, logPartBytes }))),
      scope
    )
    return { kv: Context.get(context, Kv.Kv), scope }
  })

const dump = (kv: Kv.Service) =>
  Effect.map(kv.scan({ prefix: new Uint8Array(0) }), (entries) => entries.map((e) => `${text(e.key)}=${text(e.value)}`))

const copyOf = (from: string) =>
  Effect.map(tempDirectory, (to) => {
    fs.cpSync(from, to, { recursive: true })
    return to
  })

/** The epoch directories' files: parts (ascending) and the seal if any. */
const logFiles = (directory: string) =>
  fs.readdirSync(path.join(directory, "%wal")).sort().flatMap((epoch) =>
    fs.readdirSync(path.join(directory, "%wal", epoch)).sort().filter((f) => f.endsWith(".log") || f === "seal")
      .map((f) => path.join("%wal", epoch, f))
  )

/** The offsets where the frames of a part begin, and where the last ends. */
const frameStarts = (part: Uint8Array): Array<number> => {
  const starts = [0]
  for (let frame = LogPart.readFrame(part, 0); frame !== undefined; frame = LogPart.readFrame(part, frame.end)) starts.push(frame.end)
  return starts
}

/** Positions worth flipping in a frame starting at `at` and ending at `end`: each field of the head, the body's ends and middle. */
const positionClasses = (at: number, end: number): Array<number> => {
  const head = [0, 3, 4, 5, 6, 8, 11, 12, 19, 20, 23, 24, 31, 32, 35, 36, 39].map((o) => at + o)
  const body = end > at + LogPart.headBytes ? [at + LogPart.headBytes, Math.floor((at + LogPart.headBytes + end) / 2), end - 1] : []
  return [...head, ...body].filter((p) => p < end)
}

interface Damage {
  readonly name: string
  readonly apply: (content: Buffer) => Buffer
}

const damagesOf = (file: string, content: Uint8Array): Array<Damage> => {
  const flip = (at: number): Damage => ({
    name: `${file}: flip byte ${at}`,
    apply: (c) => {
      const out = Buffer.from(c)
      out[at] = out[at]! ^ 0x04
      return out
    }
  })
  const cut = (length: number): Damage => ({ name: `${file}: cut at ${length}`, apply: (c) => c.subarray(0, length) })
  if (file.endsWith("seal")) {
    return [...Array.from({ length: content.length }, (_, i) => flip(i)), ...Array.from({ length: content.length }, (_, i) => cut(i))]
  }
  const starts = frameStarts(content)
  const damages: Array<Damage> = []
  for (let i = 0; i + 1 < starts.length; i++) {
    for (const at of positionClasses(starts[i]!, starts[i + 1]!)) damages.push(flip(at))
    damages.push(cut(starts[i]!), cut(starts[i]! + 5), cut(Math.floor((starts[i]! + starts[i + 1]!) / 2)))
  }
  const end = starts[starts.length - 1]!
  damages.push(cut(end), flip(end), flip(end + 100), cut(content.length - 1), { name: `${file}: one byte longer`, apply: (c) => Buffer.concat([c, Buffer.from([0])]) })
  return damages
}

/**
 * Opens a copy of `image` with each damage applied to each log file: Corrupt naming the damaged
 * file's epoch, or exactly `expected`. Returns how many were Corrupt and how many opened.
 */
const sweep = (image: string, expected: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const outcomes = { corrupt: 0, exact: 0 }
    for (const file of logFiles(image)) {
      const content = fs.readFileSync(path.join(image, file))
      for (const damage of damagesOf(file, content)) {
        const copy = yield* copyOf(image)
        fs.writeFileSync(path.join(copy, file), damage.apply(content))
        const exit = yield* Effect.exit(Effect.flatMap(openKv(copy), ({ kv, scope }) => Effect.ensuring(dump(kv), Scope.close(scope, Exit.void))))
        if (Exit.isSuccess(exit)) {
          assert.deepStrictEqual(exit.value, expected, `${damage.name}: opened with a different history`)
          outcomes.exact++
        } else {
          const error = Cause.squash(exit.cause)
          assert.strictEqual((error as { _tag?: string })._tag, "Corrupt", `${damage.name}: ${String(error)}`)
          assert.include((error as Corrupt).key, path.dirname(file), damage.name)
          outcomes.corrupt++
        }
        fs.rmSync(copy, { recursive: true, force: true })
      }
    }
    return outcomes
  })

/** Writes `count` commits, each acknowledged, and waits for the log to confirm the last ones. */
const writeAcknowledged = (kv: Kv.Service, count: number, tag: string) =>
  Effect.gen(function*() {
    const acked: Array<string> = []
    for (let i = 0; i < count; i++) {
      const key = `${tag}${String(i).padStart(3, "0")}`
      const value = `${key}:${"v".repeat(60)}`
      yield* kv.write([{ _tag: "Put", key: bytes(key), value: bytes(value) }])
      acked.push(`${key}=${value}`)
    }
    yield* Effect.sleep("200 millis") // past the idle delay: the confirm frame is durable
    return acked
  })

/**
 * A writer that acknowledged `count` commits, then "crashed": `image` is a copy of its directory
 * as it is on disk now (the writer never closed); `writer` is closed at the end of the test.
 */
const crashedWriter = (count: number) =>
  Effect.gen(function*() {
    const directory = yield* tempDirectory
    const writer = yield* openKv(directory)
    const acked = yield* writeAcknowledged(writer.kv, count, "a")
    yield* Effect.addFinalizer(() => Scope.close(writer.scope, Exit.void))
    return { acked, image: yield* copyOf(directory) }
  })

describe("Kv on a damaged local log", () => {
  it.live("a writer that crashed: every damage to its parts is Corrupt or leaves exactly what was acknowledged", () =>
    Effect.gen(function*() {
      const { acked, image } = yield* crashedWriter(24)
      assert.isAtLeast(logFiles(image).length, 3, "the log rotated into several parts")
      const outcomes = yield* sweep(image, acked)
      assert.isAbove(outcomes.corrupt, 100, "damage inside acknowledged history is found")
      assert.isAbove(outcomes.exact, 10, "damage past it (the torn tail's place) opens")
    }).pipe(Effect.scoped), 120_000)

  it.live("a part deleted from a crashed writer's log, first, middle or last, is Corrupt", () =>
    Effect.gen(function*() {
      const { image } = yield* crashedWriter(24)
      const parts = logFiles(image).filter((f) => f.endsWith(".log"))
      assert.isAtLeast(parts.length, 3)
      for (const part of parts) {
        const copy = yield* copyOf(image)
        fs.rmSync(path.join(copy, part))
        const exit = yield* Effect.exit(Effect.flatMap(openKv(copy), ({ scope }) => Scope.close(scope, Exit.void)))
        assert.isTrue(Exit.isFailure(exit), `${part} deleted, and the log opened`)
        assert.include(String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : ""), "Corrupt", part)
        fs.rmSync(copy, { recursive: true, force: true })
      }
    }).pipe(Effect.scoped), 60_000)

  it.live("a sealed log: every damage to the seal or the sealed parts is Corrupt or leaves exactly what was acknowledged", () =>
    Effect.gen(function*() {
      const { acked, image: first } = yield* crashedWriter(12)
      const b = yield* openKv(first) // takes the log over and seals it; its own log stays empty
      const image = yield* copyOf(first)
      assert.isTrue(logFiles(image).some((f) => f.endsWith("seal")))
      const outcomes = yield* sweep(image, acked)
      assert.isAbove(outcomes.corrupt, 50)
      yield* Scope.close(b.scope, Exit.void)
    }).pipe(Effect.scoped), 120_000)

  it.live("a writer that crashed with appends in flight: the torn tail is dropped, and what it acknowledged is all there", () =>
    Effect.gen(function*() {
      // the last part's frames after the confirm frame were never acknowledged: any damage there opens
      const { acked, image } = yield* crashedWriter(6)
      const lastPart = logFiles(image).filter((f) => f.endsWith(".log")).pop()!
      const content = fs.readFileSync(path.join(image, lastPart))
      const end = frameStarts(content).pop()!
      // an append that was written but never synced: a frame claiming less than the confirm before it
      const torn = LogPart.encodeFrame(LogPart.FrameKind.Data, end, { part: 1, offset: LogPart.partHeaderBytes }, bytes("never acknowledged"))
      for (let keep = 0; keep < torn.length; keep += 7) {
        const copy = yield* copyOf(image)
        const damaged = Buffer.from(content)
        damaged.set(torn.subarray(0, keep), end)
        fs.writeFileSync(path.join(copy, lastPart), damaged)
        const { kv, scope } = yield* openKv(copy)
        assert.deepStrictEqual(yield* dump(kv), acked, `kept ${keep} bytes of the torn frame`)
        yield* Scope.close(scope, Exit.void)
      }
    }).pipe(Effect.scoped), 60_000)
})
