// `bucketq top`: the pure render of two successive snapshots (rates from their difference, ages
// from the snapshot's instant), with exact output; and the real command refreshing a directory
// store's view, one frame per second.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { render, type Snapshot } from "../src/cli/top.ts"
import { fill, start } from "./fixtures/cliStore.ts"
import { bucketq } from "./utils/cli.ts"

const queue = (name: string, counts: Partial<Omit<Snapshot["queues"][number], "queue">>) => ({
  queue: name,
  pending: 0,
  scheduled: 0,
  claimed: 0,
  done: 0,
  dead: 0,
  paused: false,
  ...counts
})

const first: Snapshot = {
  at: start + 60_000,
  source: "read-only",
  queues: [queue("emails", { pending: 10, claimed: 2, done: 100, dead: 1 }), queue("reports", { pending: 1, paused: true })],
  oldestPending: new Map([["emails", start], ["reports", start + 55_000]]),
  failures: [{ id: "job-d", queue: "emails", failedAt: start + 30_000, error: "smtp refused" }]
}

const second: Snapshot = {
  at: start + 62_000,
  source: "read-only",
  queues: [
    queue("emails", { pending: 6, claimed: 2, done: 110, dead: 2 }),
    queue("reports", { pending: 1, paused: true }),
    queue("webhooks", { pending: 4 })
  ],
  oldestPending: new Map([["emails", start + 2_000], ["reports", start + 55_000], ["webhooks", start + 61_500]]),
  failures: [
    { id: "job-x", queue: "emails", failedAt: start + 61_000, error: "timeout" },
    { id: "job-d", queue: "emails", failedAt: start + 30_000, error: "smtp refused" }
  ]
}

describe("bucketq top", () => {
  it("the first frame has no rates yet, and ages from the snapshot's instant", () => {
    assert.strictEqual(render("file:./.bucketq", undefined, first), [
      "bucketq top  file:./.bucketq  read-only  2026-01-01T00:01:00.000Z",
      "",
      "QUEUE    PENDING  SCHEDULED  CLAIMED  DONE  DEAD  PAUSED  IN/S  DONE/S  DEAD/S  OLDEST PENDING",
      "emails        10          0        2   100     1  no         -       -       -  1m00s",
      "reports        1          0        0     0     0  yes        -       -       -  5s",
      "",
      "recent failures:",
      "ID     QUEUE   FAILED   ERROR",
      "job-d  emails  30s ago  smtp refused",
      ""
    ].join("\n"))
  })

  it("the next frame has rates per second since the previous one, a new queue counted from nothing", () => {
    assert.strictEqual(render("file:./.bucketq", first, second), [
      "bucketq top  file:./.bucketq  read-only  2026-01-01T00:01:02.000Z",
      "",
      "QUEUE     PENDING  SCHEDULED  CLAIMED  DONE  DEAD  PAUSED  IN/S  DONE/S  DEAD/S  OLDEST PENDING",
      "emails          6          0        2   110     2  no       3.5     5.0     0.5  1m00s",
      "reports         1          0        0     0     0  yes      0.0     0.0     0.0  7s",
      "webhooks        4          0        0     0     0  no       2.0     0.0     0.0  0s",
      "",
      "recent failures:",
      "ID     QUEUE   FAILED   ERROR",
      "job-x  emails  1s ago   timeout",
      "job-d  emails  32s ago  smtp refused",
      ""
    ].join("\n"))
  })

  it("a store with no queues and no failures says so", () => {
    assert.strictEqual(
      render("memory:", undefined, { at: start, source: "read-only", queues: [], oldestPending: new Map(), failures: [] }),
      "bucketq top  memory:  read-only  2026-01-01T00:00:00.000Z\n\nno queues\n\nno recent failures\n"
    )
  })

  it.live("the command refreshes the view of a store every second, as many times as --count says", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(path.join(tmpdir(), "bucketq-top-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      yield* fill(directory)
      const began = Date.now()
      const { code, stdout } = yield* bucketq(["--url", `file:${directory}`, "top", "--count", "2"])
      assert.strictEqual(code, 0)
      const frames = stdout.split("\n\nbucketq top  ")
      assert.strictEqual(frames.length, 2)
      for (const frame of frames) {
        const lines = frame.replace(/^bucketq top {2}/, "").split("\n")
        assert.match(lines[0]!, new RegExp(`^file:${directory}  read-only  \\d{4}-\\d\\d-\\d\\dT`))
        assert.match(lines[3]!, /^emails +2 +1 +1 +1 +1 {2}no +\S+ +\S+ +\S+ {2}\d+d\d\dh$/)
        assert.match(lines[4]!, /^reports +1 +0 +0 +0 +0 {2}yes/)
        assert.match(lines[8]!, /^job-d {2}emails {2}\d+d\d\dh ago {2}smtp refused$/)
      }
      assert.isAtLeast(Date.now() - began, 1000)
    }), 120_000)
})
