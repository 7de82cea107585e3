// What only the directory backend has: its file layout, corruption detection, and the per-key
// lock files of ifMatch puts (stale ones broken, live ones waited for).
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, type Scope, Stream } from "effect"
import * as FileObject from "../schema/FileObject.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { staleLockMillis } from "../src/ObjectStore/FileSystem.ts"
import { tempDirectory } from "./utils/stores.ts"
import { bytes, reasonOf } from "./utils/exits.ts"


/** A temp directory and a store on it. */
const withStore = <A, E>(body: (dir: string, store: ObjectStore.Service) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.gen(function*() {
    const dir = yield* tempDirectory
    const store = yield* Effect.provide(Effect.map(ObjectStore.ObjectStore, (s) => s), ObjectStore.layerFileSystem({ directory: dir }))
    return yield* body(dir, store)
  })

const lockFile = (dir: string, key: string) => path.join(dir, "%lock", createHash("sha1").update(key).digest("hex"))

/** Key "k" written once, then its lock held by a live process (a `sleep`, killed with the scope). */
const lockedByLiveProcess = (dir: string, store: ObjectStore.Service) =>
  Effect.gen(function*() {
    const etag = yield* store.put("k", bytes("1"))
    const holder = yield* Effect.acquireRelease(
      Effect.sync(() => spawn("sleep", ["30"])),
      (child) => Effect.sync(() => child.kill("SIGKILL"))
    )
    writeFileSync(lockFile(dir, "k"), `${holder.pid}.live-holder`)
    return { etag, holder }
  })

describe("directory backend: layout", () => {
  it.live("keys map to nested directories; % is escaped; the file is header then body", () =>
    withStore((dir, store) =>
      Effect.gen(function*() {
        const etag = yield* store.put("wal/00000000000000000001", bytes("batch"), {}, { k: "v" })
        yield* store.put("odd/50%", bytes("x"))
        const file = readFileSync(path.join(dir, "wal%", "00000000000000000001"))
        const parsed = FileObject.parseHead(file)
        assert.strictEqual(parsed._tag, "Parsed")
        if (parsed._tag === "Parsed") {
          assert.deepStrictEqual(parsed.header, { version: 2, etag, metadata: { k: "v", "bucketq-token": parsed.header.metadata["bucketq-token"]! }, size: 5 })
          assert.strictEqual(new TextDecoder().decode(file.subarray(parsed.bodyOffset)), "batch")
        }
        assert.isTrue(existsSync(path.join(dir, "odd%", "50%25")))
        assert.deepStrictEqual(readdirSync(path.join(dir, "%tmp")), [])
      })))

  it.live("the directory is created with its missing parents", () =>
    Effect.gen(function*() {
      const base = yield* tempDirectory
      const directory = path.join(base, "a", "b", "c")
      const store = yield* Effect.provide(Effect.map(ObjectStore.ObjectStore, (s) => s), ObjectStore.layerFileSystem({ directory }))
      yield* store.put("k", bytes("x"))
      assert.isTrue(existsSync(path.join(directory, "k")))
    }))

  it.live("files it could not have written are not listed", () =>
    withStore((dir, store) =>
      Effect.gen(function*() {
        yield* store.put("a/b", bytes("x"))
        writeFileSync(path.join(dir, "a%", "%junk"), "x") // not an encoding of any segment
        writeFileSync(path.join(dir, "%other"), "x")
        const keys = (yield* Stream.runCollect(store.list(""))).map((e) => e.key)
        assert.deepStrictEqual(keys, ["a/b"])
      })))

  it.live("a flipped byte in the header, a foreign file, a truncated file and a body cut short or grown are Corrupt", () =>
    withStore((dir, store) =>
      Effect.gen(function*() {
        yield* store.put("flip", bytes("payload"))
        const file = path.join(dir, "flip")
        const content = readFileSync(file)
        content[FileObject.prefixLength + 3] = content[FileObject.prefixLength + 3]! ^ 0x20
        writeFileSync(file, content)
        writeFileSync(path.join(dir, "foreign"), "just some text that is long enough")
        writeFileSync(path.join(dir, "short"), "BQ")
        // a body cut at every length (down to nothing: an empty body is a WAL fence), and grown
        yield* store.put("cut", bytes("batch of commits"))
        const whole = readFileSync(path.join(dir, "cut"))
        const bodyStart = whole.length - "batch of commits".length
        for (let length = bodyStart; length <= whole.length + 1; length++) {
          if (length === whole.length) continue
          writeFileSync(path.join(dir, "cut"), length <= whole.length ? whole.subarray(0, length) : Buffer.concat([whole, Buffer.from("x")]))
          for (const read of [store.get("cut"), store.head("cut"), store.get("cut", { range: { start: 0, end: 2 } })]) {
            assert.strictEqual(reasonOf(yield* Effect.exit(read)), "Corrupt", `body cut to ${length - bodyStart} bytes`)
          }
        }
        for (const key of ["flip", "foreign", "short"]) {
          assert.strictEqual(reasonOf(yield* Effect.exit(store.get(key))), "Corrupt", key)
          assert.strictEqual(reasonOf(yield* Effect.exit(store.head(key))), "Corrupt", key)
          assert.strictEqual(reasonOf(yield* Effect.exit(store.get(key, { range: { start: 0, end: 2 } }))), "Corrupt", key)
        }
      })))

  it.live("a segment too long for a file name is refused before any I/O", () =>
    withStore((dir, store) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(store.put(`a/${"%".repeat(90)}`, bytes("x"))) // 270 bytes encoded
        assert.deepStrictEqual([error._tag, (error as { reason: unknown }).reason], ["InvalidKey", "SegmentTooLong"])
        assert.isFalse(existsSync(path.join(dir, "a%")))
      })))
})

