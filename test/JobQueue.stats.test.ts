// The queue's counters against the records themselves, through random workloads with time moving:
// enqueues (some delayed, some deduplicated), claims, acks, nacks, dead-letters, cancels, lease
// expiries, promotions, retention sweeps, wakes, requeues of dead jobs (one, or all), purges of the
// dead and a reopen; and settlements carrying effects: follow-up
// enqueues into the same queue and another one (some delayed, some deduplicated), on stale claims too.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as JobRecord from "../schema/JobRecord.ts"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import { makePrng } from "../src/internal/prng.ts"
import * as Kv from "../src/Kv.ts"
import * as Keys from "../src/queue/keys.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { type AnyStore, layerOf } from "./utils/stores.ts"

const Task = Job.define("t", {
  payload: Schema.Number,
  maxAttempts: 2,
  backoff: Job.Backoff.fixed("2 seconds"),
  keepDone: "5 seconds",
  deadRetention: "20 seconds"
})

/** The queue follow-ups go to, besides the task's own. */
const FollowUp = Job.define("f", { payload: Schema.Number, backoff: Job.Backoff.none() })

const open = (store: AnyStore) =>
  Effect.gen(function*() {
    const context = yield* Layer.buildWithScope(
      JobQueue.layer({ reaperInterval: "1 second", schedulerInterval: "200 millis" }).pipe(
        Layer.provideMerge(Kv.layer()),
        Layer.provide(layerOf(store))
      ),
      yield* Scope.make()
    )
    return { q: Context.get(context, JobQueue.JobQueue), kv: Context.get(context, Kv.Kv) }
  })

/** The live counts by status of `queue`, from the records (`done`: the kept done records). */
const actual = (kv: Kv.Service, queue: string) =>
  Effect.gen(function*() {
    const counts = { Pending: 0, Scheduled: 0, Claimed: 0, Done: 0, Dead: 0 }
    for (const prefix of Keys.recordPrefixes) {
      for (const entry of yield* kv.scan({ prefix: Keys.toBytes(prefix) })) {
        const record = JobRecord.decode(entry.value)
        if (record.queue === queue) counts[record.status]++
      }
    }
    return counts
  })

/** Settlement effects drawn at random: follow-ups into both queues, some delayed, some deduplicated. */
const randomEffects = (prng: ReturnType<typeof makePrng>, step: number): JobQueue.SettlementEffects => ({
  enqueue: Array.from({ length: prng.int(1, 4) }, (_, i): JobQueue.FollowUp => [
    prng.next() < 0.5 ? Task : FollowUp,
    step * 10 + i,
    {
      ...(prng.next() < 0.3 ? { delay: `${prng.int(1, 5)} seconds` } : {}),
      ...(prng.next() < 0.3 ? { dedupKey: `e${prng.int(0, 3)}` } : {})
    }
  ]),
  kv: { [`step/${step}`]: new Uint8Array([step & 0xff]) }
})

/** The ids of every job stored (from the index). */
const jobIds = (kv: Kv.Service) =>
  Effect.map(kv.scan({ prefix: Keys.toBytes(Keys.indexPrefix) }), (entries) => entries.map((e) => Keys.idOfIndex(Keys.fromBytes(e.key))))

