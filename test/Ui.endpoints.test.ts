// The web page's JSON endpoints (src/Ui.ts) served in process on a loopback port, over a queue
// the test fills on the memory backend: exact bodies, the typed 400/404 of bad input, the Host
// check, the chart samples, and the read-only source that reads the store again as a writer
// works on it. In live time (a real HTTP server).
import { request as httpRequest } from "node:http"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Redacted, Schema } from "effect"
import * as Samples from "../src/internal/ui/samples.ts"
import * as Job from "../src/Job.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as QueueClient from "../src/QueueClient.ts"
import * as Ui from "../src/Ui.ts"
import { openQueue } from "./utils/queue.ts"
import { layerOf } from "./utils/stores.ts"

const Mail = Job.define("mail", { payload: Schema.Struct({ to: Schema.String }), keepDone: "1 day", maxAttempts: 3 })
const hostile = `<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> & done`

const memoryStore = Effect.map(Layer.build(ObjectStore.layerMemory()), (context) => Context.get(context, ObjectStore.ObjectStore))

interface Reply {
  readonly status: number
  readonly type: string | null
  readonly text: string
  readonly headers: Headers
}

const fetchText = (url: string) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url)
    return { status: response.status, type: response.headers.get("content-type"), text: await response.text(), headers: response.headers }
  })

const body = (reply: Reply): unknown => JSON.parse(reply.text)

/** A queue "mail" with one job pending (p1), one done (d1) and one dead (x1, with a hostile error). */
const filled = Effect.gen(function*() {
  const store = yield* memoryStore
  const q = yield* openQueue(store)
  const to = (id: string) => ({ to: `${id}@example.com` })
  yield* q.enqueue(Mail, to("d1"), { id: "d1" })
  const [done] = yield* q.claim(Mail)
  yield* q.ack(done!)
  yield* q.enqueue(Mail, to("x1"), { id: "x1" })
  const [dead] = yield* q.claim(Mail)
  yield* q.deadLetter(dead!, hostile)
  yield* q.enqueue(Mail, to("p1"), { id: "p1" })
  return { store, q }
})

const serve = (source: Layer.Layer<Ui.Source, unknown>, options?: Partial<Ui.Options>) =>
  Effect.map(
    Layer.build(Ui.layer({ port: 0, sampleInterval: "100 millis", ...options }).pipe(Layer.provide(source))),
    (context) => Context.get(context, Ui.Ui)
  )

const page = Effect.gen(function*() {
  const { q, store } = yield* filled
  const ui = yield* serve(Ui.layerSource(q))
  return { q, store, ui, get: (path: string) => fetchText(`${ui.url.slice(0, -1)}${path}`) }
})

const waitFor = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const a = yield* effect
      if (done(a)) return a
      yield* Effect.sleep("50 millis")
    }
    return assert.fail(`not reached: ${what}`)
  })

