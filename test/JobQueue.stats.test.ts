// The queue's counters against the records themselves, through random workloads with time moving:
// enqueues (some delayed, some deduplicated), claims, acks, nacks, dead-letters, cancels, lease
// expiries, promotions, retention sweeps, wakes, requeues of dead jobs (one, or all), purges of
// the dead and a reopen.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as JobRecord from "../schema/JobRecord.ts"
import * as Job from "../src/Job.ts"
import * as JobQueue from "../src/JobQueue.ts"
import { makePrng } from "../src/internal/prng.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"

const Task = Job.define("t", {
  payload: Schema.Number,
  maxAttempts: 2,
  backoff: Job.Backoff.fixed("2 seconds"),
  keepDone: "5 seconds",
  deadRetention: "20 seconds"
})

const open = (store: ObjectStore.Service) =>
  Effect.gen(function*() {
    const context = yield* Layer.buildWithScope(
      JobQueue.layer({ reaperInterval: "1 second", schedulerInterval: "200 millis" }).pipe(
        Layer.provideMerge(Kv.layer()),
        Layer.provide(Layer.succeed(ObjectStore.ObjectStore, store))
      ),
      yield* Scope.make()
    )
    return { q: Context.get(context, JobQueue.JobQueue), kv: Context.get(context, Kv.Kv) }
  })

/** The live counts by status, from the records (`done`: the kept done records). */
const actual = (kv: Kv.Service) =>
  Effect.gen(function*() {
    const counts = { Pending: 0, Scheduled: 0, Claimed: 0, Done: 0, Dead: 0 }
    for (const tag of [1, 2, 3, 4, 5]) {
      for (const entry of yield* kv.scan({ prefix: new Uint8Array([tag, 1]) })) counts[JobRecord.decode(entry.value).status]++
    }
    return counts
  })

/** The ids of every job stored (from the index). */
const jobIds = (kv: Kv.Service) =>
  Effect.map(kv.scan({ prefix: new Uint8Array([6, 1]) }), (entries) => entries.map((e) => new TextDecoder().decode(e.key.subarray(2))))

describe("JobQueue counters", () => {
  it.effect("5 seeds × 150 random steps: pending, scheduled, claimed and dead match the records, wakes and dead-letter management included", () =>
    Effect.gen(function*() {
      const tally = { woken: 0, requeued: 0, purged: 0 }
      for (let seed = 0; seed < 5; seed++) {
        const prng = makePrng(`stats-${seed}`)
        const store = yield* Effect.provide(Effect.map(ObjectStore.ObjectStore, (s) => s), ObjectStore.layerMemory())
        let { kv, q } = yield* open(store)
        const claims: Array<JobQueue.Claim<number>> = []
        let acks = 0
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
            const exit = yield* Effect.exit(how === 0 ? q.ack(claim) : how === 1 ? q.nack(claim, "x") : q.deadLetter(claim, "y"))
            if (how === 0 && exit._tag === "Success") acks++
          } else if (roll < 0.78) {
            const ids = yield* jobIds(kv)
            if (ids.length > 0) yield* q.cancel(ids[prng.int(0, ids.length)]!)
          } else if (roll < 0.84) {
            // wake, or requeue one dead job, of any job: the wrong state changes nothing
            const ids = yield* jobIds(kv)
            if (ids.length > 0) {
              const id = ids[prng.int(0, ids.length)]!
              if (prng.next() < 0.5) {
                if ((yield* q.wake(id)) === "Woken") tally.woken++
              } else if ((yield* Effect.exit(q.requeueDead(id)))._tag === "Success") tally.requeued++
            }
          } else if (roll < 0.86) {
            if (prng.next() < 0.5) tally.requeued += yield* q.requeueDead("t", { all: true })
            else tally.purged += yield* q.purgeDead("t")
          } else if (roll < 0.97) {
            yield* TestClock.adjust(prng.int(100, 3000))
          } else {
            ;({ kv, q } = yield* open(store)) // a restart: claims are requeued
            claims.length = 0
          }
          const stats = yield* q.stats("t")
          const counts = yield* actual(kv)
          assert.deepStrictEqual(
            [stats.pending, stats.scheduled, stats.claimed, stats.dead],
            [counts.Pending, counts.Scheduled, counts.Claimed, counts.Dead],
            `seed ${seed} step ${step}`
          )
          assert.isAtLeast(stats.done, acks)
        }
      }
      // the workload did move jobs by each of them
      assert.isAbove(tally.woken, 0)
      assert.isAbove(tally.requeued, 0)
      assert.isAbove(tally.purged, 0)
    }))
})