describe("JobQueue counters", () => {
  it.effect("5 seeds × 150 random steps, settlements with follow-up effects among them: every counter of both queues matches the records, done the acks; wakes and dead-letter management included", () =>
    Effect.gen(function*() {
      const tally = { woken: 0, requeued: 0, purged: 0 }
      for (let seed = 0; seed < 5; seed++) {
        const prng = makePrng(`stats-${seed}`)
        const store = yield* Effect.provide(Effect.map(ObjectStore.ObjectStore, (s) => s), ObjectStore.layerMemory())
        let { kv, q } = yield* open(store)
        const claims: Array<JobQueue.Claim<number>> = []
        const followUpClaims: Array<JobQueue.Claim<number>> = []
        const acks = { t: 0, f: 0 }
        let withEffects = 0 // settlements that committed effects
        for (let step = 0; step < 150; step++) {
          const roll = prng.next()
          if (roll < 0.3) {
            yield* q.enqueue(Task, step, {
              ...(prng.next() < 0.3 ? { delay: `${prng.int(1, 5)} seconds` } : {}),
              ...(prng.next() < 0.2 ? { dedupKey: `d${prng.int(0, 3)}` } : {})
            })
          } else if (roll < 0.5) {
            claims.push(...yield* q.claim(Task, { max: prng.int(1, 4), lease: `${prng.int(1, 6)} seconds` }))
          } else if (roll < 0.75 && claims.length > 0) {
            const claim = claims.splice(prng.int(0, claims.length), 1)[0]!
            const how = prng.int(0, 3)
            // half the settlements carry effects (a stale claim's apply none of them)
            const effects = prng.next() < 0.5 ? randomEffects(prng, step) : undefined
            const exit = yield* Effect.exit(
              how === 0
                ? q.ack(claim, effects)
                : how === 1
                ? q.nack(claim, "x", effects === undefined ? undefined : { effects })
                : q.deadLetter(claim, "y", effects === undefined ? undefined : { effects })
            )
            if (how === 0 && exit._tag === "Success") acks.t++
            if (effects !== undefined && exit._tag === "Success") withEffects++
          } else if (roll < 0.78) {
            followUpClaims.push(...yield* q.claim(FollowUp, { max: prng.int(1, 4), lease: `${prng.int(1, 6)} seconds` }))
            const claim = followUpClaims.splice(prng.int(0, followUpClaims.length), 1)[0]
            if (claim !== undefined) {
              const effects = prng.next() < 0.5 ? randomEffects(prng, step) : undefined
              const exit = yield* Effect.exit(q.ack(claim, effects))
              if (exit._tag === "Success") acks.f++
              if (effects !== undefined && exit._tag === "Success") withEffects++
            }
          } else if (roll < 0.8) {
            const ids = yield* jobIds(kv)
            if (ids.length > 0) yield* q.cancel(ids[prng.int(0, ids.length)]!)
          } else if (roll < 0.85) {
            // wake, or requeue one dead job, of any job: the wrong state changes nothing
            const ids = yield* jobIds(kv)
            if (ids.length > 0) {
              const id = ids[prng.int(0, ids.length)]!
              if (prng.next() < 0.5) {
                if ((yield* q.wake(id)) === "Woken") tally.woken++
              } else if ((yield* Effect.exit(q.requeueDead(id)))._tag === "Success") tally.requeued++
            }
          } else if (roll < 0.87) {
            if (prng.next() < 0.5) tally.requeued += yield* q.requeueDead("t", { all: true })
            else tally.purged += yield* q.purgeDead("t")
          } else if (roll < 0.97) {
            yield* TestClock.adjust(prng.int(100, 3000))
          } else {
            ;({ kv, q } = yield* open(store)) // a restart: claims are requeued
            claims.length = 0
            followUpClaims.length = 0
          }
          for (const queue of ["t", "f"] as const) {
            const stats = yield* q.stats(queue)
            const counts = yield* actual(kv, queue)
            assert.deepStrictEqual(
              [stats.pending, stats.scheduled, stats.claimed, stats.dead],
              [counts.Pending, counts.Scheduled, counts.Claimed, counts.Dead],
              `seed ${seed} step ${step} queue ${queue}`
            )
            // done counts every ack that committed, kept or not, and nothing else
            assert.strictEqual(stats.done, acks[queue], `seed ${seed} step ${step} queue ${queue}: done`)
          }
        }
        assert.isAtLeast(withEffects, 5, `seed ${seed}: settlements with effects`)
        assert.isAtLeast(acks.f, 1, `seed ${seed}: follow-ups acknowledged`)
      }
      // the workload did move jobs by each of them
      assert.isAbove(tally.woken, 0)
      assert.isAbove(tally.requeued, 0)
      assert.isAbove(tally.purged, 0)
    }))
})
