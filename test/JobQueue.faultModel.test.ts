// Randomized model schedules of the job queue with store faults and crashes (test/suites/queueModel.ts).
// CI runs QUEUE_SCHEDULES of them (default 200) from QUEUE_SEED (default 0); `npm run test:soak`
// runs many more. A failing seed replays alone: QUEUE_SEED=<seed> QUEUE_SCHEDULES=1.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runQueueSchedule } from "./suites/queueModel.ts"

const count = Number(process.env.QUEUE_SCHEDULES ?? 200)
const base = Number(process.env.QUEUE_SEED ?? 0)

describe("JobQueue model with store faults and crashes", () => {
  it.effect(`${count} schedules from seed ${base}: after every reopen each acknowledged job is there once, in its state, with exact counters, and settlement effects landed with their settlement or not at all`, () =>
    Effect.gen(function*() {
      const totals = {
        operations: 0,
        processes: 0,
        crashes: 0,
        lostUnacknowledged: 0,
        landedUncertain: 0,
        interruptedNotLanded: 0,
        interruptedLanded: 0,
        jobs: 0,
        effectsCommitted: 0,
        effectsCut: 0
      }
      for (let seed = base; seed < base + count; seed++) {
        if (process.env.QUEUE_TRACE) console.log(`seed ${seed}`)
        const report = yield* runQueueSchedule(seed)
        for (const key of Object.keys(totals) as Array<keyof typeof totals>) totals[key] += report[key]
      }
      console.log(`${count} queue schedules: ${JSON.stringify(totals)}`)
      if (count >= 50) {
        // the schedules must crash mid-workload, lose unacknowledged work, and find cut calls landed
        assert.isAbove(totals.crashes, count)
        assert.isAbove(totals.lostUnacknowledged, 0)
        assert.isAbove(totals.landedUncertain, 0)
        assert.isAbove(totals.interruptedLanded, 0)
        // settlements committed their effects, and crashes cut some of them
        assert.isAbove(totals.effectsCommitted, 0)
        assert.isAbove(totals.effectsCut, 0)
      }
    }), { timeout: 600_000 })
})
