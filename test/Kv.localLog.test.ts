// The directory backend's local log, which holds the KV's WAL there: records, torn ends, the
// fence and seal that stop an older writer, and the KV on it (recovery, takeover, GC of parts).
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { frameRecord, parseRecords } from "../src/ObjectStore/LocalLog.ts"
import { makePrng } from "../src/internal/prng.ts"
import { tempDirectory } from "./utils/stores.ts"
import { bytes, reasonOf, text } from "./utils/exits.ts"

const concat = (...parts: ReadonlyArray<Uint8Array>) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** A directory store (a "process" of its own: its own descriptors and caches) over `directory`. */
const openStore = (directory: string) =>
  Effect.map(Layer.build(ObjectStore.layerFileSystem({ directory })), (context) => Context.get(context, ObjectStore.ObjectStore))

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

describe("local log records", () => {
  it("the log ends at the first record that does not check: a short one, a zero-filled one, a flipped byte", () => {
    const a = frameRecord(bytes("first"))
    const b = frameRecord(bytes("second"))
    const whole = concat(a, b)
    const texts = (bytes: Uint8Array) => parseRecords(bytes).records.map(text)
    assert.deepStrictEqual(texts(whole), ["first", "second"])
    assert.strictEqual(parseRecords(whole).end, whole.length)
    for (let cut = a.length; cut < whole.length; cut++) {
      assert.deepStrictEqual(texts(whole.subarray(0, cut)), ["first"], `cut at ${cut}`)
      assert.strictEqual(parseRecords(whole.subarray(0, cut)).end, a.length)
    }
    // the second record's body zero-filled (a crash after the size was updated): torn, not corrupt
    const zeroed = whole.slice()
    zeroed.fill(0, a.length + 8)
    assert.deepStrictEqual(texts(zeroed), ["first"])
    const zeroTail = concat(whole, new Uint8Array(100))
    assert.deepStrictEqual(texts(zeroTail), ["first", "second"])
    // a crash can keep a later append's pages and lose an earlier one's (several syncs overlap):
    // what follows a record that does not check was never acknowledged
    const flipped = whole.slice()
    flipped[10] = flipped[10]! ^ 1
    assert.deepStrictEqual(parseRecords(flipped), { records: [], end: 0 })
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

  it.live("an append after the takeover is refused and invisible, whatever part it goes to", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const store = yield* openStore(directory)
      const log = store.localLog!
      const appender = yield* log.appender(7)
      assert.strictEqual(yield* appender.write(bytes("acked"), false).durable, "Appended")
      const other = (yield* openStore(directory)).localLog!
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
      const log = (yield* openStore(directory)).localLog!
      const appender = yield* log.appender(3)
      const written = Array.from({ length: 20 }, (_, i) => appender.write(bytes(`r${i}`), i === 10))
      const outcomes = yield* Effect.all(written.map((w) => w.durable), { concurrency: "unbounded" })
      assert.isTrue(outcomes.every((o) => o === "Appended"))
      const other = (yield* openStore(directory)).localLog!
      const taken = yield* other.takeOver(3)
      assert.deepStrictEqual(taken.map((p) => [p.part, p.records.length]), [[1, 10], [2, 10]])
      // flip a byte inside the sealed range of part 1
      const file = path.join(directory, "%wal", "00000000000000000003", "00000000000000000001.log")
      const content = fs.readFileSync(file)
      content[content.length - 2] = content[content.length - 2]! ^ 1
      fs.writeFileSync(file, content)
      const exit = yield* Effect.exit(other.takeOver(3))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /sealed at \d+ bytes, valid records end at \d+/)
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
