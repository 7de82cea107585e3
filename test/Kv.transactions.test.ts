// Transactions: read-your-writes, repeatable reads, snapshot isolation write-write conflicts,
// serializable read-write and range conflicts (no write skew), retries, limits.
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option } from "effect"
import * as Kv from "../src/Kv.ts"
import { bytes, reasonOf, text } from "./utils/exits.ts"
import { driveOrDie, faultyMemory, openKv } from "./utils/kv.ts"

const fresh = Effect.gen(function*() {
  const { reliable } = yield* faultyMemory({ seed: 0 })
  return (yield* openKv(reliable)).kv
})

const put = (key: string, value: string): Kv.WriteOp => ({ _tag: "Put", key: bytes(key), value: bytes(value) })
const getText = (kv: Kv.Service | Kv.Transaction, key: string) =>
  Effect.map(kv.get(bytes(key)), Option.map(text))
const int = (o: Option.Option<Uint8Array>) => Number(Option.match(o, { onNone: () => "0", onSome: text }))

describe("Kv transactions", () => {
  it.effect("read-your-writes and repeatable reads inside a transaction", () =>
    Effect.gen(function*() {
      const kv = yield* fresh
      yield* kv.write([put("a", "1"), put("b", "2")])
      const outside = yield* Deferred.make<void>()
      const inside = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(kv.transaction((tx) =>
        Effect.gen(function*() {
          const first = yield* getText(tx, "a")
          yield* tx.put(bytes("c"), bytes("3"))
          yield* tx.delete(bytes("b"))
          const own = [yield* getText(tx, "c"), yield* getText(tx, "b")]
          yield* Deferred.succeed(inside, void 0)
          yield* Deferred.await(outside) // another commit changes "a" meanwhile
          const again = yield* getText(tx, "a")
          const scanned = (yield* tx.scan({ prefix: bytes("") })).map((e) => `${text(e.key)}=${text(e.value)}`)
          return { first, own, again, scanned }
        })
      ))
      yield* Deferred.await(inside)
      yield* kv.write([put("a", "changed"), put("d", "4")])
      yield* Deferred.succeed(outside, void 0)
      const result = yield* Fiber.join(fiber).pipe(Effect.exit)
      // the transaction wrote c and deleted b; the other commit wrote a and d: no overlap, it commits
      assert.isTrue(Exit.isSuccess(result))
      if (Exit.isSuccess(result)) {
        assert.deepStrictEqual(result.value.first, Option.some("1"))
        assert.deepStrictEqual(result.value.own, [Option.some("3"), Option.none()])
        assert.deepStrictEqual(result.value.again, Option.some("1"))
        assert.deepStrictEqual(result.value.scanned, ["a=1", "c=3"])
      }
      const all = (yield* kv.scan({ prefix: bytes("") })).map((e) => `${text(e.key)}=${text(e.value)}`)
      assert.deepStrictEqual(all, ["a=changed", "c=3", "d=4"])
    }))

  it.effect("snapshot isolation: two writers of one key, exactly one commits; the other retries or fails", () =>
    Effect.gen(function*() {
      const kv = yield* fresh
      yield* kv.write([put("counter", "0")])
      const both = yield* Deferred.make<void>()
      let reads = 0
      const increment = (maxRetries: number) =>
        kv.transaction((tx) =>
          Effect.gen(function*() {
            const n = int(yield* tx.get(bytes("counter")))
            if (++reads === 2) yield* Deferred.succeed(both, void 0)
            yield* Deferred.await(both) // both have read before either commits
            yield* tx.put(bytes("counter"), bytes(String(n + 1)))
          }), { maxRetries })
      const exits = yield* Effect.all([Effect.exit(increment(0)), Effect.exit(increment(0))], { concurrency: 2 })
      assert.deepStrictEqual(exits.map(reasonOf).sort(), ["Success", "TransactionConflict"])
      assert.deepStrictEqual(yield* getText(kv, "counter"), Option.some("1"))
      // with retries, concurrent increments all land
      yield* Effect.all(Array.from({ length: 20 }, () =>
        kv.transaction((tx) =>
          Effect.gen(function*() {
            const n = int(yield* tx.get(bytes("counter")))
            yield* Effect.yieldNow
            yield* tx.put(bytes("counter"), bytes(String(n + 1)))
          }), { maxRetries: 100 })), { concurrency: "unbounded" })
      assert.deepStrictEqual(yield* getText(kv, "counter"), Option.some("21"))
    }))

  it.effect("serializable prevents write skew; snapshot allows it", () =>
    Effect.gen(function*() {
      // the on-call rule: at least one of x, y stays on call
      const attempt = (isolation: "snapshot" | "serializable") =>
        Effect.gen(function*() {
          const kv = yield* fresh
          yield* kv.write([put("x", "1"), put("y", "1")])
          const both = yield* Deferred.make<void>()
          let reads = 0
          const goOff = (me: string) =>
            kv.transaction((tx) =>
              Effect.gen(function*() {
                const total = int(yield* tx.get(bytes("x"))) + int(yield* tx.get(bytes("y")))
                if (++reads === 2) yield* Deferred.succeed(both, void 0)
                yield* Deferred.await(both)
                if (total >= 2) yield* tx.put(bytes(me), bytes("0"))
              }), { isolation, maxRetries: 0 })
          const exits = yield* Effect.all([Effect.exit(goOff("x")), Effect.exit(goOff("y"))], { concurrency: 2 })
          const onCall = int(yield* kv.get(bytes("x"))) + int(yield* kv.get(bytes("y")))
          return { outcomes: exits.map(reasonOf).sort(), onCall }
        })
      assert.deepStrictEqual(yield* attempt("snapshot"), { outcomes: ["Success", "Success"], onCall: 0 })
      assert.deepStrictEqual(yield* attempt("serializable"), { outcomes: ["Success", "TransactionConflict"], onCall: 1 })
    }))

  it.effect("serializable: a commit into a scanned range is a conflict (no phantoms)", () =>
    Effect.gen(function*() {
      const kv = yield* fresh
      yield* kv.write([put("job/1", "a")])
      const scanned = yield* Deferred.make<void>()
      const proceed = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(kv.transaction((tx) =>
        Effect.gen(function*() {
          const jobs = yield* tx.scan({ prefix: bytes("job/") })
          yield* Deferred.succeed(scanned, void 0)
          yield* Deferred.await(proceed)
          yield* tx.put(bytes("count"), bytes(String(jobs.length)))
        }), { isolation: "serializable", maxRetries: 0 }).pipe(Effect.exit))
      yield* Deferred.await(scanned)
      yield* kv.write([put("job/2", "b")])
      yield* Deferred.succeed(proceed, void 0)
      assert.strictEqual(reasonOf(yield* Fiber.join(fiber)), "TransactionConflict")
      // outside the range: no conflict
      const other = yield* kv.transaction((tx) =>
        Effect.gen(function*() {
          const jobs = yield* tx.scan({ start: bytes("job/"), end: bytes("job0") })
          yield* kv.write([put("other", "x")])
          yield* tx.put(bytes("count"), bytes(String(jobs.length)))
          return jobs.length
        }), { isolation: "serializable", maxRetries: 0 })
      assert.strictEqual(other, 2)
    }))

  it.effect("scans: prefix, bounds, limit, reverse, and a transaction's writes on top", () =>
    Effect.gen(function*() {
      const kv = yield* fresh
      yield* kv.write(["a", "b", "c", "d", "e"].map((k) => put(`p/${k}`, k)).concat([put("o", "x"), put("q", "y")]))
      const keys = (entries: ReadonlyArray<Kv.Entry>) => entries.map((e) => text(e.key))
      assert.deepStrictEqual(keys(yield* kv.scan({ prefix: bytes("p/") })), ["p/a", "p/b", "p/c", "p/d", "p/e"])
      assert.deepStrictEqual(keys(yield* kv.scan({ prefix: bytes("p/") }, { limit: 2, reverse: true })), ["p/e", "p/d"])
      assert.deepStrictEqual(keys(yield* kv.scan({ start: bytes("p/b"), end: bytes("p/d") })), ["p/b", "p/c"])
      assert.deepStrictEqual(keys(yield* kv.scan({ start: bytes("p/b"), end: bytes("p/d") }, { reverse: true })), ["p/c", "p/b"])
      assert.deepStrictEqual(keys(yield* kv.scan({ end: bytes("p/b") })), ["o", "p/a"])
      assert.deepStrictEqual(keys(yield* kv.scan({ start: bytes("p/e") }, { reverse: true, limit: 10 })), ["q", "p/e"])
      const inTx = yield* kv.transaction((tx) =>
        Effect.gen(function*() {
          yield* tx.delete(bytes("p/a"))
          yield* tx.delete(bytes("p/b"))
          yield* tx.put(bytes("p/bb"), bytes("new"))
          return [
            keys(yield* tx.scan({ prefix: bytes("p/") }, { limit: 2 })),
            keys(yield* tx.scan({ prefix: bytes("p/") }, { limit: 3, reverse: true }))
          ]
        }))
      assert.deepStrictEqual(inTx, [["p/bb", "p/c"], ["p/e", "p/d", "p/c"]])
      // keys with 0xff bytes: the prefix end is computed past them
      yield* kv.write([{ _tag: "Put", key: new Uint8Array([0x70, 0xff, 1]), value: bytes("z") }, {
        _tag: "Put",
        key: new Uint8Array([0x71]),
        value: bytes("w")
      }])
      assert.strictEqual((yield* kv.scan({ prefix: new Uint8Array([0x70, 0xff]) })).length, 1)
    }))

  it.effect("limits: keys, values and commits over them fail ValueTooLarge and write nothing", () =>
    Effect.gen(function*() {
      const kv = yield* fresh
      const big = new Uint8Array(256 * 1024 + 1)
      assert.strictEqual(reasonOf(yield* Effect.exit(kv.write([{ _tag: "Put", key: bytes("k"), value: big }]))), "ValueTooLarge")
      assert.strictEqual(reasonOf(yield* Effect.exit(kv.write([{ _tag: "Delete", key: new Uint8Array(4097) }]))), "ValueTooLarge")
      const many = Array.from({ length: 70 }, (_, i) => ({ _tag: "Put" as const, key: bytes(`k${i}`), value: new Uint8Array(250 * 1024) }))
      const error = yield* Effect.flip(kv.write(many))
      assert.deepStrictEqual([error._tag, error._tag === "ValueTooLarge" ? error.what : ""], ["ValueTooLarge", "commit"])
      const inTx = yield* Effect.exit(kv.transaction((tx) => tx.put(bytes("k"), big)))
      assert.strictEqual(reasonOf(inTx), "ValueTooLarge")
      assert.deepStrictEqual((yield* kv.stats).lastSeq, 0)
    }))

  it.effect("a value passed in is copied: mutating the caller's buffer later changes nothing", () =>
    Effect.gen(function*() {
      const kv = yield* fresh
      const value = bytes("before")
      yield* kv.write([{ _tag: "Put", key: bytes("k"), value }])
      value.set(bytes("AFTER!"))
      assert.deepStrictEqual(yield* getText(kv, "k"), Option.some("before"))
    }))

  it.effect("durable commits are group-committed: 200 concurrent commits take a handful of WAL puts", () =>
    Effect.gen(function*() {
      const { control, store } = yield* faultyMemory({ seed: 3, faults: { put: { latency: { _tag: "Fixed", millis: 30 } } } })
      const { kv } = yield* driveOrDie(openKv(store), "open")
      yield* control.resetCounters
      yield* driveOrDie(
        Effect.all(Array.from({ length: 200 }, (_, i) => kv.write([put(`k${i}`, "v")])), { concurrency: "unbounded" }),
        "writes"
      )
      const puts = (yield* control.counters).put.requests
      assert.isAtMost(puts, 3, `${puts} WAL puts`)
      assert.strictEqual((yield* kv.stats).durableSeq, 200)
    }))

  it.effect("updates are computed at commit and never conflict: 50 concurrent counter increments all land", () =>
    Effect.gen(function*() {
      const kv = yield* fresh
      const plusOne: Kv.Updater = (current) => bytes(String(int(current) + 1))
      yield* Effect.all(Array.from({ length: 50 }, (_, i) =>
        kv.transaction((tx) =>
          Effect.gen(function*() {
            yield* tx.update(bytes("counter"), plusOne)
            yield* Effect.yieldNow // all fifty are open at once
            yield* tx.put(bytes(`item/${i}`), bytes("x"))
          }), { maxRetries: 0 })), { concurrency: "unbounded" })
      assert.deepStrictEqual(yield* getText(kv, "counter"), Option.some("50"))
      yield* kv.write([{ _tag: "Update", key: bytes("counter"), update: plusOne }, { _tag: "Update", key: bytes("counter"), update: plusOne }])
      assert.deepStrictEqual(yield* getText(kv, "counter"), Option.some("52"))
      const seen = yield* kv.transaction((tx) =>
        Effect.gen(function*() {
          yield* tx.update(bytes("counter"), plusOne)
          const inside = yield* getText(tx, "counter")
          yield* tx.put(bytes("counter"), bytes("100")) // a put after an update replaces it
          yield* tx.update(bytes("other"), plusOne) // an update after a put applies on top
          yield* tx.put(bytes("third"), bytes("7"))
          yield* tx.update(bytes("third"), plusOne)
          return inside
        }))
      assert.deepStrictEqual(seen, Option.some("53"))
      assert.deepStrictEqual([yield* getText(kv, "counter"), yield* getText(kv, "other"), yield* getText(kv, "third")], [Option.some("100"), Option.some("1"), Option.some("8")])
    }))

  it.effect("writeIf commits only when its keys are present or absent as expected and its guard holds", () =>
    Effect.gen(function*() {
      const kv = yield* fresh
      yield* kv.write([put("claimed/1", "x")])
      const remove = [{ _tag: "Delete" as const, key: bytes("claimed/1") }, put("done/1", "y")]
      assert.strictEqual(reasonOf(yield* Effect.exit(kv.writeIf(remove, [{ key: bytes("claimed/1"), present: false }]))), "WriteConditionFailed")
      assert.strictEqual(reasonOf(yield* Effect.exit(kv.writeIf(remove, [{ key: bytes("claimed/1"), present: true }], { guard: () => false }))), "WriteConditionFailed")
      assert.deepStrictEqual(yield* getText(kv, "done/1"), Option.none())
      yield* kv.writeIf(remove, [{ key: bytes("claimed/1"), present: true }], { guard: () => true })
      assert.deepStrictEqual([yield* getText(kv, "claimed/1"), yield* getText(kv, "done/1")], [Option.none(), Option.some("y")])
      assert.strictEqual(reasonOf(yield* Effect.exit(kv.writeIf(remove, [{ key: bytes("claimed/1"), present: true }]))), "WriteConditionFailed")
    }))
})
