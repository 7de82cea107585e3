// The ObjectStore contract, written once and run against every backend (memory, directory, S3).
import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Stream } from "effect"
import * as FaultInjection from "../../src/FaultInjection.ts"
import { ObjectStore } from "../../src/ObjectStore.ts"
import type { Backend } from "../utils/stores.ts"
import { bytes, reasonOf, text } from "../utils/exits.ts"
import { valueOf, withRegistry } from "../utils/metrics.ts"

const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex")


const keysOf = (prefix: string, options?: { startAfter?: string }) =>
  Effect.flatMap(ObjectStore, (store) => Stream.runCollect(store.list(prefix, options))).pipe(
    Effect.map((entries) => entries.map((e) => e.key))
  )

/** Puts `count` keys with bounded concurrency. */
const putMany = (keys: ReadonlyArray<string>) =>
  Effect.flatMap(ObjectStore, (store) => Effect.forEach(keys, (key) => store.put(key, bytes(key)), { concurrency: 16, discard: true }))

export const objectStoreConformance = (backend: Backend) =>
  describe(`ObjectStore conformance: ${backend.name}`, () => {
    const test = (name: string, body: () => Effect.Effect<void, unknown, ObjectStore>) =>
      it.live(name, () => Effect.provide(body(), backend.layer()))

    test("put then get and head return the bytes, ETag, size and metadata", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const etag = yield* store.put("a/b", bytes("hello"), {}, { kind: "greeting", n: "1" })
        const got = yield* store.get("a/b")
        const head = yield* store.head("a/b")
        assert.strictEqual(text(got.bytes), "hello")
        assert.deepStrictEqual([got.etag, head.etag, got.size, head.size], [etag, etag, 5, 5])
        assert.deepStrictEqual(got.metadata, { kind: "greeting", n: "1" })
        assert.deepStrictEqual(head.metadata, { kind: "greeting", n: "1" })
        assert.notInclude(etag, "\"")
      }))

    test("once a put succeeded, writing over the bytes it was given changes nothing stored", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const given = bytes("the original content of a run")
        yield* store.put("reused", given)
        given.fill(0x58)
        assert.strictEqual(text((yield* store.get("reused")).bytes), "the original content of a run")
        // and the bytes a get hands out are the caller's own too
        const got = yield* store.get("reused")
        got.bytes.fill(0x59)
        assert.strictEqual(text((yield* store.get("reused")).bytes), "the original content of a run")
      }))

    test("an object without metadata has none", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        yield* store.put("plain", bytes("x"))
        assert.deepStrictEqual((yield* store.get("plain")).metadata, {})
      }))

    test("empty objects", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        yield* store.put("empty", new Uint8Array(0))
        const got = yield* store.get("empty")
        assert.deepStrictEqual([got.bytes.length, got.size, (yield* store.head("empty")).size], [0, 0, 0])
        assert.strictEqual((yield* store.get("empty", { range: { start: 0, end: 10 } })).bytes.length, 0)
        const [entry] = yield* Stream.runCollect(store.list("empty"))
        assert.deepStrictEqual([entry?.key, entry?.size], ["empty", 0])
      }))

    test("a 16 MiB object round-trips, and a range of it reads back", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const big = new Uint8Array(16 * 1024 * 1024)
        for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff
        big[big.length - 1] = 42
        yield* store.put("big", big)
        const got = yield* store.get("big")
        assert.deepStrictEqual([got.size, sha(got.bytes)], [big.length, sha(big)])
        const part = yield* store.get("big", { range: { start: 8 * 1024 * 1024, end: 8 * 1024 * 1024 + 8193 } })
        assert.deepStrictEqual([part.size, sha(part.bytes)], [big.length, sha(big.subarray(8388608, 8388608 + 8193))])
      }))

    test("range reads: inside, open-ended, clamped, empty and past the end", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const etag = yield* store.put("r", bytes("0123456789"), {}, { m: "v" })
        const read = (start: number, end?: number) =>
          Effect.map(store.get("r", { range: end === undefined ? { start } : { start, end } }), (o) => {
            assert.deepStrictEqual([o.size, o.etag, o.metadata], [10, etag, { m: "v" }])
            return text(o.bytes)
          })
        assert.deepStrictEqual(
          [yield* read(0, 1), yield* read(2, 5), yield* read(7), yield* read(8, 100), yield* read(4, 4), yield* read(10), yield* read(50, 60)],
          ["0", "234", "789", "89", "", "", ""]
        )
        assert.strictEqual(reasonOf(yield* Effect.exit(store.get("r", { range: { start: -1 } }))), "InvalidRange")
        assert.strictEqual(reasonOf(yield* Effect.exit(store.get("r", { range: { start: 5, end: 2 } }))), "InvalidRange")
      }))

    test("get and head of a missing key are NotFound; range reads too", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        assert.strictEqual(reasonOf(yield* Effect.exit(store.get("missing"))), "NotFound")
        assert.strictEqual(reasonOf(yield* Effect.exit(store.head("missing/deeper"))), "NotFound")
        assert.strictEqual(reasonOf(yield* Effect.exit(store.get("missing", { range: { start: 1, end: 3 } }))), "NotFound")
      }))

    test("delete removes; deleting a missing key succeeds", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        yield* store.put("d/x", bytes("1"))
        yield* store.delete("d/x")
        yield* store.delete("d/x")
        yield* store.delete("never/was")
        assert.strictEqual(reasonOf(yield* Effect.exit(store.get("d/x"))), "NotFound")
        assert.deepStrictEqual(yield* keysOf("d/"), [])
      }))

    test("put-if-absent creates once; the second fails and changes nothing; after delete it creates again", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const first = yield* store.put("once", bytes("first"), { ifNoneMatch: "*" })
        const second = yield* Effect.exit(store.put("once", bytes("second"), { ifNoneMatch: "*" }))
        assert.strictEqual(reasonOf(second), "PreconditionFailed")
        const got = yield* store.get("once")
        assert.deepStrictEqual([text(got.bytes), got.etag], ["first", first])
        yield* store.delete("once")
        yield* store.put("once", bytes("third"), { ifNoneMatch: "*" })
        assert.strictEqual(text((yield* store.get("once")).bytes), "third")
      }))

    test("put-if-absent on an empty object still fails", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        yield* store.put("fence", new Uint8Array(0), { ifNoneMatch: "*" })
        assert.strictEqual(reasonOf(yield* Effect.exit(store.put("fence", bytes("x"), { ifNoneMatch: "*" }))), "PreconditionFailed")
      }))

    test("16 concurrent put-if-absent on one key: exactly one winner, whose bytes are stored", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        for (let round = 0; round < 3; round++) {
          const key = `race/${round}`
          const exits = yield* Effect.forEach(
            Array.from({ length: 16 }, (_, i) => i),
            (i) => Effect.exit(store.put(key, bytes(`writer-${i}`), { ifNoneMatch: "*" })),
            { concurrency: "unbounded" }
          )
          const winners = exits.flatMap((exit, i) => (Exit.isSuccess(exit) ? [i] : []))
          assert.strictEqual(winners.length, 1, `round ${round}: ${exits.map(reasonOf)}`)
          assert.isTrue(exits.every((exit) => Exit.isSuccess(exit) || reasonOf(exit) === "PreconditionFailed"))
          assert.strictEqual(text((yield* store.get(key)).bytes), `writer-${winners[0]}`)
        }
      }))

    test("ifMatch: current ETag replaces; stale ETag and missing key fail and change nothing", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const v1 = yield* store.put("cas", bytes("v1"))
        const v2 = yield* store.put("cas", bytes("v2"), { ifMatch: v1 })
        assert.notStrictEqual(v2, v1)
        assert.strictEqual(reasonOf(yield* Effect.exit(store.put("cas", bytes("stale"), { ifMatch: v1 }))), "PreconditionFailed")
        const got = yield* store.get("cas")
        assert.deepStrictEqual([text(got.bytes), got.etag], ["v2", v2])
        assert.strictEqual(reasonOf(yield* Effect.exit(store.put("nothing", bytes("x"), { ifMatch: v2 }))), "PreconditionFailed")
        assert.strictEqual(reasonOf(yield* Effect.exit(store.head("nothing"))), "NotFound")
      }))

    test("ifMatch after a rewrite of the same bytes still needs the new ETag", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const v1 = yield* store.put("same", bytes("same"))
        yield* store.delete("same")
        const v2 = yield* store.put("same", bytes("other"))
        assert.notStrictEqual(v1, v2)
        assert.strictEqual(reasonOf(yield* Effect.exit(store.put("same", bytes("x"), { ifMatch: v1 }))), "PreconditionFailed")
      }))

    test("16 concurrent ifMatch with one ETag: exactly one winner", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const base = yield* store.put("cas-race", bytes("base"))
        const exits = yield* Effect.forEach(
          Array.from({ length: 16 }, (_, i) => i),
          (i) => Effect.exit(store.put("cas-race", bytes(`writer-${i}`), { ifMatch: base })),
          { concurrency: "unbounded" }
        )
        const winners = exits.flatMap((exit, i) => (Exit.isSuccess(exit) ? [i] : []))
        assert.strictEqual(winners.length, 1, exits.map(reasonOf).join(","))
        assert.isTrue(exits.every((exit) => Exit.isSuccess(exit) || reasonOf(exit) === "PreconditionFailed"))
        const got = yield* store.get("cas-race")
        assert.strictEqual(text(got.bytes), `writer-${winners[0]}`)
      }))

    test("unconditional put overwrites and changes the ETag; metadata is replaced", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const a = yield* store.put("o", bytes("a"), {}, { v: "1" })
        const b = yield* store.put("o", bytes("b"), {}, { w: "2" })
        assert.notStrictEqual(a, b)
        const got = yield* store.get("o")
        assert.deepStrictEqual([text(got.bytes), got.metadata], ["b", { w: "2" }])
      }))

    test("list: over 1,000 keys in order, startAfter, and no key of a sibling prefix", () =>
      Effect.gen(function*() {
        const keys = Array.from({ length: 1050 }, (_, i) => `p/${String(i).padStart(5, "0")}`)
        const siblings = ["p", "p0/x", "p-/x", "o/x", "q/x", "pp", "p/".slice(0, 1) + "a"]
        yield* putMany([...keys, ...siblings])
        assert.deepStrictEqual(yield* keysOf("p/"), keys)
        assert.deepStrictEqual(yield* keysOf("p/", { startAfter: keys[499]! }), keys.slice(500))
        assert.deepStrictEqual(yield* keysOf("p/", { startAfter: keys[1049]! }), [])
        assert.deepStrictEqual(yield* keysOf("p/", { startAfter: "a" }), keys)
        assert.deepStrictEqual(yield* keysOf("p/", { startAfter: "z" }), [])
        assert.deepStrictEqual(yield* keysOf("p/001"), keys.slice(100, 200))
        assert.deepStrictEqual(yield* keysOf("p/0100"), keys.slice(1000, 1010))
        assert.deepStrictEqual(yield* keysOf("p0"), ["p0/x"])
        assert.deepStrictEqual(yield* keysOf("p"), ["p", "p-/x", ...keys, "p0/x", "pa", "pp"])
        const all = yield* keysOf("")
        assert.strictEqual(all.length, keys.length + siblings.length)
        assert.deepStrictEqual(all.slice(0, 2), ["o/x", "p"])
        assert.deepStrictEqual(yield* keysOf("nothing/"), [])
      }))

    test("list entries carry size and ETag", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const etag = yield* store.put("l/a", bytes("abc"))
        const entries = yield* Stream.runCollect(store.list("l/"))
        assert.deepStrictEqual(entries, [{ key: "l/a", size: 3, etag }])
      }))

    test("a key and keys below it coexist", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        yield* store.put("n/a/b", bytes("deep"))
        yield* store.put("n/a", bytes("shallow"))
        assert.deepStrictEqual([text((yield* store.get("n/a")).bytes), text((yield* store.get("n/a/b")).bytes)], ["shallow", "deep"])
        assert.deepStrictEqual(yield* keysOf("n/"), ["n/a", "n/a/b"])
      }))

    test("keys with %, spaces and non-ASCII characters round-trip and list in UTF-8 byte order", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const keys = ["u/%", "u/%25", "u/a b", "u/é", "u/\uffff", "u/😀", "u/~", "u/%tmp", "u/x%/y"]
        for (const key of keys) yield* store.put(key, bytes(key))
        for (const key of keys) assert.strictEqual(text((yield* store.get(key)).bytes), key)
        const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        assert.deepStrictEqual(yield* keysOf("u/"), expected)
      }))

    test("invalid keys and metadata fail before any I/O with typed errors", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const cases: Array<[string, string]> = [
          ["", "InvalidKey"],
          ["a//b", "InvalidKey"],
          ["/a", "InvalidKey"],
          ["a/", "InvalidKey"],
          ["../x", "InvalidKey"],
          ["a/./b", "InvalidKey"],
          ["a/..", "InvalidKey"],
          ["x".repeat(1025), "InvalidKey"],
          ["é".repeat(513), "InvalidKey"],
          ["a\u0000b", "InvalidKey"],
          ["a\nb", "InvalidKey"],
          ["a\u007fb", "InvalidKey"]
        ]
        for (const [key, expected] of cases) {
          assert.strictEqual(reasonOf(yield* Effect.exit(store.put(key, bytes("x")))), expected, JSON.stringify(key))
          assert.strictEqual(reasonOf(yield* Effect.exit(store.get(key))), expected)
          assert.strictEqual(reasonOf(yield* Effect.exit(store.head(key))), expected)
          assert.strictEqual(reasonOf(yield* Effect.exit(store.delete(key))), expected)
        }
        assert.strictEqual(reasonOf(yield* Effect.exit(Stream.runCollect(store.list("a//")))), "InvalidKey")
        assert.strictEqual(reasonOf(yield* Effect.exit(Stream.runCollect(store.list("a\n")))), "InvalidKey")
        const badMetadata = [{ Upper: "x" }, { "bucketq-token": "x" }, { ok: "é" }, { ok: "line\n" }, { big: "x".repeat(2048) }]
        for (const metadata of badMetadata) {
          assert.strictEqual(reasonOf(yield* Effect.exit(store.put("m", bytes("x"), {}, metadata))), "InvalidMetadata")
        }
        assert.strictEqual(reasonOf(yield* Effect.exit(store.head("m"))), "NotFound")
        // Valid in general; the directory backend refuses a 1,024-byte file name, and S3 a key
        // that its root prefix makes longer than 1,024 bytes.
        const expected = backend.name === "memory" ? "Success" : "InvalidKey"
        assert.strictEqual(reasonOf(yield* Effect.exit(store.put("x".repeat(1024), bytes("x")))), expected)
      }))

    test("a long key within every limit round-trips", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        const key = Array.from({ length: 9 }, (_, i) => String(i).repeat(99)).join("/")
        yield* store.put(key, bytes("long"))
        assert.strictEqual(text((yield* store.get(key)).bytes), "long")
        assert.deepStrictEqual(yield* keysOf("0"), [key])
      }))

    // The write token must survive the backend's metadata handling for this to work.
    it.live("every put response lost: conditional puts still succeed once, foreign objects still fail", () =>
      Effect.gen(function*() {
        const context = yield* Layer.build(
          FaultInjection.layer({ seed: 1, faults: { put: { lostResponseRate: 1 } }, retry: { base: "1 millis" } }).pipe(
            Layer.provide(backend.layer({ retry: false }))
          )
        )
        const store = Context.get(context, ObjectStore)
        const etag = yield* store.put("lost/a", bytes("one"), { ifNoneMatch: "*" })
        assert.strictEqual((yield* store.head("lost/a")).etag, etag)
        const next = yield* store.put("lost/a", bytes("two"), { ifMatch: etag })
        const got = yield* store.get("lost/a")
        assert.deepStrictEqual([text(got.bytes), got.etag], ["two", next])
        assert.strictEqual(reasonOf(yield* Effect.exit(store.put("lost/a", bytes("three"), { ifNoneMatch: "*" }))), "PreconditionFailed")
        assert.strictEqual(reasonOf(yield* Effect.exit(store.put("lost/a", bytes("four"), { ifMatch: etag }))), "PreconditionFailed")
        assert.strictEqual(text((yield* store.get("lost/a")).bytes), "two")
      }))

    // What a bill is computed from: every request that reaches the backend, by kind, and the bytes moved.
    it.live("counts its requests by kind and the bytes read and written, failed requests included", () =>
      Effect.gen(function*() {
        const store = yield* ObjectStore
        yield* store.put("m/a", bytes("abc"))
        yield* store.put("m/b", bytes("hello"), { ifNoneMatch: "*" })
        yield* store.get("m/a")
        yield* store.get("m/b", { range: { start: 1, end: 3 } })
        assert.strictEqual(reasonOf(yield* Effect.exit(store.get("m/missing"))), "NotFound")
        yield* store.head("m/a")
        yield* store.delete("m/b")
        assert.deepStrictEqual(yield* keysOf("m/"), ["m/a"])
        assert.deepStrictEqual(yield* keysOf("none/"), [])
        const requests = (kind: string) => valueOf("bucketq_store_requests_total", { kind })
        assert.deepStrictEqual(
          { get: yield* requests("get"), head: yield* requests("head"), put: yield* requests("put"), delete: yield* requests("delete"), list: yield* requests("list") },
          { get: 3, head: 1, put: 2, delete: 1, list: 2 }
        )
        assert.deepStrictEqual(
          [yield* valueOf("bucketq_store_bytes_total", { kind: "put", direction: "written" }), yield* valueOf("bucketq_store_bytes_total", { kind: "get", direction: "read" })],
          [8, 5]
        )
      }).pipe(Effect.provide(backend.layer()), withRegistry))
  })
