// Checksummed payload objects, written once and run on every backend: a payload object damaged at
// every position class of its frame (magic, kind, version, body start, middle and end, CRC) or cut
// short (to nothing, inside the header, inside the body, before and inside the CRC) is `Corrupt`
// at claim: the job is dead-lettered, durably, with a reason naming the object and the failed
// check, never handed to a claimer or a handler; `get` of it fails with `Corrupt`.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as PayloadObject from "../../schema/PayloadObject.ts"
import * as Msgpack from "../../src/internal/msgpack.ts"
import * as Job from "../../src/Job.ts"
import * as JobQueue from "../../src/JobQueue.ts"
import * as Worker from "../../src/Worker.ts"
import { reasonOf } from "../utils/exits.ts"
import { type AnyStore, type Backend, queueOver, serviceOf } from "../utils/stores.ts"

const Blob = Job.define("blobs", { payload: Schema.Struct({ data: Schema.String }), backoff: Job.Backoff.none() })
const big = (tag: string) => ({ data: `${tag}:${"x".repeat(200)}` }) // over the 64-byte threshold below

/** A damage done to a stored payload object, and what the check that refuses it says. */
interface Damage {
  readonly name: string
  readonly apply: (bytes: Uint8Array) => Uint8Array
  readonly detail: string
}

/** The object with the byte at `at(length)` inverted. */
const flip = (name: string, at: (length: number) => number, detail: string): Damage => ({
  name: `flipped ${name}`,
  apply: (bytes) => {
    const out = bytes.slice()
    const i = at(bytes.length)
    out[i] = out[i]! ^ 0xff
    return out
  },
  detail
})

/** The object cut to its first `to(length)` bytes. */
const cut = (name: string, to: (length: number) => number, detail: string): Damage => ({
  name: `cut ${name}`,
  apply: (bytes) => bytes.slice(0, to(bytes.length)),
  detail
})

// the frame: "BQKV" (0-3) | kind (4) | version (5) | body (6 .. length - 5) | CRC32 (length - 4 ..)
const damages: ReadonlyArray<Damage> = [
  flip("magic, first byte", () => 0, "bad magic"),
  flip("magic, last byte", () => 3, "bad magic"),
  flip("kind", () => 4, "kind 251, expected 4"),
  flip("version", () => 5, "format version 254, this build reads 1"),
  flip("body, first byte", () => 6, "CRC32 mismatch"),
  flip("body, middle byte", (n) => Math.floor(n / 2), "CRC32 mismatch"),
  flip("body, last byte", (n) => n - 5, "CRC32 mismatch"),
  flip("CRC, first byte", (n) => n - 4, "CRC32 mismatch"),
  flip("CRC, last byte", (n) => n - 1, "CRC32 mismatch"),
  cut("to nothing", () => 0, "0 bytes, shorter than a frame"),
  cut("inside the header", () => 3, "3 bytes, shorter than a frame"),
  cut("inside the body", (n) => Math.floor(n / 2), "CRC32 mismatch"),
  cut("before the CRC", (n) => n - 4, "CRC32 mismatch"),
  cut("inside the CRC", (n) => n - 1, "CRC32 mismatch")
]

