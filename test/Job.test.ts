// Job definitions and backoff policies.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Schema } from "effect"
import { InvalidOption } from "../src/InvalidOption.ts"
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

  describe("versioned payloads", () => {
    const V1 = Schema.Struct({ to: Schema.String })
    const V2 = Schema.Struct({ to: Schema.Array(Schema.String) })
    const V3 = Schema.Struct({ to: Schema.Array(Schema.String), subject: Schema.String })
    const m1 = Job.migration(1, V1, (v1) => ({ to: [v1.to] }))
    const m2 = Job.migration(2, V2, (v2) => ({ ...v2, subject: "" }))

    /** The InvalidOption `f` throws (fails the test if it throws anything else, or nothing). */
    const refusal = (f: () => unknown): InvalidOption => {
      try {
        f()
      } catch (error) {
        assert.instanceOf(error, InvalidOption)
        return error as InvalidOption
      }
      return assert.fail("not refused")
    }

    it("define keeps the version and the migrations; version defaults to 1 with none", () => {
      const def = Job.define("q", { payload: V3, version: 3, migrations: [m1, m2] })
      assert.deepStrictEqual([def.version, def.migrations?.map((m) => m.from)], [3, [1, 2]])
      const plain = Job.define("q", { payload: V1 })
      assert.deepStrictEqual([plain.version, plain.migrations], [1, []])
      // older steps may be dropped (their jobs are then dead-lettered), and the highest version is taken
      assert.doesNotThrow(() => Job.define("q", { payload: V3, version: 3, migrations: [m2] }))
      assert.doesNotThrow(() => Job.define("q", { payload: V3, version: 3 }))
      assert.doesNotThrow(() => Job.define("q", { payload: V1, version: 2 ** 31 - 1 }))
      assert.doesNotThrow(() => Job.migration(2 ** 31 - 2, V1, (v) => v))
    })

    it("a version that is not an integer from 1 to 2^31 - 1 is refused", () => {
      for (const version of [0, -1, 1.5, 2 ** 31, Number.NaN, Infinity, "2", null]) {
        assert.strictEqual(refusal(() => Job.define("q", { payload: V1, version: version as any })).option, "version")
      }
    })

    it("a chain with a hole is refused, in the middle or before the current version", () => {
      const m3 = Job.migration(3, V3, (v3) => v3)
      const middle = refusal(() => Job.define("q", { payload: V3, version: 4, migrations: [m1, m3] }))
      assert.deepStrictEqual([middle.option, middle.reason], ["migrations[1].from", "leaves a hole: no migration from version 2"])
      const end = refusal(() => Job.define("q", { payload: V3, version: 4, migrations: [m1, m2] as any }))
      assert.strictEqual(end.option, "migrations")
      assert.include(end.reason, "no migration from version 3")
    })

    it("two migrations from the same version, or out of order, are refused", () => {
      const duplicate = refusal(() => Job.define("q", { payload: V3, version: 3, migrations: [m1, m1, m2] as any }))
      assert.deepStrictEqual([duplicate.option, duplicate.reason], ["migrations[1].from", "duplicates migrations[0] (from 1)"])
      const unordered = refusal(() => Job.define("q", { payload: V3, version: 3, migrations: [m2, m1] as any }))
      assert.strictEqual(unordered.option, "migrations[1].from")
      assert.include(unordered.reason, "ascending order")
    })

    it("a migration from the current version or above is refused, as is any with version 1", () => {
      const at = refusal(() => Job.define("q", { payload: V3, version: 2, migrations: [m1, m2] as any }))
      assert.deepStrictEqual([at.option, at.reason], ["migrations[1].from", "must be below version (2)"])
      assert.strictEqual(refusal(() => Job.define("q", { payload: V2, migrations: [m1] })).option, "migrations[0].from")
    })

    it("a step not made by Job.migration is refused, even when it has the shape of one", () => {
      const lookalike = { _tag: "Migration" as const, from: 1, schema: V1, migrate: (v1: typeof V1.Type) => ({ to: [v1.to] }) }
      const error = refusal(() => Job.define("q", { payload: V2, version: 2, migrations: [lookalike] }))
      assert.deepStrictEqual([error.option, error.reason], ["migrations[0]", "must be made by Job.migration"])
      assert.strictEqual(refusal(() => Job.define("q", { payload: V2, version: 2, migrations: [null] as any })).option, "migrations[0]")
      assert.strictEqual(refusal(() => Job.define("q", { payload: V2, version: 2, migrations: m1 as any })).option, "migrations")
    })

    it("Job.migration refuses a bad version, a value that is not a Schema, and an f that is not a function", () => {
      for (const from of [0, -1, 1.5, 2 ** 31 - 1, Number.NaN, "1"]) {
        assert.strictEqual(refusal(() => Job.migration(from as any, V1, (v) => v)).option, "from")
      }
      assert.strictEqual(refusal(() => Job.migration(1, { to: "string" } as any, (v) => v)).option, "schema")
      assert.strictEqual(refusal(() => Job.migration(1, V1, "not a function" as any)).option, "f")
    })

    it("the last migration's output is typed as the current payload", () => {
      const wrong = Job.migration(2, V2, (v2) => ({ to: v2.to })) // no subject
      // @ts-expect-error the last step must yield the current payload type
      assert.doesNotThrow(() => Job.define("q", { payload: V3, version: 3, migrations: [m1, wrong] }))
      // the input of each step is typed by its schema
      // @ts-expect-error v1.to is a string
      Job.migration(1, V1, (v1) => v1.to.map((s: string) => s))
    })
  })
})
