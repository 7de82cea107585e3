/**
 * The `bucketq` commands (`effect/cli`), against the store named by `--url` (default
 * `BUCKETQ_URL`, then `file:./.bucketq`, read as `QueueLive` reads it: `ObjectStore.layerConfig`).
 *
 * Reads (`queues`, `stats`, `list`, `show`, `dead`, `top`, `serve-ui`) go to the running writer
 * when there is one, else to a read-only snapshot of the store; changes (`requeue`, `cancel`, `pause`,
 * `resume`) go to the running writer only (see `target.ts`). `verify` reads the store itself.
 * Output is plain text (tables, `key: value` lines); `--json` prints the same data as JSON.
 * A failure prints one sentence saying why and exits with 1.
 *
 * @internal
 */
import * as fs from "node:fs"
import { Config, ConfigProvider, Console, Context, Effect, Layer, Option, type Scope } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { Attempt, JobRecord, JobStatus } from "../../schema/JobRecord.ts"
import type { ListedRecord } from "../JobQueue.ts"
import * as ObjectStore from "../ObjectStore.ts"
import { parseStoreUrl } from "../ObjectStore/url.ts"
import * as Ui from "../Ui.ts"
import { CliFailure, failWith } from "./failure.ts"
import * as Format from "./format.ts"
import { connect, type Target } from "./target.ts"
import * as Top from "./top.ts"
import * as Verify from "./verify.ts"

/** The version `--version` prints. */
export const version = "0.3.0"

const root = Command.make("bucketq").pipe(
  Command.withSharedFlags({
    url: Flag.String("url").pipe(
      Flag.withDescription("the store: file:<directory>, s3://<bucket>/<prefix> or memory: (default: BUCKETQ_URL, then file:./.bucketq)"),
      Flag.withFallbackConfig(Config.String("BUCKETQ_URL")),
      Flag.withDefault("file:./.bucketq")
    ),
    json: Flag.Boolean("json").pipe(Flag.withDescription("print JSON instead of text"), Flag.withDefault(false))
  }),
  Command.withDescription("Inspect and operate a bucketq store")
)

/** The store named by `url`, with the other settings (S3) from the environment, as `QueueLive` reads them. */
export const storeLayer = (url: string) =>
  ObjectStore.layerConfig.pipe(Layer.provide(ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ BUCKETQ_URL: url }), { asPrimary: true })))

/**
 * Provides the store named by `url`. Commands turn their own errors into `CliFailure`s, so what
 * is left is the store's: said as such.
 */
