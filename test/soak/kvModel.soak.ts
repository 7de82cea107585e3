// npm run test:soak: the KV model schedules of test/Kv.model.test.ts for as long as asked.
//   SOAK_SECONDS (default 600) of schedules from KV_SEED (default 1,000,000, past the CI seeds);
//   a failing seed is reported and can be replayed with KV_SEED=<seed> KV_SCHEDULES=1 npm test.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runSchedule } from "../suites/kvModel.ts"

const seconds = Number(process.env.SOAK_SECONDS ?? 600)
const base = Number(process.env.KV_SEED ?? 1_000_000)

describe("Kv model soak", () => {
  it.effect(`schedules from seed ${base} for ${seconds} s`, () =>
    Effect.gen(function*() {
      const deadline = performance.now() + seconds * 1000
      let seed = base
      for (; performance.now() < deadline; seed++) yield* runSchedule(seed)
      console.log(`soak: ${seed - base} schedules from seed ${base} passed`)
      assert.isAbove(seed - base, 0)
    }), { timeout: (seconds + 120) * 1000 })
})
