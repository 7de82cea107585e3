// The `bucketq` CLI run as a real process against a directory store filled by the test (on a
// clock that stands still, with explicit ids: see fixtures/cliStore.ts), no writer running: every
// read answers from a read-only snapshot with exact output, leaves the store's files byte for
// byte as they were, and every change is refused, saying that a writer must be running.
import { spawn as spawnProcess } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { bucketq, bucketqHere } from "./utils/cli.ts"
import { s3Options } from "./utils/stores.ts"
import { Email, fill, fillStore } from "./fixtures/cliStore.ts"
import { filesOf } from "./utils/files.ts"

const directory = mkdtempSync(path.join(tmpdir(), "bucketq-cli-"))
const url = `file:${directory}`
const copies: Array<string> = []

beforeAll(() => Effect.runPromise(fill(directory)), 60_000)
afterAll(() => {
  for (const dir of [directory, ...copies]) rmSync(dir, { recursive: true, force: true })
})

/** A copy of the filled store, to damage. */
const copy = () => {
  const target = mkdtempSync(path.join(tmpdir(), "bucketq-cli-copy-"))
  copies.push(target)
  cpSync(directory, target, { recursive: true })
  return target
}

/** In a process of its own. */
const spawn = (...args: ReadonlyArray<string>) => bucketq(["--url", url, ...args])
/** In this process. */
const run = (...args: ReadonlyArray<string>) => bucketqHere(["--url", url, ...args])

