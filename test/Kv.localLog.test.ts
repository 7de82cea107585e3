// The directory backend's local log, which holds the KV's WAL there: records, torn ends, the
// fence and seal that stop an older writer, and the KV on it (recovery, takeover, GC of parts).
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as LogPart from "../schema/LogPart.ts"
import { LogCorrupt, parsePart, resolveUnsealed } from "../src/ObjectStore/localLog/read.ts"
import { makePrng } from "../src/internal/prng.ts"
import { tempDirectory } from "./utils/stores.ts"
import { bytes, reasonOf, text } from "./utils/exits.ts"

/** The local log of a directory store (a "process" of its own: its own descriptors and caches) over `directory`. */
const openLog = (directory: string) =>
  Effect.map(Layer.build(ObjectStore.layerFileSystem({ directory })), (context) => Context.get(context, ObjectStore.LocalLog))

/** A KV writer over `directory` in a scope of its own; `close` flushes and closes it. */
const openKv = (directory: string, options?: Kv.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Kv.layer(options).pipe(Layer.provide(ObjectStore.layerFileSystem({ directory }))),
      scope
    )
    return { kv: Context.get(context, Kv.Kv), close: Scope.close(scope, Exit.void) }
  })

const put = (key: string, value: string): Kv.WriteOp => ({ _tag: "Put", key: bytes(key), value: bytes(value) })
const dump = (kv: Kv.Service) =>
  Effect.map(kv.scan({ prefix: new Uint8Array(0) }), (entries) => entries.map((e) => `${text(e.key)}=${text(e.value)}`))
const walk = (dir: string): Array<string> =>
  fs.existsSync(dir)
    ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)).map((f) => `${e.name}/${f}`) : [e.name]
    )
    : []

/** A part of `size` bytes holding `bodies` as data frames, each claiming the ones before it. */
const buildPart = (bodies: ReadonlyArray<string>, size = 4096) => {
  const out = new Uint8Array(size)
  out.set(LogPart.encodePartHeader({ epoch: 1, part: 1, size }))
  let at = LogPart.partHeaderBytes
  const ends: Array<number> = []
  for (const body of bodies) {
    const frame = LogPart.encodeFrame(LogPart.FrameKind.Data, at, { part: 1, offset: ends[ends.length - 1] ?? at }, bytes(body))
    out.set(frame, at)
    at += frame.length
    ends.push(at)
  }
  return { bytes: out, ends }
}
const recordsOf = (bytes: Uint8Array) => {
  const parsed = parsePart("p", bytes, { epoch: 1, part: 1 })
  if (parsed instanceof LogCorrupt) return parsed
  const taken = resolveUnsealed([parsed])
  return taken instanceof LogCorrupt ? taken : taken[0]!.records.map(text)
}

describe("local log frames", () => {
  it("a torn last frame ends the log: cut short, zero-filled or with a flipped byte, nothing claims it", () => {
    const { bytes: part, ends } = buildPart(["first", "second"])
    assert.deepStrictEqual(recordsOf(part), ["first", "second"])
    const zeroed = part.slice()
    zeroed.fill(0, ends[0]! + 8, ends[1]!)
    assert.deepStrictEqual(recordsOf(zeroed), ["first"])
    for (let at = ends[0]!; at < ends[1]!; at++) {
      const flipped = part.slice()
      flipped[at] = flipped[at]! ^ 0x10
      assert.deepStrictEqual(recordsOf(flipped), ["first"], `flip at ${at}`)
    }
  })

  it("a frame that does not check before a frame saying it was durable is damage, named by file and byte", () => {
    const { bytes: part, ends } = buildPart(["first", "second", "third"])
    for (let at = LogPart.partHeaderBytes; at < ends[1]!; at++) {
      const flipped = part.slice()
      flipped[at] = flipped[at]! ^ 0x01
      const result = recordsOf(flipped)
      assert.instanceOf(result, LogCorrupt, `flip at ${at}`)
      assert.match((result as LogCorrupt).message, /^p at byte \d+: frames do not check from here, though a later frame says/)
    }
  })

  it("a part whose size is not its header's, or whose header does not check, is damage", () => {
    const { bytes: part } = buildPart(["first"])
    assert.instanceOf(recordsOf(part.subarray(0, part.length - 1)), LogCorrupt)
    assert.instanceOf(recordsOf(new Uint8Array([...part, 0])), LogCorrupt)
    for (let at = 0; at < LogPart.partHeaderBytes; at++) {
      const flipped = part.slice()
      flipped[at] = flipped[at]! ^ 0x01
      assert.instanceOf(recordsOf(flipped), LogCorrupt, `flip at ${at}`)
    }
  })

  it("a seal decodes only when its checksum checks", () => {
    const seal = new Map([[1, 100], [2, 60]])
    const encoded = LogPart.encodeSeal(seal)
    assert.deepStrictEqual(LogPart.decodeSeal(encoded), seal)
    for (let at = 0; at < encoded.length; at++) {
      const flipped = encoded.slice()
      flipped[at] = flipped[at]! ^ 0x01
      assert.isString(LogPart.decodeSeal(flipped), `flip at ${at}`)
    }
    for (let cut = 0; cut < encoded.length; cut++) assert.isString(LogPart.decodeSeal(encoded.subarray(0, cut)), `cut at ${cut}`)
  })
})

