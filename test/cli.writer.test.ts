// The `bucketq` CLI with a real writer process running (test/fixtures/queueServer.ts: a queue on a
// directory store served by QueueServer, its address in the writer record): changes go through the
// writer, reads too; a wrong token is refused; reads without a token fall back to a read-only
// snapshot that does not fence the writer; once the writer is killed, changes are refused again.
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type Child, cleanUp, startChild } from "./utils/child.ts"
import { bucketq, bucketqHere } from "./utils/cli.ts"

const token = "cli-writer-token"
const children: Array<Child> = []
const directories: Array<string> = []

afterEach(() => cleanUp(children, directories))

/** A writer process serving a new directory store; its address and a way to send it commands. */
const startWriter = Effect.promise(async () => {
  const directory = mkdtempSync(path.join(tmpdir(), "bucketq-cli-writer-"))
  directories.push(directory)
  const child = startChild("queueServer.ts", [directory, "0", token])
  children.push(child)
  const line = await child.waitForLine((l) => l.startsWith("listening "))
  /** Sends a command and waits for the line that says it was done. */
  const send = (command: string, done: string) =>
    Effect.promise(() => {
      child.process.stdin.write(`${command}\n`)
      return child.waitForLine((l) => l === done)
    })
  return { child, url: `file:${directory}`, address: `ws://127.0.0.1:${line.split(" ")[1]}/rpc`, send }
})

describe("bucketq CLI with a writer running", () => {
  it.live("requeue, pause, resume and cancel go through the running writer, and reads show what it did", () =>
    Effect.gen(function*() {
      const writer = yield* startWriter
      yield* writer.send("enq j1", "enq j1")
      yield* writer.send("enq j2", "enq j2")
      yield* writer.send("dead", "dead j1")
      const here = (...args: ReadonlyArray<string>) => bucketqHere(["--url", writer.url, ...args], { BUCKETQ_TOKEN: token })
      assert.strictEqual((yield* here("stats")).stdout.split("\n")[0], `source:    writer ${writer.address}`)
      // a process of its own, its token from the environment
      const requeued = yield* bucketq(["--url", writer.url, "requeue", "j1"], { BUCKETQ_TOKEN: token })
      assert.deepStrictEqual([requeued.code, requeued.stdout], [0, "requeued j1\n"])
      const shown = (yield* here("show", "j1")).stdout.split("\n")
      assert.strictEqual(shown[2], "status:     Pending")
      assert.match(shown.at(-2)!, /^2 {2}\S+ {2}\S+ {2}Requeued/)
      assert.strictEqual((yield* here("pause", "tasks")).stdout, "paused tasks\n")
      assert.strictEqual((yield* here("queues")).stdout, [
        "QUEUE  PENDING  SCHEDULED  CLAIMED  DONE  DEAD  PAUSED",
        "tasks        2          0        0     0     0  yes",
        ""
      ].join("\n"))
      assert.strictEqual((yield* here("resume", "tasks")).stdout, "resumed tasks\n")
      assert.strictEqual((yield* here("cancel", "j2")).stdout, "cancelled j2\n")
      const gone = yield* here("cancel", "j2")
      assert.strictEqual(gone.code, 1)
      assert.include(gone.stderr, "no job j2")
      yield* writer.send("dead", "dead j1")
      assert.strictEqual((yield* here("requeue", "--all", "tasks")).stdout, "requeued 1 dead job of tasks\n")
      assert.strictEqual((yield* here("stats", "tasks")).stdout.split("\n")[1], "pending:   1")
    }), 120_000)

  it.live("a wrong token is refused and changes nothing; reads without a token read a snapshot and do not fence the writer", () =>
    Effect.gen(function*() {
      const writer = yield* startWriter
      yield* writer.send("enq j1", "enq j1")
      const wrong = yield* bucketqHere(["--url", writer.url, "pause", "tasks"], { BUCKETQ_TOKEN: "not-the-token" })
      assert.strictEqual(wrong.code, 1)
      assert.include(wrong.stderr, `the writer at ${writer.address} refused BUCKETQ_TOKEN`)
      const noToken = yield* bucketqHere(["--url", writer.url, "pause", "tasks"])
      assert.strictEqual(noToken.code, 1)
      assert.include(noToken.stderr, "BUCKETQ_TOKEN is not set")
      const snapshot = yield* bucketq(["--url", writer.url, "stats"])
      assert.deepStrictEqual(snapshot.stdout.split("\n").slice(0, 4), ["source:    read-only", "queues:    1", "paused:    0", "pending:   1"])
      // the writer goes on: it commits, and its queue was never paused
      yield* writer.send("enq j2", "enq j2")
      const after = yield* bucketqHere(["--url", writer.url, "queues"], { BUCKETQ_TOKEN: token })
      assert.strictEqual(after.stdout.split("\n")[1], "tasks        2          0        0     0     0  no")
    }), 120_000)

  it.live("once the writer is killed, its record left behind, changes are refused and reads come from a snapshot", () =>
    Effect.gen(function*() {
      const writer = yield* startWriter
      yield* writer.send("enq j1", "enq j1")
      writer.child.process.kill("SIGKILL")
      yield* Effect.promise(() => writer.child.exited)
      const refused = yield* bucketq(["--url", writer.url, "pause", "tasks"], { BUCKETQ_TOKEN: token })
      assert.strictEqual(refused.code, 1)
      assert.include(refused.stderr, `no writer is running for ${writer.url}`)
      const read = yield* bucketqHere(["--url", writer.url, "stats", "tasks"], { BUCKETQ_TOKEN: token })
      assert.strictEqual(read.stdout.split("\n")[1], "pending:   1")
      const totals = yield* bucketqHere(["--url", writer.url, "stats"], { BUCKETQ_TOKEN: token })
      assert.strictEqual(totals.stdout.split("\n")[0], "source:    read-only")
    }), 120_000)
})
