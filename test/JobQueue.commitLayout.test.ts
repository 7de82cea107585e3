// The per-commit record-layout check that the queue model test runs every commit through
// (test/utils/commitLayout.ts): it must accept the commits `records.stage`/`move` build and name
// each rule a hand-made commit breaks, or the model test would not catch a bypass of the staging path.
import { assert, describe, it } from "@effect/vitest"
import * as JobRecordSchema from "../schema/JobRecord.ts"
import type { JobRecord } from "../schema/JobRecord.ts"
import { toLatin1 } from "../src/internal/binary.ts"
import { Changes } from "../src/kv/engine.ts"
import * as Keys from "../src/queue/keys.ts"
import { move, stage } from "../src/queue/records.ts"
import { layoutProblems } from "./utils/commitLayout.ts"

const pending: JobRecord = {
  id: "job-1",
  queue: "mail",
  payload: new Uint8Array([1]),
  headers: {},
  status: "Pending",
  attempts: 0,
  maxAttempts: 3,
  priority: 0,
  enqueuedAt: 1000
}
const stored = (record: JobRecord) => toLatin1(JobRecordSchema.encode(record))
const nothing = () => undefined

describe("the record-layout check of a commit", () => {
  it("accepts an enqueue and a claim built by stage and move", () => {
    const enqueue = new Changes()
    stage(enqueue, pending)
    move(enqueue, "mail", undefined, "Pending")
    assert.deepStrictEqual(layoutProblems(enqueue, nothing), [])

    const state = new Map<string, string>([[Keys.pending("mail", 0, "job-1"), stored(pending)], [Keys.index("job-1"), Keys.pending("mail", 0, "job-1")]])
    const claim = new Changes()
    claim.delete(Keys.pending("mail", 0, "job-1"))
    stage(claim, { ...pending, status: "Claimed", attempts: 1, claimedAt: 2000 })
    move(claim, "mail", "Pending", "Claimed")
    assert.deepStrictEqual(layoutProblems(claim, (key) => state.get(key)), [])
  })

  it("names a record written without its index, at another status's key, or without its counter", () => {
    const changes = new Changes()
    changes.put(Keys.claimed("mail", "job-1"), stored(pending))
    const problems = layoutProblems(changes, nothing)
    assert.include(problems.join("\n"), "written at another status's key")
    assert.include(problems.join("\n"), "written without its index pointing to it")
    assert.include(problems.join("\n"), "moved by 0, the records say 1")
  })

  it("names a done record without its expiry entry, and a record removed with its index left behind", () => {
    const done: JobRecord = { ...pending, status: "Done", completedAt: 3000, expiresAt: 9000 }
    const keep = new Changes()
    keep.put(Keys.done(3000, "mail", "job-1"), stored(done))
    keep.put(Keys.index("job-1"), Keys.done(3000, "mail", "job-1"))
    move(keep, "mail", undefined, "Done")
    assert.include(layoutProblems(keep, nothing).join("\n"), "without its expiry entry")

    const state = new Map<string, string>([[Keys.pending("mail", 0, "job-1"), stored(pending)], [Keys.index("job-1"), Keys.pending("mail", 0, "job-1")]])
    const cancel = new Changes()
    cancel.delete(Keys.pending("mail", 0, "job-1"))
    move(cancel, "mail", "Pending", undefined)
    assert.deepStrictEqual(layoutProblems(cancel, (key) => state.get(key)), ["job-1 (Pending) removed with its index left pointing to it"])
  })
})
