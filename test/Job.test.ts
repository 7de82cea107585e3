// Job definitions and backoff policies.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Schema } from "effect"
import * as Job from "../src/Job.ts"

const ms = (d: Duration.Duration) => Duration.toMillis(d)

describe("Job", () => {
  it("exponential backoff doubles from base and stops at max (taquba's test_backoff_delay_calculation)", () => {
    const b = Job.Backoff.exponential({ base: "1 second", max: "60 seconds" })
    assert.deepStrictEqual([1, 2, 3, 4, 20].map((a) => ms(Job.delayOf(b, a, 0.5))), [1000, 2000, 4000, 8000, 60000])
    assert.strictEqual(ms(Job.delayOf(Job.Backoff.exponential({ base: 0 }), 3, 0.5)), 0)
  })

  it("jitter scales a delay into [1 - jitter, 1] of it", () => {
    const b = Job.Backoff.exponential({ base: "1 second", max: "1 minute", jitter: 0.5 })
    assert.deepStrictEqual([0, 0.5, 0.999].map((r) => Math.round(ms(Job.delayOf(b, 2, r)))), [2000, 1500, 1001])
  })

  it("fixed, linear, none and custom policies; a plain function in define is custom", () => {
    assert.strictEqual(ms(Job.delayOf(Job.Backoff.fixed("3 seconds"), 7, 0)), 3000)
    const linear = Job.Backoff.linear({ step: "2 seconds", max: "5 seconds" })
    assert.deepStrictEqual([1, 2, 3].map((a) => ms(Job.delayOf(linear, a, 0))), [2000, 4000, 5000])
    assert.strictEqual(ms(Job.delayOf(Job.Backoff.none(), 9, 0)), 0)
    const def = Job.define("q", { payload: Schema.String, backoff: (attempt) => `${attempt * 10} millis` })
    assert.strictEqual(ms(Job.delayOf(def.backoff, 4, 0)), 40)
  })

  it("define fills taquba's defaults", () => {
    const def = Job.define("q", { payload: Schema.String })
    assert.deepStrictEqual(
      [def.queue, def.maxAttempts, ms(def.leaseDuration), def.priority, def.keepDone, ms(def.deadRetention)],
      ["q", 3, 30_000, 1000, undefined, 7 * 24 * 3600 * 1000]
    )
    assert.deepStrictEqual([1, 2, 3].map((a) => ms(Job.delayOf(def.backoff, a, 0))), [1000, 2000, 4000])
    assert.deepStrictEqual(Job.Priority, { high: 100, normal: 1000, low: 10000 })
    assert.strictEqual(Job.define("q", { payload: Schema.String, priority: "high" }).priority, 100)
  })
})