describe("Ui: the page's JSON endpoints", () => {
  it.live("the queues endpoint lists every queue with its counters, live", () =>
    Effect.gen(function*() {
      const { get, ui } = yield* page
      assert.match(ui.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
      const reply = yield* get("/api/queues")
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(reply.type, "application/json; charset=utf-8")
      const { at, ...rest } = body(reply) as { at: number }
      assert.isTrue(at > 1.6e12)
      assert.deepStrictEqual(rest, {
        snapshotAt: null,
        queues: [{ queue: "mail", pending: 1, scheduled: 0, claimed: 0, done: 1, dead: 1, paused: false }]
      })
    }))

  it.live("the dead endpoint lists a queue's dead jobs with their errors, markup escaped in the JSON text", () =>
    Effect.gen(function*() {
      const { get, q } = yield* page
      const record = Option.getOrThrow(yield* q.get("x1"))
      const reply = yield* get("/api/dead?queue=mail")
      assert.strictEqual(reply.status, 200)
      assert.deepStrictEqual(body(reply), {
        queue: "mail",
        next: null,
        jobs: [{
          id: "x1",
          queue: "mail",
          status: "Dead",
          attempts: 1,
          maxAttempts: 3,
          priority: 1000,
          enqueuedAt: record.enqueuedAt,
          failedAt: record.failedAt,
          lastError: hostile,
          headers: {},
          payload: `{"to":"x1@example.com"}`,
          payloadBytes: record.payload.length
        }]
      })
      assert.notInclude(reply.text, "<")
      assert.notInclude(reply.text, ">")
      assert.include(reply.text, "\\u003cscript\\u003ewindow.pwned = 1\\u003c/script\\u003e")
      assert.include(reply.text, "\\u0026 done")
    }))

  it.live("the dead endpoint pages with limit and after", () =>
    Effect.gen(function*() {
      const { get, q } = yield* page
      const [pending] = yield* q.claim(Mail)
      yield* q.ack(pending!)
      for (const id of ["x2", "x3"]) {
        yield* q.enqueue(Mail, { to: "b" }, { id })
        const [claim] = yield* q.claim(Mail)
        yield* q.deadLetter(claim!, `fail ${id}`)
      }
      const first = body(yield* get("/api/dead?queue=mail&limit=2")) as { jobs: Array<{ id: string }>; next: string | null }
      assert.deepStrictEqual([first.jobs.map((j) => j.id), first.next], [["x1", "x2"], "x2"])
      const second = body(yield* get("/api/dead?queue=mail&limit=2&after=x2")) as { jobs: Array<{ id: string }>; next: string | null }
      assert.deepStrictEqual([second.jobs.map((j) => j.id), second.next], [["x3"], null])
    }))

  it.live("the job endpoint gives one job's record and history", () =>
    Effect.gen(function*() {
      const { get, q } = yield* page
      const record = Option.getOrThrow(yield* q.get("x1"))
      const history = yield* q.history("x1")
      assert.deepStrictEqual(history.map((a) => [a.outcome, a.error]), [["DeadLettered", hostile]])
      const reply = yield* get("/api/job?id=x1")
      assert.strictEqual(reply.status, 200)
      const { history: served, job } = body(reply) as { job: { id: string; lastError: string; payload: string }; history: unknown }
      assert.deepStrictEqual(served, history)
      assert.deepStrictEqual([job.id, job.lastError, job.payload], ["x1", hostile, `{"to":"x1@example.com"}`])
      assert.strictEqual(record.lastError, hostile)
      const done = body(yield* get("/api/job?id=d1")) as { job: { status: string }; history: Array<{ outcome: string }> }
      assert.deepStrictEqual([done.job.status, done.history.map((a) => a.outcome)], ["Done", ["Completed"]])
    }))

  it.live("bad queue names, job ids, limits and repeated or missing parameters are 400 with the typed error", () =>
    Effect.gen(function*() {
      const { get } = yield* page
      const cases: ReadonlyArray<readonly [string, unknown]> = [
        ["/api/dead?queue=..%2Fetc", {
          _tag: "InvalidQueueName",
          queue: "../etc",
          reason: "must not have a '.' or '..' segment",
          message: `invalid queue name "../etc": must not have a '.' or '..' segment`
        }],
        ["/api/dead?queue=%3Cb%3E", {
          _tag: "InvalidQueueName",
          queue: "<b>",
          reason: "must be [A-Za-z0-9._:-] segments separated by single '/'",
          message: `invalid queue name "<b>": must be [A-Za-z0-9._:-] segments separated by single '/'`
        }],
        ["/api/series?queue=", {
          _tag: "InvalidQueueName",
          queue: "",
          reason: "must not be empty",
          message: `invalid queue name "": must not be empty`
        }],
        ["/api/dead", {
          _tag: "InvalidOption",
          option: "queue",
          value: "undefined",
          reason: "is required",
          message: "invalid option queue = undefined: is required"
        }],
        ["/api/dead?queue=mail&limit=0", {
          _tag: "InvalidOption",
          option: "limit",
          value: "0",
          reason: "must be an integer from 1 to 1000",
          message: "invalid option limit = 0: must be an integer from 1 to 1000"
        }],
        ["/api/dead?queue=mail&limit=ten", {
          _tag: "InvalidOption",
          option: "limit",
          value: `"ten"`,
          reason: "must be a number",
          message: `invalid option limit = "ten": must be a number`
        }],
        ["/api/dead?queue=mail&after=a%20b", {
          _tag: "InvalidJobId",
          id: "a b",
          reason: "1 to 128 characters of [A-Za-z0-9_-]",
          message: `invalid job id "a b": 1 to 128 characters of [A-Za-z0-9_-]`
        }],
        ["/api/job?id=%3Cscript%3E", {
          _tag: "InvalidJobId",
          id: "<script>",
          reason: "1 to 128 characters of [A-Za-z0-9_-]",
          message: `invalid job id "<script>": 1 to 128 characters of [A-Za-z0-9_-]`
        }],
        ["/api/job", {
          _tag: "InvalidOption",
          option: "id",
          value: "undefined",
          reason: "is required",
          message: "invalid option id = undefined: is required"
        }],
        ["/api/job?id=x1&id=d1", {
          _tag: "InvalidOption",
          option: "id",
          value: `["x1","d1"]`,
          reason: "must be given at most once",
          message: `invalid option id = ["x1","d1"]: must be given at most once`
        }]
      ]
      for (const [path, expected] of cases) {
        const reply = yield* get(path)
        assert.deepStrictEqual([reply.status, reply.type, body(reply)], [400, "application/json; charset=utf-8", expected], path)
        assert.notInclude(reply.text, "<", path)
      }
    }))

  it.live("a job that does not exist is 404 JobNotFound", () =>
    Effect.gen(function*() {
      const { get } = yield* page
      const reply = yield* get("/api/job?id=nope")
      assert.deepStrictEqual([reply.status, body(reply)], [404, { _tag: "JobNotFound", id: "nope", message: "no job nope" }])
    }))

  it.live("the page is one HTML document whose policy allows only its own script and style", () =>
    Effect.gen(function*() {
      const { get } = yield* page
      const reply = yield* get("/")
      assert.deepStrictEqual([reply.status, reply.type], [200, "text/html; charset=utf-8"])
      const policy = reply.headers.get("content-security-policy") ?? ""
      assert.match(policy, /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]+=*'; style-src 'sha256-[A-Za-z0-9+/]+=*'; connect-src 'self'/)
      assert.strictEqual(reply.headers.get("x-content-type-options"), "nosniff")
      assert.include(reply.text, `<table id="queues">`)
      assert.notInclude(reply.text, "x1@example.com") // the data comes from the JSON endpoints only
      const unknown = yield* get("/api/nothing")
      assert.strictEqual(unknown.status, 404)
    }))

  it.live("a request naming another host is refused (403), so a rebound DNS name cannot read the page", () =>
    Effect.gen(function*() {
      const { ui } = yield* page
      const statusWithHost = (host: string) =>
        Effect.callback<number>((resume) => {
          const req = httpRequest({ host: "127.0.0.1", port: ui.port, path: "/api/queues", headers: { host } }, (res) => {
            res.resume()
            resume(Effect.succeed(res.statusCode ?? 0))
          })
          req.on("error", (e) => resume(Effect.die(e)))
          req.end()
        })
      assert.deepStrictEqual(
        [
          yield* statusWithHost("attacker.example"),
          yield* statusWithHost(`attacker.example:${ui.port}`),
          yield* statusWithHost(`localhost:${ui.port}`),
          yield* statusWithHost(`127.0.0.1:${ui.port}`)
        ],
        [403, 403, 200, 200]
      )
    }))

  it.live("the series endpoint charts the sampled depth and the completion rate of a queue", () =>
    Effect.gen(function*() {
      const { get, q } = yield* page
      type Series = { intervalMs: number; points: Array<Samples.Point> }
      const series = (path: string) => Effect.map(get(path), (r) => body(r) as Series)
      const first = yield* waitFor(series("/api/series?queue=mail"), (s) => s.points.length >= 2, "two samples")
      assert.strictEqual(first.intervalMs, 100)
      const last = first.points[first.points.length - 1]!
      assert.deepStrictEqual([last.pending, last.scheduled, last.claimed, last.dead], [1, 0, 0, 1])
      const [claim] = yield* q.claim(Mail)
      yield* q.ack(claim!)
      const after = yield* waitFor(series("/api/series?queue=mail"), (s) => s.points.some((p) => (p.completed ?? 0) > 0), "a completion")
      assert.strictEqual(after.points[after.points.length - 1]!.pending, 0)
      const none = yield* series("/api/series?queue=other")
      assert.isTrue(none.points.every((p) => p.pending === 0 && p.dead === 0))
    }))

  it.live("the charts keep only the window: the ring holds window / sampleInterval + 1 samples, the oldest dropped", () =>
    Effect.gen(function*() {
      const { q } = yield* filled
      const ui = yield* serve(Ui.layerSource(q), { sampleInterval: "100 millis", window: "500 millis" })
      const points = Effect.map(fetchText(`${ui.url}api/series`), (r) => (body(r) as { points: Array<Samples.Point> }).points)
      const full = yield* waitFor(points, (p) => p.length === 6, "six samples")
      yield* Effect.sleep("300 millis")
      const later = yield* points
      assert.strictEqual(later.length, 6)
      assert.isTrue(later[0]!.at > full[0]!.at)
      assert.deepStrictEqual(later.map((p) => p.pending), [1, 1, 1, 1, 1, 1])
    }))

  it.live("a read-only source reads the store again, so the page follows a writer working on it", () =>
    Effect.gen(function*() {
      const { q, store } = yield* filled
      const ui = yield* serve(Ui.layerSourceReadOnly({ refresh: "100 millis" }).pipe(Layer.provide(layerOf(store))))
      const queues = Effect.map(fetchText(`${ui.url}api/queues`), (r) => body(r) as { snapshotAt: number; queues: Array<{ pending: number; done: number }> })
      const before = yield* queues
      assert.deepStrictEqual(before.queues.map((x) => [x.pending, x.done]), [[1, 1]])
      assert.isTrue(before.snapshotAt > 1.6e12)
      const [claim] = yield* q.claim(Mail)
      yield* q.ack(claim!)
      const after = yield* waitFor(queues, (b) => b.queues[0]?.done === 2, "the ack seen")
      assert.deepStrictEqual(after.queues.map((x) => [x.pending, x.done]), [[0, 2]])
      assert.isTrue(after.snapshotAt > before.snapshotAt)
      // the writer was never fenced by the page's reads
      yield* q.enqueue(Mail, { to: "later" }, { id: "later" })
      assert.isTrue(Option.isSome(yield* q.get("later")))
    }))

  it.live("a writer that cannot be reached is 503 with its typed error, and the page keeps answering", () =>
    Effect.gen(function*() {
      // a QueueClient to a port nothing listens on, giving up after one attempt
      const client = QueueClient.layer({ url: "ws://127.0.0.1:1/rpc", token: Redacted.make("t"), retry: { maxAttempts: 1 } })
      const ui = yield* serve(Ui.layerSourceQueue.pipe(Layer.provide(client)))
      for (const path of ["api/queues", "api/dead?queue=mail", "api/job?id=x1"]) {
        const reply = yield* fetchText(`${ui.url}${path}`)
        const { _tag, reason } = body(reply) as { _tag: string; reason: string }
        assert.deepStrictEqual([reply.status, _tag, reason], [503, "WriterUnavailable", "Unreachable"], path)
      }
      assert.strictEqual((yield* fetchText(ui.url)).status, 200)
    }))

  it.live("bad options fail the layers with InvalidOption before anything listens, and a port taken with ServeError", () =>
    Effect.gen(function*() {
      const store = yield* memoryStore
      const failure = <A, E>(layer: Layer.Layer<A, E>) =>
        Effect.map(Effect.exit(Layer.build(layer)), (exit) => Exit.isFailure(exit) ? String(exit.cause) : "built")
      const source = Ui.layerSource({} as never)
      assert.include(yield* failure(Ui.layer({ port: 70000 }).pipe(Layer.provide(source))), "invalid option port = 70000")
      assert.include(yield* failure(Ui.layer({ port: 0, sampleInterval: "10 millis" }).pipe(Layer.provide(source))), "must be at least 100 ms")
      assert.include(yield* failure(Ui.layer({ port: 0, window: "1 day", sampleInterval: "100 millis" }).pipe(Layer.provide(source))), "invalid option window")
      assert.include(
        yield* failure(Ui.layerSourceReadOnly({ refresh: -1 }).pipe(Layer.provide(layerOf(store)))),
        "invalid option refresh = -1"
      )
      const taken = yield* serve(source)
      assert.include(yield* failure(Ui.layer({ port: taken.port }).pipe(Layer.provide(source))), "ServeError")
    }))
})

describe("Ui: the chart samples", () => {
  it("a ring keeps the last items in order", () => {
    const ring = Samples.makeRing<number>(3)
    ring.push(1)
    ring.push(2)
    assert.deepStrictEqual(ring.items(), [1, 2])
    for (const n of [3, 4, 5]) ring.push(n)
    assert.deepStrictEqual(ring.items(), [3, 4, 5])
  })

  it("rates are per second between samples, floored at zero, and a queue missing from a sample counts zero", () => {
    const counts = (pending: number, done: number, dead: number) => ({ pending, scheduled: 0, claimed: 0, done, dead })
    const samples = [
      { at: 0, queues: new Map([["a", counts(4, 0, 0)]]) },
      { at: 2000, queues: new Map([["a", counts(2, 2, 2)], ["b", counts(1, 0, 0)]]) },
      { at: 3000, queues: new Map([["a", counts(2, 3, 0)]]) } // a purge of the dead
    ]
    assert.deepStrictEqual(Samples.series(samples, "a").map((p) => [p.pending, p.dead, p.completed, p.enqueued, p.deadLettered]), [
      [4, 0, null, null, null],
      [2, 2, 1, 1, 1],
      [2, 0, 1, 0, 0]
    ])
    assert.deepStrictEqual(Samples.series(samples, undefined).map((p) => [p.pending, p.enqueued]), [[4, null], [3, 1.5], [2, 0]])
    assert.deepStrictEqual(Samples.series(samples, "b").map((p) => p.pending), [0, 1, 0])
  })
})
