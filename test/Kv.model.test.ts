// Randomized model schedules with crashes. CI runs KV_SCHEDULES of them (default 1,000) from a
// fixed base seed; `npm run test:soak` runs many more.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runSchedule } from "./suites/kvModel.ts"

const count = Number(process.env.KV_SCHEDULES ?? 1000)
const base = Number(process.env.KV_SEED ?? 0)

describe("Kv model with crashes", () => {
  it.effect(`${count} schedules from seed ${base}: every acknowledged write survives, recovery is a prefix`, () =>
    Effect.gen(function*() {
      let crashed = 0 // reached the crash point before the end of its work
      let lostUnacked = 0
      for (let seed = base; seed < base + count; seed++) {
        const report = yield* runSchedule(seed)
        if (report.crashed) crashed++
        if (report.recoveredAt < report.issued) lostUnacked++
      }
      console.log(`${count} schedules: ${crashed} crashed before the end of their work, ${lostUnacked} lost unacknowledged commits`)
      // the schedules must actually crash mid-workload and lose unacknowledged writes sometimes
      assert.isAbove(crashed, count / 5, `crashed ${crashed}`)
      assert.isAbove(lostUnacked, 0)
    }), { timeout: 600_000 })
})
