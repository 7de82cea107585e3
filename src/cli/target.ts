/**
 * What the `bucketq` CLI talks to: the store's running writer when there is one, else the store
 * itself, opened read-only.
 *
 * - **A running writer** is one whose writer record (`WriterRecord`) names an address where a
 *   `QueueServer` answers with the token `BUCKETQ_TOKEN` (read through `Config.redacted`). The
 *   record alone does not prove it: a writer killed with -9 leaves its record behind, so the CLI
 *   asks the address (a cheap read, a few short retries) before it takes the writer for running.
 *   Reads and every mutating command go there.
 * - **No writer running**: reads come from `Kv.makeReadOnly` + `JobQueue.makeReadOnly`, which
 *   write nothing and fence no one; a mutating command fails with `CliFailure` saying that a
 *   writer must be running. The CLI never opens the store for writing: doing so would fence the
 *   writer it cannot see, or be fenced by the next one.
 *
 * @internal
 */
import { Config, Effect, Option, type Scope } from "effect"
import * as JobQueue from "../JobQueue.ts"
import { ObjectStore } from "../ObjectStore.ts"
import * as StoreContext from "../ObjectStore/context.ts"
import * as QueueClient from "../QueueClient.ts"
import * as WriterRecord from "../WriterRecord.ts"
import { CliFailure, failWith } from "./failure.ts"

/** Where the CLI's reads and writes go. */
export interface Target {
  /** `writer <address>` or `read-only`: where the answers come from, for people. */
  readonly source: string
  /** The queue's reads; with no writer, a snapshot loaded now (see `reload`). */
  readonly reader: JobQueue.Reader
  /** The reads again, current: the same remote queue, or a new read-only snapshot. */
  readonly reload: Effect.Effect<JobQueue.Reader, CliFailure, Scope.Scope>
  /** The running writer's queue, to change things through; none when no writer runs. */
  readonly writer: Option.Option<JobQueue.Service>
}

/** A snapshot of the store, read-only: see `Kv.makeReadOnly`. */
export const readOnlyReader = JobQueue.openReadOnly.pipe(failWith("could not read the store"))

/** Retries of the probe of a recorded address: a live writer answers at once, a dead one is refused at once. */
const probeRetry = { maxAttempts: 3, base: "100 millis", max: "300 millis" } as const

/**
 * The running writer's queue, if its record names an address that answers; none otherwise.
 * `Unauthorized` fails with why; so does a missing token when the command must change things
 * (a read then goes to a read-only snapshot instead).
 */
const runningWriter = (mutating: boolean) => Effect.gen(function*() {
  const store = yield* ObjectStore
  const record = yield* WriterRecord.read(store).pipe(failWith("could not read the writer record"))
  const address = Option.flatMap(record, (r) => r.address)
  if (Option.isNone(address)) return Option.none<{ queue: JobQueue.Service; address: string }>()
  const token = yield* Config.option(Config.Redacted("BUCKETQ_TOKEN")).pipe(failWith("could not read BUCKETQ_TOKEN"))
  if (Option.isNone(token)) {
    if (!mutating) return Option.none()
    return yield* new CliFailure({
      message: `the writer record names a writer at ${address.value}, and BUCKETQ_TOKEN is not set: set it to the writer's token`
    })
  }
  const queue = yield* QueueClient.make({ url: address.value, token: token.value, retry: probeRetry }).pipe(
    failWith(`could not connect to the writer at ${address.value}`)
  )
  const probe = yield* Effect.exit(queue.queues())
  if (probe._tag === "Success") return Option.some({ queue, address: address.value })
  const refused = probe.cause.reasons.some((r) => r._tag === "Fail" && r.error._tag === "Unauthorized")
  if (refused) return yield* new CliFailure({ message: `the writer at ${address.value} refused BUCKETQ_TOKEN` })
  return Option.none()
})

/**
 * The target of the store in context: its running writer, or a read-only snapshot of it.
 * `mutating`: the command changes things, so without a running writer it fails with why.
 */
export const connect = (options: { readonly mutating: boolean; readonly url: string }) =>
  Effect.gen(function*() {
    const writer = yield* runningWriter(options.mutating)
    if (Option.isSome(writer)) {
      const { address, queue } = writer.value
      return { source: `writer ${address}`, reader: queue, reload: Effect.succeed(queue), writer: Option.some(queue) } satisfies Target
    }
    if (options.mutating) {
      return yield* new CliFailure({
        message: `no writer is running for ${options.url}: this command changes the queue, which only its running writer ` +
          `does (start it with a QueueServer, set BUCKETQ_TOKEN, and run the command again); the CLI never opens the store for writing`
      })
    }
    // the store goes with the reload, and its local log if it has one: the snapshot reads both
    const reload = Effect.provide(readOnlyReader, yield* StoreContext.current)
    return { source: "read-only", reader: yield* reload, reload, writer: Option.none() } satisfies Target
  })
