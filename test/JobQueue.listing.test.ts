// The listing's key handling: the key parsers and cursors of keys.ts, and a listing of one queue's
// scheduled jobs behind a backlog of another queue's, longer than one call reads.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as Keys from "../src/queue/keys.ts"

describe("listing keys", () => {
  it("counters' keys parse back to their queue and status, nested names included; other keys do not", () => {
    for (const queue of ["a", "mail/eu", "x".repeat(128)]) {
      assert.deepStrictEqual(Keys.parseStat(Keys.stat(queue, "Pending")), { queue, status: "Pending" })
      assert.strictEqual(Keys.parsePaused(Keys.paused(queue)), queue)
    }
    assert.isUndefined(Keys.parseStat(Keys.pending("a", 1, "id")))
    assert.isUndefined(Keys.parseStat(Keys.statsPrefix + "\x05ab")) // cut short
    assert.isUndefined(Keys.parsePaused(Keys.paused("a") + "x"))
    assert.isUndefined(Keys.parsePaused(Keys.stat("a", "Dead")))
  })

  it("a time-first key belongs to its queue only, not to one whose name extends it", () => {
    const key = Keys.scheduled(1000, "mail/eu", "01ID")
    assert.isTrue(Keys.isTimedOf(key, "mail/eu"))
    assert.isFalse(Keys.isTimedOf(key, "mail"))
    assert.isFalse(Keys.isTimedOf(Keys.scheduled(1000, "mail", "01ID"), "mail/eu"))
    assert.isTrue(Keys.isTimedKey(Keys.scheduledPrefix, key))
    assert.isFalse(Keys.isTimedKey(Keys.donePrefix, key))
    assert.isFalse(Keys.isTimedKey(Keys.scheduledPrefix, Keys.scheduledPrefix + "\x00\x00"))
  })

  it("cursors round-trip every key, and only strict base64url of a non-empty key is one", () => {
    for (const key of [Keys.pending("q", 2 ** 32 - 1, "01ID"), Keys.done(Date.UTC(2030, 0), "a/b", "x"), "\x00\xff"]) {
      assert.strictEqual(Keys.fromCursor(Keys.toCursor(key)), key)
    }
    for (const bad of ["", "a", "ab=", "a+b", "a/b", "AB CD", "QQ=="]) assert.isUndefined(Keys.fromCursor(bad), bad)
  })
})

describe("listing scheduled jobs behind another queue's backlog", () => {
  const Ours = Job.define("ours", { payload: Schema.Number })
  const Theirs = Job.define("theirs", { payload: Schema.Number })

  it.effect("a call reads a bounded number of keys: short pages with a cursor, every job of ours listed once at the end", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        JobQueue.layer().pipe(Layer.provide(Kv.layer()), Layer.provide(ObjectStore.layerMemory()))
      )
      const q = Context.get(context, JobQueue.JobQueue)
      const first = yield* q.enqueue(Ours, 0, { delay: "1 minute" })
      yield* Effect.forEach(Array.from({ length: 9000 }, (_, i) => i), (i) => q.enqueue(Theirs, i, { delay: "10 minutes" }), {
        concurrency: 64,
        discard: true
      })
      yield* q.enqueue(Ours, 1, { delay: "1 hour" })
      const pages: Array<ReadonlyArray<number>> = []
      let cursor: string | undefined
      do {
        const page = yield* q.list(Ours, "Scheduled", { cursor, limit: 10 })
        pages.push(page.jobs.map((j) => (j.payloadError === undefined ? j.payload : -1)))
        cursor = Option.getOrUndefined(page.cursor)
      } while (cursor !== undefined)
      assert.deepStrictEqual(pages.flat(), [0, 1])
      assert.isAbove(pages.length, 2, "the backlog is read over several calls")
      assert.isTrue(pages.slice(1, -1).some((p) => p.length === 0), "a page can be empty while the cursor goes on")
      assert.deepStrictEqual((yield* q.list("ours", "Scheduled", { limit: 1 })).jobs.map((j) => j.id), [first.id])
    }))
})