export const payloadObjectSuite = (backend: Backend) =>
  describe(`Payload objects on ${backend.name}`, () => {
    const storeOf = Layer.build(backend.layer()) // the store's context: with the directory backend's local log

    /** Enqueues an offloaded payload: its id and its object's key. */
    const enqueueOffloaded = (q: JobQueue.Service, tag: string) =>
      Effect.gen(function*() {
        const { id } = yield* q.enqueue(Blob, big(tag))
        const ref = Option.getOrThrow(yield* q.get(id)).payloadRef
        assert.isDefined(ref)
        return { id, ref: ref! }
      })

    /** Replaces the object at `key` with `damage` done to it. */
    const damage = (store: AnyStore, key: string, d: Damage) =>
      Effect.flatMap(serviceOf(store).get(key), (object) => serviceOf(store).put(key, d.apply(object.bytes)))

    it.effect("a payload object is framed: magic, kind 4, version 1, the encoded payload, CRC32", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* queueOver(store, { offloadThreshold: 64 })
        const { ref } = yield* enqueueOffloaded(q, "framed")
        const { bytes } = yield* serviceOf(store).get(ref)
        assert.deepStrictEqual([...bytes.subarray(0, 6)], [0x42, 0x51, 0x4b, 0x56, 4, 1])
        assert.deepStrictEqual(Msgpack.decode(PayloadObject.decode(bytes)), big("framed"))
      }))

    it.effect("every damage of a payload object: Corrupt at claim, dead-lettered durably with the reason, get fails", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* queueOver(store, { offloadThreshold: 64 })
        const jobs: Array<{ readonly id: string; readonly ref: string; readonly d: Damage }> = []
        for (const d of damages) {
          const { id, ref } = yield* enqueueOffloaded(q, d.name)
          yield* damage(store, ref, d)
          const reason = `payload object ${ref} is corrupt: ${d.detail}`
          const completion = yield* Effect.forkChild(q.awaitCompletion(id))
          // the claim dead-letters it and, having nothing else, returns nothing
          assert.deepStrictEqual(yield* q.claim(Blob), [], d.name)
          const completed = yield* Fiber.join(completion)
          assert.strictEqual(completed._tag, "Completed", d.name)
          const dead = completed._tag === "Completed" ? Option.getOrThrow(completed.job) : undefined
          assert.deepStrictEqual([dead?.status, dead?.lastError, dead?.attempts], ["Dead", reason, 1], d.name)
          const got = yield* Effect.exit(q.get(id))
          assert.strictEqual(reasonOf(got), "Corrupt", d.name)
          assert.include(String(got), d.detail, d.name)
          jobs.push({ id, ref, d })
        }
        assert.deepStrictEqual(yield* q.stats("blobs"), {
          queue: "blobs",
          pending: 0,
          scheduled: 0,
          claimed: 0,
          done: 0,
          dead: damages.length
        })
        // durable: a newer writer (which fences this one) finds every job dead, with its reason
        const reopened = yield* queueOver(store, { offloadThreshold: 64 })
        assert.strictEqual((yield* reopened.stats("blobs")).dead, damages.length)
        for (const { d, id, ref } of jobs) {
          const completed = yield* reopened.awaitCompletion(id, { timeout: 0 })
          const dead = completed._tag === "Completed" ? Option.getOrThrow(completed.job) : undefined
          assert.deepStrictEqual([dead?.status, dead?.lastError], ["Dead", `payload object ${ref} is corrupt: ${d.detail}`], d.name)
        }
      }))

    it.effect("a Worker never sees a damaged payload: the good job beside it is handled, the damaged one is dead", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const q = yield* queueOver(store, { offloadThreshold: 64 })
        const damaged = yield* enqueueOffloaded(q, "damaged")
        yield* damage(store, damaged.ref, damages[5]!)
        const good = yield* enqueueOffloaded(q, "good")
        const seen: Array<unknown> = []
        const worker = yield* Effect.forkChild(
          Worker.run(Blob, (payload) => Effect.sync(() => void seen.push(payload))).pipe(Effect.provideService(JobQueue.JobQueue, q))
        )
        const bothEnded = Effect.all([q.awaitCompletion(damaged.id), q.awaitCompletion(good.id)])
        const waiting = yield* Effect.forkChild(bothEnded)
        for (let i = 0; waiting.pollUnsafe() === undefined; i++) {
          assert.isBelow(i, 3000, "both jobs ended")
          yield* TestClock.adjust(10)
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
        }
        assert.deepStrictEqual(seen, [big("good")])
        assert.deepStrictEqual(yield* q.stats("blobs"), { queue: "blobs", pending: 0, scheduled: 0, claimed: 0, done: 1, dead: 1 })
        // stopped (drained) while its store is open: the ack may still be deleting the payload object
        yield* Fiber.interrupt(worker)
      }))
  })
