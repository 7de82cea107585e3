// A flipped byte in any object the KV needs gives Corrupt at open or when read (a run's blocks are
// read on demand, here by a full scan), never a wrong value; a flipped byte in an object it does
// not need changes nothing. The 6-byte header of a run is for whole-object decoders: a reader
// reads a run by ranges (footer, index, blocks), never its header, so a flip there is harmless.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Stream } from "effect"
import * as Manifest from "../schema/Manifest.ts"
import * as Run from "../schema/Run.ts"
import * as WalSegment from "../schema/WalSegment.ts"
import { makePrng } from "../src/internal/prng.ts"
import { runKey, walKey } from "../src/kv/paths.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { bytes, text } from "./utils/exits.ts"
import { driveOrDie, faultyMemory, openKv } from "./utils/kv.ts"

const dump = (entries: ReadonlyArray<{ key: Uint8Array; value: Uint8Array }>) =>
  entries.map((e) => `${text(e.key)}=${text(e.value)}`).join(",")

/** A new memory store holding `objects`, one of them with a byte flipped. */
const copyWithFlip = (objects: ReadonlyArray<{ key: string; bytes: Uint8Array }>, target: string, position: number) =>
  Effect.gen(function*() {
    const store = yield* Effect.provide(Effect.map(ObjectStore.ObjectStore, (s) => s), ObjectStore.layerMemory())
    for (const object of objects) {
      const content = object.bytes.slice()
      if (object.key === target) content[position] = content[position]! ^ 0x5a
      yield* store.put(object.key, content)
    }
    return store
  })

describe("Kv corruption", () => {
  it.effect("every byte position class of every needed object: Corrupt; of unneeded ones: the right state", () =>
    Effect.gen(function*() {
      const { raw, reliable } = yield* faultyMemory({ seed: 1 })
      const options = { runFlushSegments: 2, maxRuns: 5, gcMinAge: "1 hour" as const }
      const a = yield* driveOrDie(openKv(reliable, options), "open")
      // write until the latest manifest names several runs (an image and deltas)
      const latestRuns = Effect.gen(function*() {
        const manifests = (yield* Stream.runCollect(raw.list("manifest/"))).map((e) => e.key)
        return Manifest.decode((yield* raw.get(manifests.at(-1)!)).bytes).runs.length
      })
      for (let i = 0; i < 30 || (yield* latestRuns) < 3; i++) {
        yield* driveOrDie(a.kv.write([{ _tag: "Put", key: bytes(`k${i % 7}`), value: bytes(`v${i}`) }, { _tag: "Delete", key: bytes(`k${(i + 3) % 7}`) }]), "write")
        yield* driveOrDie(Effect.sleep("5 millis"), "runs")
      }
      yield* driveOrDie(a.kv.write([{ _tag: "Put", key: bytes("tail"), value: bytes("in the WAL only") }]), "tail")
      const expected = dump(yield* a.kv.scan({ prefix: new Uint8Array(0) }))
      // the crash: a is abandoned; what is stored is what a reopen needs
      const entries = yield* Stream.runCollect(raw.list(""))
      const objects = yield* Effect.forEach(entries, (e) => Effect.map(raw.get(e.key), (o) => ({ key: e.key, bytes: o.bytes })))
      const manifestObject = objects.filter((o) => o.key.startsWith("manifest/")).at(-1)!
      const manifest = Manifest.decode(manifestObject.bytes)
      assert.isAtLeast(manifest.runs.length, 2, "the test needs several runs")
      const needed = new Set([
        manifestObject.key,
        ...manifest.runs.map((r) => runKey(r.id)),
        ...objects.filter((o) => o.key.startsWith("wal/") && o.bytes.length > 0 && o.key > walKey(manifest.replayAfterWalId)).map((o) => o.key)
      ])
      assert.isAtLeast([...needed].filter((k) => k.startsWith("wal/")).length, 1, "the test needs a WAL tail")
      const prng = makePrng("flip")
      let corrupt = 0
      for (const object of objects) {
        if (object.bytes.length === 0) continue // fences carry no data
        const positions = [0, 4, 5, 6, object.bytes.length - 1, object.bytes.length - 5, ...Array.from({ length: 6 }, () => prng.int(0, object.bytes.length))]
        for (const position of positions) {
          const store = yield* copyWithFlip(objects, object.key, position)
          const exit = yield* Effect.exit(driveOrDie(Effect.flatMap(openKv(store, options), (b) => b.kv.scan({ prefix: new Uint8Array(0) })), "reopen").pipe(Effect.sandbox))
          if (object.key.startsWith("runs/") && position < Run.headerBytes) {
            assert.isTrue(Exit.isSuccess(exit), `${object.key}@${position}: the header is not read`)
            if (Exit.isSuccess(exit)) assert.strictEqual(dump(exit.value), expected)
          } else if (needed.has(object.key)) {
            assert.isTrue(Exit.isFailure(exit), `${object.key}@${position} opened`)
            if (Exit.isFailure(exit)) assert.include(String(exit.cause), "Corrupt", `${object.key}@${position}`)
            corrupt++
          } else {
            assert.isTrue(Exit.isSuccess(exit), `${object.key}@${position} is not needed but broke the open`)
            if (Exit.isSuccess(exit)) assert.strictEqual(dump(exit.value), expected)
          }
        }
      }
      assert.isAbove(corrupt, 20)
    }))

  it("the decoders refuse every single-byte change of their formats", () => {
    const segment = WalSegment.encode({ epoch: 3, walId: 9, fenceId: 4, landedThrough: 7, commits: [{ seq: 1, ops: [["a", "\x01\x02"], ["b", null]] }] })
    const run = Run.encode([["a", "\x01"], ["b", null], ["c", "\x00".repeat(5000)], ["d", "\x04"]])
    const manifest = Manifest.encode({ writerEpoch: 2, replayAfterWalId: 5, lastSeq: 7, runs: [], createdAt: 0 })
    for (const [name, encoded, decode] of [["wal", segment, WalSegment.decode], ["run", run, Run.decode], ["manifest", manifest, Manifest.decode]] as const) {
      assert.doesNotThrow(() => decode(encoded), name)
      for (let i = 0; i < encoded.length; i += Math.max(1, Math.floor(encoded.length / 400))) {
        const copy = encoded.slice()
        copy[i] = copy[i]! ^ 0x01
        assert.throws(() => decode(copy), undefined, undefined, `${name} byte ${i}`)
      }
      assert.throws(() => decode(encoded.subarray(0, encoded.length - 1)), undefined, undefined, `${name} truncated`)
    }
    assert.deepStrictEqual(Run.decode(run).map(([k, v]) => [k, v?.length ?? null]), [["a", 1], ["b", null], ["c", 5000], ["d", 1]])
  })

  it.effect("a lost acknowledged WAL segment is Corrupt at open, not mistaken for a crash gap", () =>
    Effect.gen(function*() {
      const { raw, reliable } = yield* faultyMemory({ seed: 3 })
      const a = yield* driveOrDie(openKv(reliable), "open")
      for (const key of ["a", "b", "c"]) yield* driveOrDie(a.kv.write([{ _tag: "Put", key: bytes(key), value: bytes("v") }]), key)
      yield* a.close
      // wal 1 is the fence, a b c are wal 2 3 4: wal 4 says wal 3 landed before it
      yield* raw.delete(walKey(3))
      const exit = yield* Effect.exit(openKv(reliable))
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /Corrupt[\s\S]*WAL segment 3 is missing, though segment 4 says it landed/)
    }))
})