describe("directory backend: key locks", () => {
  const deadPid = () => {
    const child = spawnSync("true")
    return child.pid!
  }

  it.live("a lock left by a dead process is broken", () =>
    withStore((dir, store) =>
      Effect.gen(function*() {
        const etag = yield* store.put("k", bytes("1"))
        writeFileSync(lockFile(dir, "k"), `${deadPid()}.0123456789abcdef`)
        yield* store.put("k", bytes("2"), { ifMatch: etag })
        assert.strictEqual(new TextDecoder().decode((yield* store.get("k")).bytes), "2")
        assert.isFalse(existsSync(lockFile(dir, "k")))
      })))

  it.live("a lock with our pid but another process token (a previous life of this pid) is broken", () =>
    withStore((dir, store) =>
      Effect.gen(function*() {
        writeFileSync(lockFile(dir, "k"), `${process.pid}.not-this-process`)
        yield* store.delete("k")
        yield* store.put("k", bytes("x"))
        assert.isFalse(existsSync(lockFile(dir, "k")))
      })))

  it.live("a lock held by a live process is waited for", () =>
    withStore((dir, store) =>
      Effect.gen(function*() {
        const { etag, holder } = yield* lockedByLiveProcess(dir, store)
        const fiber = yield* Effect.forkChild(store.put("k", bytes("2"), { ifMatch: etag }))
        yield* Effect.sleep("150 millis")
        assert.isUndefined(fiber.pollUnsafe())
        assert.strictEqual(new TextDecoder().decode((yield* store.get("k")).bytes), "1")
        holder.kill("SIGKILL")
        yield* Effect.promise(() => new Promise((resolve) => holder.once("exit", resolve)))
        yield* Fiber.join(fiber) // the holder died: its lock is broken
        assert.strictEqual(new TextDecoder().decode((yield* store.get("k")).bytes), "2")
      })))

  it.live("a lock a live process holds unchanged for staleLockMillis (stopped while it held it) is broken, so the key is not blocked for good", () =>
    withStore((dir, store) =>
      Effect.gen(function*() {
        const { etag, holder } = yield* lockedByLiveProcess(dir, store)
        const started = performance.now()
        yield* store.put("k", bytes("2"), { ifMatch: etag })
        const waited = performance.now() - started
        assert.isAtLeast(waited, staleLockMillis - 50, "a live holder's lock is waited for first")
        assert.isBelow(waited, staleLockMillis + 2000)
        assert.isNull(holder.exitCode, "the holder is still alive")
        assert.strictEqual(new TextDecoder().decode((yield* store.get("k")).bytes), "2")
        assert.isFalse(existsSync(lockFile(dir, "k")))
      })), 15_000)
})