describe("bucketq CLI with no writer running", () => {
  it.live("queues prints every queue with its jobs by state and whether it is paused", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* spawn("queues")
      assert.strictEqual(stdout, [
        "QUEUE    PENDING  SCHEDULED  CLAIMED  DONE  DEAD  PAUSED",
        "emails         2          1        1     1     1  no",
        "reports        1          0        0     0     0  yes",
        ""
      ].join("\n"))
      assert.strictEqual(code, 0)
    }), 60_000)

  it.live("stats prints the totals of the store and says they come from a read-only snapshot; with a queue, its counters", () =>
    Effect.gen(function*() {
      const totals = yield* run("stats")
      assert.strictEqual(totals.stdout, [
        "source:    read-only",
        "queues:    2",
        "paused:    1",
        "pending:   3",
        "scheduled: 1",
        "claimed:   1",
        "done:      1",
        "dead:      1",
        ""
      ].join("\n"))
      const one = yield* run("stats", "reports")
      assert.strictEqual(one.stdout, "queue:     reports\npending:   1\nscheduled: 0\nclaimed:   0\ndone:      0\ndead:      0\n")
    }), 60_000)

  it.live("list prints a page of pending jobs in claim order and the cursor of the next, which lists the rest", () =>
    Effect.gen(function*() {
      const first = yield* run("list", "emails", "pending", "--limit", "1")
      const lines = first.stdout.split("\n")
      assert.deepStrictEqual(lines.slice(0, 2), [
        "ID     PRIORITY  ATTEMPTS  ENQUEUED                  DETAIL",
        "job-a       100  0/2       2026-01-01T00:00:00.000Z"
      ])
      const cursor = /^next page: --cursor (\S+)$/.exec(lines[2]!)![1]!
      const second = yield* run("list", "emails", "Pending", "--limit", "1", "--cursor", cursor)
      assert.strictEqual(second.stdout, [
        "ID     PRIORITY  ATTEMPTS  ENQUEUED                  DETAIL",
        "job-b      1000  0/2       2026-01-01T00:00:01.000Z",
        ""
      ].join("\n"))
    }), 60_000)

  it.live("list of scheduled, claimed and done jobs says when each runs, was claimed or completed", () =>
    Effect.gen(function*() {
      const header = "ID     PRIORITY  ATTEMPTS  ENQUEUED                  DETAIL\n"
      assert.strictEqual(
        (yield* run("list", "emails", "scheduled")).stdout,
        header + "job-c      1000  0/2       2026-01-01T00:00:01.000Z  runs at 2026-01-01T01:00:01.000Z\n"
      )
      assert.strictEqual(
        (yield* run("list", "emails", "claimed")).stdout,
        header + "job-f         3  1/2       2026-01-01T00:00:05.000Z  claimed at 2026-01-01T00:00:05.000Z\n"
      )
      assert.strictEqual(
        (yield* run("list", "emails", "done")).stdout,
        header + "job-e         2  1/2       2026-01-01T00:00:01.000Z  completed at 2026-01-01T00:00:05.000Z\n"
      )
      assert.strictEqual((yield* run("list", "reports", "dead")).stdout, "no dead jobs in reports\n")
    }), 60_000)

  it.live("show prints the record, the payload decoded as JSON, and the history of attempts", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* run("show", "job-d")
      assert.strictEqual(stdout, [
        "id:         job-d",
        "queue:      emails",
        "status:     Dead",
        "priority:   1",
        "attempts:   2/2",
        "enqueued:   2026-01-01T00:00:01.000Z",
        "failed:     2026-01-01T00:00:05.000Z",
        "last error: smtp refused",
        "payload:    {\"to\":\"d@example.com\"}",
        "history:",
        "#  CLAIMED                   ENDED                     OUTCOME       ERROR",
        "1  2026-01-01T00:00:02.000Z  2026-01-01T00:00:03.000Z  Retried       timeout",
        "2  2026-01-01T00:00:03.000Z  2026-01-01T00:00:05.000Z  DeadLettered  smtp refused",
        ""
      ].join("\n"))
      assert.strictEqual(code, 0)
    }), 60_000)

  it.live("dead prints the dead jobs of a queue with when and why they failed", () =>
    Effect.gen(function*() {
      const { stdout } = yield* run("dead", "emails")
      assert.strictEqual(stdout, [
        "ID     ATTEMPTS  FAILED                    ERROR",
        "job-d  2/2       2026-01-01T00:00:05.000Z  smtp refused",
        ""
      ].join("\n"))
    }), 60_000)

  it.live("--json prints the same data as JSON, payloads decoded", () =>
    Effect.gen(function*() {
      const queues = JSON.parse((yield* run("--json", "queues")).stdout)
      assert.deepStrictEqual(queues[1], { queue: "reports", pending: 1, scheduled: 0, claimed: 0, done: 0, dead: 0, paused: true })
      const job = JSON.parse((yield* run("show", "job-a", "--json")).stdout)
      assert.deepStrictEqual([job.id, job.status, job.payload], ["job-a", "Pending", { to: "a@example.com" }])
    }), 60_000)

  it.live("show of an unknown job, a bad state and a store that does not exist fail with exit code 1 and say why", () =>
    Effect.gen(function*() {
      const unknown = yield* spawn("show", "job-zz")
      assert.strictEqual(unknown.code, 1)
      assert.strictEqual(unknown.stdout, "")
      assert.include(unknown.stderr, "no job job-zz")
      const state = yield* run("list", "emails", "bogus")
      assert.strictEqual(state.code, 1)
      assert.include(state.stderr, "a state is one of Pending, Scheduled, Claimed, Done, Dead")
      const missing = yield* bucketqHere(["--url", `file:${directory}-nothing-here`, "queues"])
      assert.strictEqual(missing.code, 1)
      assert.include(missing.stderr, `there is no store at file:${directory}-nothing-here`)
    }), 60_000)

  it.live("the store is named by BUCKETQ_URL when --url is left out", () =>
    Effect.gen(function*() {
      const { stdout } = yield* bucketq(["stats", "reports"], { BUCKETQ_URL: url })
      assert.strictEqual(stdout.split("\n")[1], "pending:   1")
    }), 60_000)

  it.live("pause, resume, requeue and cancel fail without a running writer, saying one must run, and change nothing", () =>
    Effect.gen(function*() {
      const before = filesOf(directory)
      const commands = [["pause", "emails"], ["resume", "reports"], ["requeue", "job-d"], ["requeue", "--all", "emails"], ["cancel", "job-a"]]
      for (const [i, args] of commands.entries()) {
        const { code, stderr, stdout } = yield* (i === 0 ? spawn(...args) : run(...args))
        assert.strictEqual(code, 1, args.join(" "))
        assert.strictEqual(stdout, "")
        assert.include(stderr, `no writer is running for ${url}: this command changes the queue, which only its running writer does`)
      }
      assert.deepStrictEqual(filesOf(directory), before)
    }), 120_000)

  it.live("reads leave every file of the store byte for byte as it was", () =>
    Effect.gen(function*() {
      const before = filesOf(directory)
      for (const args of [["queues"], ["list", "emails", "dead"], ["show", "job-c"], ["verify"]]) {
        assert.strictEqual((yield* run(...args)).code, 0, args.join(" "))
      }
      assert.deepStrictEqual(filesOf(directory), before)
    }), 120_000)

  it.live("verify reads every object and log part, finds nothing damaged, and says what the reads cost", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* run("verify")
      assert.strictEqual(code, 0)
      const lines = stdout.split("\n")
      assert.match(lines[0]!, /^objects:   \d+ manifests, 0 runs, 0 WAL segments, 0 payload objects, 0 writer record, \d+ WAL fences, 0 other$/)
      assert.match(lines[1]!, /^local log: 1 parts, \d+ records$/)
      assert.match(lines[2]!, /^read:      \d+ bytes in \d+ GET and 1 LIST requests \(about \$0\.\d{6} at S3 Standard request prices\)$/)
      assert.match(lines[3]!, /^state:     epoch 1, \d+ commits, \d+ keys$/)
      assert.strictEqual(lines[4], "damaged:   none")
    }), 60_000)

  it.live("verify names a damaged manifest and a damaged log part, and exits with 1", () =>
    Effect.gen(function*() {
      const damaged = copy()
      const manifest = path.join(damaged, "manifest%", "00000000000000000001")
      const bytes = readFileSync(manifest)
      bytes[bytes.length - 6]! ^= 0xff
      writeFileSync(manifest, bytes)
      const partFile = path.join(damaged, "%wal", "00000000000000000001", "00000000000000000001.log")
      const part = readFileSync(partFile)
      part[200]! ^= 0xff
      writeFileSync(partFile, part)
      const { code, stderr, stdout } = yield* bucketq(["--url", `file:${damaged}`, "verify"])
      assert.strictEqual(code, 1)
      const lines = stdout.split("\n")
      assert.strictEqual(lines[3], "state:     does not replay")
      assert.strictEqual(lines[4], "damaged:   2")
      assert.strictEqual(lines[5], "  manifest/00000000000000000001: CRC32 mismatch")
      assert.match(lines[6]!, /^ {2}%wal\/00000000000000000001\/00000000000000000001\.log: frames do not check from here/)
      assert.include(stderr, `2 damaged items in file:${damaged}`)
    }), 60_000)

  it.live("an S3 store is read the same way, named by s3://<bucket>/<prefix> with the S3 settings of the environment", () =>
    Effect.gen(function*() {
      const prefix = `cli-${process.pid}-${Math.floor(performance.timeOrigin)}`
      const options = s3Options(prefix)
      yield* fillStore(ObjectStore.layerS3(options))
      const env = process.env
      const { code, stdout } = yield* bucketqHere(["--url", `s3://${options.bucket}/${prefix}`, "queues"], {
        BUCKETQ_S3_ENDPOINT: options.endpoint!,
        BUCKETQ_S3_QUOTE_IF_MATCH: env.S3_QUOTE_IF_MATCH ?? "true",
        AWS_REGION: options.region!,
        AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID ?? "",
        AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY ?? ""
      })
      assert.strictEqual(code, 0)
      assert.strictEqual(stdout, (yield* run("queues")).stdout)
    }), 60_000)

  it.live("verify names a job whose payload object is gone", () =>
    Effect.gen(function*() {
      const target = mkdtempSync(path.join(tmpdir(), "bucketq-cli-payload-"))
      copies.push(target)
      const storeLayer = ObjectStore.layerFileSystem({ directory: target })
      yield* Effect.scoped(Effect.gen(function*() {
        const queue = yield* JobQueue.JobQueue
        yield* queue.enqueue(Email, { to: "x".repeat(100) }, { id: "big" })
      }).pipe(Effect.provide(JobQueue.layer({ writerRecord: false, offloadThreshold: 16 }).pipe(Layer.provide(Kv.layer()), Layer.provide(storeLayer)))))
      const object = yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* ObjectStore.ObjectStore
        const [entry] = yield* Stream.runCollect(store.list("payloads/"))
        yield* store.delete(entry!.key)
        return entry!.key
      }).pipe(Effect.provide(storeLayer)))
      const { code, stdout } = yield* bucketqHere(["--url", `file:${target}`, "verify"])
      assert.strictEqual(code, 1)
      assert.deepStrictEqual(stdout.split("\n").slice(4), ["damaged:   1", `  job big: its payload object ${object} is missing`, ""])
    }), 60_000)

  it.live("serve-ui serves the read-only page of the store, whose endpoints show the queues", () =>
    Effect.gen(function*() {
      const child = spawnProcess(process.execPath, ["--import", "tsx", "bin/bucketq.ts", "--url", url, "serve-ui", "--port", "0"], {
        cwd: fileURLToPath(new URL("..", import.meta.url))
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const line = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) => {
          let out = ""
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString("utf8")
            const served = /^serving (\S+) \(read-only\); stop with Ctrl-C$/m.exec(out)
            if (served !== null) resolve(served[1]!)
          })
          child.once("exit", () => reject(new Error(`serve-ui exited: ${out}`)))
        })
      )
      const body = yield* Effect.promise(() => fetch(`${line}api/queues`).then((response) => response.json()))
      const emails = (body as { queues: ReadonlyArray<{ queue: string; pending: number; dead: number }> }).queues.find((q) => q.queue === "emails")
      assert.deepStrictEqual([emails?.pending, emails?.dead], [2, 1])
    }), 60_000)
})