describe("Kv on the local log", () => {
  it.live("commits go to the writer's log, not to WAL objects; a reopen recovers them and seals the old log", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const a = yield* openKv(directory)
      for (let i = 0; i < 20; i++) yield* a.kv.write([put(`k${i}`, `${i}`)])
      yield* a.close
      assert.deepStrictEqual(walk(path.join(directory, "wal%")).length, 1, "only the fence of the open")
      assert.deepStrictEqual(walk(path.join(directory, "%wal")), ["00000000000000000001/00000000000000000001.log"])
      const b = yield* openKv(directory)
      assert.strictEqual((yield* dump(b.kv)).length, 20)
      yield* b.kv.write([put("after", "b")])
      yield* b.close
      assert.includeMembers(walk(path.join(directory, "%wal")), ["00000000000000000001/fence", "00000000000000000001/seal"])
      const c = yield* openKv(directory)
      assert.strictEqual((yield* dump(c.kv)).length, 21)
      yield* c.close
    }).pipe(Effect.scoped))

  it.live("a writer taken over mid-stream: it is Fenced, and the new one has exactly what it acknowledged", () =>
    Effect.gen(function*() {
      const prng = makePrng("local-log-takeover")
      const directory = yield* tempDirectory
      for (let round = 0; round < 8; round++) {
        const a = yield* openKv(directory)
        const acked: Array<string> = []
        const writer = yield* Effect.forkChild(Effect.gen(function*() {
          for (let i = 0; i < 10_000; i++) {
            const key = `r${round}/${String(i).padStart(5, "0")}`
            const exit = yield* Effect.exit(a.kv.write([put(key, "v")]))
            if (Exit.isFailure(exit)) return reasonOf(exit)
            acked.push(key)
          }
          return "NotFenced"
        }))
        yield* Effect.sleep(`${1 + prng.int(0, 15)} millis`)
        const b = yield* openKv(directory)
        const outcome = yield* Fiber.join(writer)
        assert.strictEqual(outcome, "Fenced", `round ${round}`)
        const seen = (yield* b.kv.scan({ prefix: bytes(`r${round}/`) })).map((e) => text(e.key))
        // every acknowledged commit is there; at most the one in flight at the takeover is extra
        assert.deepStrictEqual(seen.slice(0, acked.length), acked, `round ${round}`)
        assert.isAtMost(seen.length - acked.length, 1, `round ${round}`)
        yield* b.close
        yield* Effect.ignore(a.close)
      }
    }).pipe(Effect.scoped), 60_000)

  it.live("an idle log gets one confirm frame claiming its last appends, and no more until it is written to again", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const appender = yield* (yield* openLog(directory)).appender(5)
      const framesOf = () => {
        const part = fs.readFileSync(path.join(directory, "%wal", "00000000000000000005", "00000000000000000001.log"))
        const frames: Array<LogPart.Frame> = []
        for (let f = LogPart.readFrame(part, LogPart.partHeaderBytes); f !== undefined; f = LogPart.readFrame(part, f.end)) frames.push(f)
        return frames
      }
      const kinds = () => framesOf().map((f) => f.kind === LogPart.FrameKind.Data ? "data" : f.kind === LogPart.FrameKind.Confirm ? "confirm" : "other")
      yield* Effect.all([1, 2, 3].map((i) => appender.write(bytes(`r${i}`), false).durable), { concurrency: "unbounded" })
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(kinds(), ["data", "data", "data", "confirm"])
      const confirm = framesOf()[3]!
      assert.deepStrictEqual(confirm.durable, { part: 1, offset: framesOf()[2]!.end }, "it claims every append")
      yield* appender.write(bytes("r4"), false).durable
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(kinds(), ["data", "data", "data", "confirm", "data", "confirm"])
    }).pipe(Effect.scoped))

  it.live("an append after the takeover is refused and invisible, whatever part it goes to", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const log = yield* openLog(directory)
      const appender = yield* log.appender(7)
      assert.strictEqual(yield* appender.write(bytes("acked"), false).durable, "Appended")
      const other = yield* openLog(directory)
      const taken = yield* other.takeOver(7)
      assert.deepStrictEqual(taken.map((p) => p.records.map(text)), [["acked"]])
      assert.strictEqual(yield* appender.write(bytes("late"), false).durable, "Fenced")
      assert.strictEqual(yield* appender.write(bytes("later"), true).durable, "Fenced")
      assert.strictEqual(appender.currentPart(), 2)
      const again = yield* other.takeOver(7)
      assert.deepStrictEqual(again.map((p) => p.records.map(text)), [["acked"]])
    }).pipe(Effect.scoped))

  it.live("overlapping syncs: each write is durable with those before it; a sealed log that does not check is Corrupt", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const log = yield* openLog(directory)
      const appender = yield* log.appender(3)
      const written = Array.from({ length: 20 }, (_, i) => appender.write(bytes(`r${i}`), i === 10))
      const outcomes = yield* Effect.all(written.map((w) => w.durable), { concurrency: "unbounded" })
      assert.isTrue(outcomes.every((o) => o === "Appended"))
      const other = yield* openLog(directory)
      const taken = yield* other.takeOver(3)
      assert.deepStrictEqual(taken.map((p) => [p.part, p.records.length]), [[1, 10], [2, 10]])
      // flip a byte inside the sealed range of part 1
      const file = path.join(directory, "%wal", "00000000000000000003", "00000000000000000001.log")
      const content = fs.readFileSync(file)
      const inside = LogPart.partHeaderBytes + LogPart.headBytes + 1 // the first record's body
      content[inside] = content[inside]! ^ 1
      fs.writeFileSync(file, content)
      const exit = yield* Effect.exit(other.takeOver(3))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /sealed at \d+ bytes, valid frames end at \d+/)
    }).pipe(Effect.scoped))

  it.live("parts whose commits are all in runs are deleted; fences and seals stay", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const options: Kv.Options = { runFlushSegments: 2, gcMinAge: 0, keepManifests: 1, maxRuns: 2 }
      for (let open = 0; open < 3; open++) {
        const kv = yield* openKv(directory, options)
        for (let i = 0; i < 12; i++) yield* kv.kv.write([put(`k${i % 5}`, `${open}.${i}`)])
        // let the maintainer write the runs and collect
        let logs = walk(path.join(directory, "%wal")).filter((f) => f.endsWith(".log"))
        for (let wait = 0; wait < 200 && logs.length > 2; wait++) {
          yield* Effect.sleep("10 millis")
          logs = walk(path.join(directory, "%wal")).filter((f) => f.endsWith(".log"))
        }
        assert.isAtMost(logs.length, 2, `open ${open}: ${logs}`)
        yield* kv.close
      }
      const files = walk(path.join(directory, "%wal"))
      assert.includeMembers(files, ["00000000000000000001/fence", "00000000000000000002/fence"])
      const last = yield* openKv(directory)
      assert.deepStrictEqual(yield* dump(last.kv), ["k0=2.10", "k1=2.11", "k2=2.7", "k3=2.8", "k4=2.9"])
      yield* last.close
    }).pipe(Effect.scoped), 30_000)

  it.live("with useLocalLog false the directory backend writes WAL objects, and a later log writer recovers them", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const a = yield* openKv(directory, { useLocalLog: false })
      for (let i = 0; i < 5; i++) yield* a.kv.write([put(`o${i}`, "v")])
      yield* a.close
      assert.strictEqual(walk(path.join(directory, "wal%")).length, 6)
      assert.isFalse(fs.existsSync(path.join(directory, "%wal", "00000000000000000001")))
      const b = yield* openKv(directory)
      yield* b.kv.write([put("l", "v")])
      yield* b.close
      const c = yield* openKv(directory, { useLocalLog: false })
      assert.deepStrictEqual(yield* dump(c.kv), ["l=v", "o0=v", "o1=v", "o2=v", "o3=v", "o4=v"])
      yield* c.close
    }).pipe(Effect.scoped))
})
