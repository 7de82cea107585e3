// Errors that explain themselves (issue 12): every error class of the public modules has a
// message built from its fields, so `String(error)` and `Cause.pretty` show what went wrong and
// not only which error it was (they used to print `InvalidQueueName: ` and nothing else).
import { assert, describe, it } from "@effect/vitest"
import { Cause } from "effect"
import * as InvalidOptionModule from "../src/InvalidOption.ts"
import * as Job from "../src/Job.ts"
import * as JobQueueError from "../src/JobQueueError.ts"
import * as KvError from "../src/KvError.ts"
import * as ObjectStoreError from "../src/ObjectStoreError.ts"
import * as Worker from "../src/Worker.ts"

/** An error, and the text each of its fields must show up as. */
type Sample = readonly [error: Error, fields: ReadonlyArray<string>]

const samples: Record<string, Sample> = {
  InvalidOption: [new JobQueueError.InvalidOption({ option: "priority", value: "NaN", reason: "must be a number" }), ["priority", "NaN", "must be a number"]],
  InvalidQueueName: [new JobQueueError.InvalidQueueName({ queue: "../etc", reason: "must not have a '.' or '..' segment" }), ["../etc", "'..' segment"]],
  InvalidJobId: [new JobQueueError.InvalidJobId({ id: "bad id!", reason: "1 to 128 characters" }), ["bad id!", "1 to 128 characters"]],
  DuplicateJobId: [new JobQueueError.DuplicateJobId({ id: "my-job-7" }), ["my-job-7"]],
  PayloadTooLarge: [new JobQueueError.PayloadTooLarge({ size: 70000001, limit: 67108864 }), ["70000001", "67108864"]],
  PayloadMissing: [new JobQueueError.PayloadMissing({ id: "01JOB", key: "payloads/01OBJ" }), ["01JOB", "payloads/01OBJ"]],
  InvalidPayload: [new JobQueueError.InvalidPayload({ detail: "Expected string, got 5" }), ["Expected string, got 5"]],
  ClaimLost: [new JobQueueError.ClaimLost({ id: "01LOST" }), ["01LOST"]],
  CancelRequested: [new JobQueueError.CancelRequested({ id: "01CANCEL" }), ["01CANCEL"]],
  JobNotFound: [new JobQueueError.JobNotFound({ id: "01GONE" }), ["01GONE"]],
  InvalidState: [new JobQueueError.InvalidState({ id: "01STATE", state: "Pending", expected: "Dead" }), ["01STATE", "Pending", "Dead"]],
  WriterUnavailable: [new JobQueueError.WriterUnavailable({ url: "ws://127.0.0.1:7450/rpc", reason: "Unreachable", attempts: 6, detail: "ECONNREFUSED" }), ["ws://127.0.0.1:7450/rpc", "6 attempts", "ECONNREFUSED"]],
  Unauthorized: [new JobQueueError.Unauthorized({ reason: "WrongToken" }), ["token"]],
  TransactionConflict: [new KvError.TransactionConflict({ attempts: 11 }), ["11"]],
  Fenced: [new KvError.Fenced({ epoch: 42, detail: "manifest 9 is newer" }), ["42", "manifest 9 is newer"]],
  Closed: [new KvError.Closed({ detail: "layer scope closed" }), ["layer scope closed"]],
  Corrupt: [new KvError.Corrupt({ key: "wal/0007", detail: "CRC mismatch at byte 12" }), ["wal/0007", "CRC mismatch at byte 12"]],
  ValueTooLarge: [new KvError.ValueTooLarge({ what: "value", size: 300000, limit: 262144 }), ["value", "300000", "262144"]],
  WriteConditionFailed: [new KvError.WriteConditionFailed({ key: "\u0002\u0001claimed-key", expectedPresent: true }), ["claimed-key", "present"]],
  ObjectStoreError: [
    ObjectStoreError.make("put", "wal/00000000000000000001", "Unavailable", { detail: "503 SlowDown" }),
    ["put", "wal/00000000000000000001", "Unavailable", "503 SlowDown", "could not be reached"]
  ],
  PreconditionFailed: [new ObjectStoreError.PreconditionFailed(), ["condition"]],
  NotFound: [new ObjectStoreError.NotFound(), ["does not exist"]],
  Conflict: [new ObjectStoreError.Conflict(), ["concurrent"]],
  Throttled: [new ObjectStoreError.Throttled(), ["slow down"]],
  Unavailable: [new ObjectStoreError.Unavailable(), ["could not be reached"]],
  Unknown: [new ObjectStoreError.Unknown(), ["unexpected"]],
  InvalidKey: [new ObjectStoreError.InvalidKey({ key: "a//b", reason: "InvalidSegment" }), ["a//b", "InvalidSegment"]],
  InvalidMetadata: [new ObjectStoreError.InvalidMetadata({ name: "Bad_Name", reason: "InvalidName" }), ["Bad_Name", "InvalidName"]],
  InvalidRange: [new ObjectStoreError.InvalidRange({ key: "runs/x", start: 10, end: 5 }), ["runs/x", "10", "5"]],
  InvalidStoreUrl: [new ObjectStoreError.InvalidStoreUrl({ url: "gopher://x", detail: "unknown scheme" }), ["gopher://x", "unknown scheme"]],
  PermanentFailure: [new Job.PermanentFailure({ reason: "no such address" }), ["no such address"]],
  JobTimeout: [new Worker.JobTimeout({ after: "1m 30s" }), ["1m 30s"]]
}

// ObjectStoreError's reason `Corrupt` and the KV's `Corrupt` share a tag: the store's is sampled here.
const storeCorrupt: Sample = [new ObjectStoreError.Corrupt(), ["not in the format"]]

/** Every error class the public modules export (a class whose instances are Errors). */
const exportedErrorClasses = (): ReadonlyArray<readonly [module: string, name: string, value: Function]> =>
  Object.entries({ InvalidOptionModule, JobQueueError, KvError, ObjectStoreError, Job, Worker }).flatMap(([module, exports]) =>
    Object.entries(exports).flatMap(([name, value]) =>
      typeof value === "function" && value.prototype instanceof Error ? [[module, name, value] as const] : []))

const assertExplains = (name: string, [error, fields]: Sample) => {
  const text = String(error)
  const pretty = Cause.pretty(Cause.fail(error))
  assert.isAbove(error.message.length, 0, `${name} has an empty message`)
  for (const field of fields) {
    assert.include(text, field, `String(${name})`)
    assert.include(pretty, field, `Cause.pretty of ${name}`)
  }
}

describe("every error has a message built from its fields", () => {
  for (const [name, sample] of Object.entries(samples)) {
    it(name, () => assertExplains(name, sample))
  }

  it("Corrupt (a store reason)", () => assertExplains("ObjectStoreError.Corrupt", storeCorrupt))

  it("an ObjectStoreError's message names the operation, the key and the reason, with what the reason means", () => {
    const error = ObjectStoreError.make("get", "payloads/01ABC", "NotFound")
    assert.strictEqual(error.message, `get of "payloads/01ABC" failed with NotFound (the key does not exist)`)
  })

  it("every exported error class is sampled here", () => {
    const missing = exportedErrorClasses().filter(([module, name, value]) =>
      !(name in samples && samples[name]![0] instanceof value) && !(module === "ObjectStoreError" && name === "Corrupt"))
    assert.deepStrictEqual(missing.map(([module, name]) => `${module}.${name}`), [])
  })
})