const provideStore = (url: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.andThen(existing(url), effect.pipe(Effect.provide(storeLayer(url)), failWith(`could not open the store ${url}`)))

/**
 * Fails unless a `file:` store's directory exists: opening the directory backend creates it (and
 * its working folders), and the CLI creates nothing.
 */
const existing = (url: string) =>
  Effect.suspend(() => {
    const location = parseStoreUrl(url)
    if (location._tag === "Success" && location.success._tag === "FileSystem" && !fs.existsSync(location.success.directory)) {
      return Effect.fail(new CliFailure({ message: `there is no store at ${url}: the directory ${location.success.directory} does not exist` }))
    }
    return Effect.void
  })

/** What a command prints: its text, and its data for `--json`. */
interface Output {
  readonly text: string
  readonly json: unknown
}

/** Prints `output` as text or JSON. */
const print = (output: Output, json: boolean) => Console.log(json ? Format.toJson(output.json, 2) : output.text.replace(/\n$/, ""))

/** Runs `f` against the target of the store (`mutating`: the running writer is needed) and prints what it gives. */
const withTarget = <R>(mutating: boolean, f: (target: Target) => Effect.Effect<Output, CliFailure, R | Scope.Scope>) =>
  Effect.gen(function*() {
    const { json, url } = yield* root
    const output = yield* Effect.scoped(
      Effect.flatMap(connect({ mutating, url }), f).pipe(
        provideStore(url)
      )
    )
    yield* print(output, json)
  })

/** The running writer's queue of a target (connect with `mutating` guarantees there is one). */
const writerOf = (target: Target) => Option.getOrThrow(target.writer)

// ---- JSON forms -------------------------------------------------------------------------------

const decoded = (bytes: Uint8Array): unknown => {
  const text = Format.payload(bytes)
  return text.startsWith("base64:") ? text : JSON.parse(text)
}

/** A record as JSON: payload and result decoded where they can be. */
const recordJson = (record: ListedRecord) => ({
  ...record,
  payload: decoded(record.payload),
  ...(record.result === undefined ? {} : { result: decoded(record.result) })
})

const queueArgument = Argument.String("queue").pipe(Argument.withDescription("the queue's name"))
const idArgument = Argument.String("id").pipe(Argument.withDescription("the job's id"))

// ---- queues and stats -------------------------------------------------------------------------

const queues = Command.make("queues", {}, () =>
  withTarget(false, (target) =>
    Effect.map(target.reader.queues().pipe(failWith("could not list the queues")), (infos) => ({
      json: infos,
      text: infos.length === 0
        ? "no queues\n"
        : Format.table(
          ["QUEUE", ...Format.states.map((s) => s.toUpperCase()), "PAUSED"],
          infos.map((info) => [info.queue, ...Format.counts(info), info.paused ? "yes" : "no"])
        )
    })))).pipe(Command.withDescription("every queue with its jobs by state"))

const stats = Command.make("stats", { queue: queueArgument.pipe(Argument.optional) }, ({ queue }) =>
  withTarget(false, (target) =>
    Option.isSome(queue)
      ? Effect.map(target.reader.stats(queue.value).pipe(failWith(`could not read the counters of ${queue.value}`)), (s) => ({
        json: s,
        text: Format.fields([
          ["queue", s.queue],
          ["pending", String(s.pending)],
          ["scheduled", String(s.scheduled)],
          ["claimed", String(s.claimed)],
          ["done", String(s.done)],
          ["dead", String(s.dead)]
        ])
      }))
      : Effect.map(target.reader.queues().pipe(failWith("could not list the queues")), (infos) => {
        const total = (pick: (s: typeof infos[number]) => number) => infos.reduce((sum, s) => sum + pick(s), 0)
        const totals = {
          queues: infos.length,
          paused: infos.filter((s) => s.paused).length,
          pending: total((s) => s.pending),
          scheduled: total((s) => s.scheduled),
          claimed: total((s) => s.claimed),
          done: total((s) => s.done),
          dead: total((s) => s.dead)
        }
        return {
          json: { source: target.source, ...totals },
          text: Format.fields([["source", target.source], ...Object.entries(totals).map(([k, v]) => [k, String(v)] as const)])
        }
      }))).pipe(Command.withDescription("the counters of one queue, or the totals of the store"))

// ---- list, show, dead -------------------------------------------------------------------------

/** A state given in any case (`pending`, `Dead`...). */
const stateArgument = Argument.String("state").pipe(
  Argument.withDescription("Pending, Scheduled, Claimed, Done or Dead (any case)"),
  Argument.mapTryCatch(
    (text) => {
      const state = Format.states.find((s) => s.toLowerCase() === text.toLowerCase())
      if (state === undefined) throw new Error("unknown")
      return state as JobStatus
    },
    () => `a state is one of ${Format.states.join(", ")} (any case)`
  )
)

const detailOf = (job: ListedRecord): string => {
  switch (job.status) {
    case "Scheduled":
      return job.runAt === undefined ? "" : `runs at ${Format.instant(job.runAt)}`
    case "Claimed":
      return job.claimedAt === undefined ? "" : `claimed at ${Format.instant(job.claimedAt)}`
    case "Done":
      return job.completedAt === undefined ? "" : `completed at ${Format.instant(job.completedAt)}`
    default:
      return job.lastError ?? ""
  }
}

const limitFlag = Flag.Int("limit").pipe(Flag.withDescription("most jobs shown (default 100)"), Flag.withDefault(100))

const list = Command.make("list", {
  queue: queueArgument,
  state: stateArgument,
  limit: limitFlag,
  cursor: Flag.String("cursor").pipe(Flag.withDescription("the cursor a previous page printed"), Flag.optional)
}, ({ cursor, limit, queue, state }) =>
  withTarget(false, (target) =>
    Effect.map(
      target.reader.list(queue, state, { limit, ...(Option.isSome(cursor) ? { cursor: cursor.value } : {}) }).pipe(
        failWith(`could not list the ${state} jobs of ${queue}`)
      ),
      (page) => ({
        json: { jobs: page.jobs.map(recordJson), cursor: Option.getOrNull(page.cursor) },
        text: (page.jobs.length === 0 ? `no ${state.toLowerCase()} jobs in ${queue}\n` : Format.table(
          ["ID", "PRIORITY", "ATTEMPTS", "ENQUEUED", "DETAIL"],
          page.jobs.map((job) => [job.id, Format.num(job.priority), `${job.attempts}/${job.maxAttempts}`, Format.instant(job.enqueuedAt), detailOf(job)])
        )) + (Option.isSome(page.cursor) ? `next page: --cursor ${page.cursor.value}\n` : "")
      })
    ))).pipe(Command.withDescription("a page of the jobs of a queue in one state"))

const historyTable = (history: ReadonlyArray<Attempt>) =>
  Format.table(
    ["#", "CLAIMED", "ENDED", "OUTCOME", "ERROR"],
    history.map((a, i) => [Format.num(i + 1), Format.instant(a.claimedAt), Format.instant(a.endedAt), a.outcome, a.error ?? ""])
  )

const recordFields = (job: JobRecord): Array<readonly [string, string]> => {
  const optional = (key: string, value: string | undefined): Array<readonly [string, string]> => value === undefined ? [] : [[key, value]]
  const at = (ms: number | undefined) => (ms === undefined ? undefined : Format.instant(ms))
  return [
    ["id", job.id],
    ["queue", job.queue],
    ["status", job.status],
    ["priority", String(job.priority)],
    ["attempts", `${job.attempts}/${job.maxAttempts}`],
    ["enqueued", Format.instant(job.enqueuedAt)],
    ...optional("run at", at(job.runAt)),
    ...optional("claimed", at(job.claimedAt)),
    ...optional("completed", at(job.completedAt)),
    ...optional("failed", at(job.failedAt)),
    ...optional("last error", job.lastError),
    ...optional("dedup key", job.dedupKey),
    ...optional("cancel requested", job.cancelRequested === true ? "yes" : undefined),
    ...optional("headers", Object.keys(job.headers).length === 0 ? undefined : JSON.stringify(job.headers)),
    ...optional("payload version", job.payloadVersion === undefined ? undefined : String(job.payloadVersion)),
    ["payload", Format.payload(job.payload)],
    ...optional("result", job.result === undefined ? undefined : Format.payload(job.result))
  ]
}

const show = Command.make("show", { id: idArgument }, ({ id }) =>
  withTarget(false, (target) =>
    Effect.gen(function*() {
      const found = yield* target.reader.get(id).pipe(failWith(`could not read job ${id}`))
      if (Option.isNone(found)) return yield* new CliFailure({ message: `no job ${id} (acknowledged jobs are deleted unless their definition keeps them)` })
      const job = found.value
      const history = job.history ?? []
      return {
        json: recordJson(job),
        text: Format.fields(recordFields(job)) + (history.length === 0 ? "history: none\n" : `history:\n${historyTable(history)}`)
      }
    }))).pipe(Command.withDescription("one job: its record, payload (as JSON where it decodes) and history"))

const dead = Command.make("dead", {
  queue: queueArgument,
  limit: limitFlag,
  after: Flag.String("after").pipe(Flag.withDescription("the id the previous page ended with"), Flag.optional)
}, ({ after, limit, queue }) =>
  withTarget(false, (target) =>
    Effect.map(
      target.reader.deadJobs(queue, { limit, ...(Option.isSome(after) ? { after: after.value } : {}) }).pipe(
        failWith(`could not list the dead jobs of ${queue}`)
      ),
      (jobs) => ({
        json: jobs.map(recordJson),
        text: (jobs.length === 0 ? `no dead jobs in ${queue}\n` : Format.table(
          ["ID", "ATTEMPTS", "FAILED", "ERROR"],
          jobs.map((job) => [job.id, `${job.attempts}/${job.maxAttempts}`, job.failedAt === undefined ? "-" : Format.instant(job.failedAt), job.lastError ?? ""])
        )) + (jobs.length === limit ? `next page: --after ${jobs[jobs.length - 1]!.id}\n` : "")
      })
    ))).pipe(Command.withDescription("the dead jobs of a queue, with their errors"))

// ---- changes: through the running writer -------------------------------------------------------

const requeue = Command.make("requeue", {
  id: idArgument.pipe(Argument.optional),
  all: Flag.String("all").pipe(Flag.withDescription("requeue every dead job of this queue"), Flag.optional)
}, ({ all, id }) =>
  Effect.gen(function*() {
    if (Option.isSome(id) === Option.isSome(all)) {
      return yield* new CliFailure({ message: "requeue takes a job id, or --all <queue>, not both" })
    }
    yield* withTarget(true, (target) =>
      Option.isSome(all)
        ? Effect.map(writerOf(target).requeueDead(all.value, { all: true }).pipe(failWith(`could not requeue the dead jobs of ${all.value}`)), (n) => ({
          json: { queue: all.value, requeued: n },
          text: `requeued ${n} dead job${n === 1 ? "" : "s"} of ${all.value}\n`
        }))
        : Effect.as(writerOf(target).requeueDead(Option.getOrThrow(id)).pipe(failWith(`could not requeue ${Option.getOrThrow(id)}`)), {
          json: { id: Option.getOrThrow(id), requeued: true },
          text: `requeued ${Option.getOrThrow(id)}\n`
        }))
  })).pipe(Command.withDescription("make a dead job (or every dead job of a queue) pending again; needs the running writer"))

const cancel = Command.make("cancel", { id: idArgument }, ({ id }) =>
  withTarget(true, (target) =>
    Effect.gen(function*() {
      const outcome = yield* writerOf(target).cancel(id).pipe(failWith(`could not cancel ${id}`))
      if (outcome === "NotFound") return yield* new CliFailure({ message: `no job ${id}` })
      return {
        json: { id, outcome },
        text: outcome === "Removed" ? `cancelled ${id}\n` : `cancel of ${id} requested: it is running, its worker stops it\n`
      }
    }))).pipe(Command.withDescription("cancel a job; needs the running writer"))

const toggle = (name: "pause" | "resume") =>
  Command.make(name, { queue: queueArgument }, ({ queue }) =>
    withTarget(true, (target) =>
      Effect.as(writerOf(target)[name](queue).pipe(failWith(`could not ${name} ${queue}`)), {
        json: { queue, paused: name === "pause" },
        text: `${name === "pause" ? "paused" : "resumed"} ${queue}\n`
      }))).pipe(Command.withDescription(`${name} the claims of a queue; needs the running writer`))

// ---- top and verify ---------------------------------------------------------------------------

const top = Command.make("top", {
  count: Flag.Int("count").pipe(Flag.withDescription("stop after this many refreshes (default: until interrupted)"), Flag.optional)
}, ({ count }) =>
  Effect.gen(function*() {
    const { url } = yield* root
    yield* Effect.scoped(
      Effect.flatMap(connect({ mutating: false, url }), (target) => Top.run(target, url, Option.getOrUndefined(count))).pipe(
        provideStore(url)
      )
    )
  })).pipe(Command.withDescription("a live view of the queues, refreshed every second"))

const verify = Command.make("verify", {}, () =>
  Effect.gen(function*() {
    const { json, url } = yield* root
    const report = yield* Verify.verify.pipe(
      provideStore(url)
    )
    yield* print({ json: report, text: Verify.render(report) }, json)
    if (report.damaged.length > 0) {
      return yield* new CliFailure({ message: `${report.damaged.length} damaged item${report.damaged.length === 1 ? "" : "s"} in ${url}` })
    }
  })).pipe(Command.withDescription("read every object and log part of the store and check every checksum"))

const serveUi = Command.make("serve-ui", {
  port: Flag.Int("port").pipe(Flag.withDescription("the TCP port (0: any free one)"), Flag.withDefault(7451)),
  host: Flag.String("host").pipe(Flag.withDescription("the address to bind (default 127.0.0.1, loopback only)"), Flag.withDefault("127.0.0.1"))
}, ({ host, port }) =>
  Effect.gen(function*() {
    const { url } = yield* root
    yield* Effect.scoped(Effect.gen(function*() {
      const target = yield* connect({ mutating: false, url })
      // live through the running writer, else the store read again every second, read-only
      const source = Option.isSome(target.writer) ? Ui.layerSource(target.reader) : Ui.layerSourceReadOnly({ refresh: "1 second" })
      const page = yield* Layer.build(Ui.layer({ port, host }).pipe(Layer.provide(source))).pipe(
        Effect.map((context) => Context.get(context, Ui.Ui)),
        failWith("could not serve the page")
      )
      yield* Console.log(`serving ${page.url} (${target.source}); stop with Ctrl-C`)
      return yield* Effect.never
    }).pipe(provideStore(url)))
  })).pipe(Command.withDescription("serve a read-only web page of the queues"))

/** The `bucketq` command with its subcommands. */
export const app = root.pipe(
  Command.withSubcommands([
    queues,
    stats,
    list,
    show,
    dead,
    requeue,
    cancel,
    toggle("pause"),
    toggle("resume"),
    top,
    verify,
    serveUi
  ])
)

/** Runs `bucketq` with the process's arguments (needs the platform services: `NodeServices.layer`). */
export const main = Command.run(app, { version })
