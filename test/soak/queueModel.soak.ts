// npm run test:soak: the job queue model schedules of test/JobQueue.faultModel.test.ts, many more of
// them: QUEUE_SOAK_SCHEDULES (default 10,000) from QUEUE_SEED (default 1,000,000, past the CI seeds),
// in chunks of 500 (one test each, so that progress shows). A failing seed is reported and can be
// replayed with QUEUE_SEED=<seed> QUEUE_SCHEDULES=1 npm test -- test/JobQueue.faultModel.test.ts.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runQueueSchedule } from "../suites/queueModel.ts"

const total = Number(process.env.QUEUE_SOAK_SCHEDULES ?? 10_000)
const base = Number(process.env.QUEUE_SEED ?? 1_000_000)
const chunk = 500

describe("JobQueue model soak", () => {
  for (let from = base; from < base + total; from += chunk) {
    const to = Math.min(from + chunk, base + total)
    it.effect(`schedules ${from} to ${to - 1}: every reopen finds a state the model allows`, () =>
      Effect.gen(function*() {
        const started = performance.now()
        let crashes = 0
        for (let seed = from; seed < to; seed++) {
          if (process.env.QUEUE_TRACE) console.log(`seed ${seed}`)
          crashes += (yield* runQueueSchedule(seed)).crashes
        }
        const heap = Math.round(process.memoryUsage().heapUsed / 2 ** 20)
        console.log(`queue soak: schedules ${from}-${to - 1} passed in ${Math.round(performance.now() - started)} ms (${crashes} crashes, heap ${heap} MiB)`)
        assert.isAbove(crashes, 0)
      }), { timeout: 600_000 })
  }
})
