// The web page (src/Ui.ts) in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), as `bucketq serve-ui` runs against a running writer: the writer is a child
// process serving its queue on the directory backend (test/fixtures/queueServer.ts), the page is
// served in this process over a QueueClient connected to it. The test fills the queue through the
// writer, checks the page shows it, completes jobs through the writer and waits for the page to
// follow, opens the dead job whose error is markup, and keeps a screenshot in test-artifacts/.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { chromium, type Page } from "playwright-core"
import * as QueueClient from "../src/QueueClient.ts"
import * as Ui from "../src/Ui.ts"
import { type Child, startChild } from "./utils/child.ts"
import { tempDirectory } from "./utils/stores.ts"

const token = "page-test-token"
const hostile = `<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> & done`
const artifacts = fileURLToPath(new URL("../test-artifacts/", import.meta.url))

/** The flags the machine's Chromium needs headless as root, with no network beyond loopback. */
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

/** The writer process and a way to give it a command and wait for its answer line. */
const writerProcess = (directory: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const child = startChild("queueServer.ts", [directory, "0", token])
      const port = Number((await child.waitForLine((l) => l.startsWith("listening "))).split(" ")[1])
      return { child, url: `ws://127.0.0.1:${port}/rpc` }
    }),
    ({ child }) => Effect.promise(() => (child.process.kill("SIGKILL"), child.exited))
  )

const tell = (child: Child, command: string, answer: string) =>
  Effect.promise(async () => {
    const before = child.lines.filter((l) => l.startsWith(answer)).length
    child.process.stdin.write(`${command}\n`)
    await child.waitForLines((l) => l.startsWith(answer), before + 1)
  })

/** Chromium with a fresh, empty profile directory, closed (and the directory removed) with the scope. */
const browser = Effect.acquireRelease(
  Effect.promise(async () => {
    const profile = mkdtempSync(path.join(tmpdir(), "bucketq-chromium-"))
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: chromiumArgs
    })
    return { context, profile }
  }),
  ({ context, profile }) => Effect.promise(() => context.close().finally(() => rmSync(profile, { recursive: true, force: true })))
)

/** The page's document as the callbacks run in the browser see it (this project's TypeScript has no DOM types). */
interface Doc {
  readonly querySelector: (selector: string) => { readonly textContent: string | null } | null
  readonly scripts: { readonly length: number }
  readonly images: { readonly length: number }
}
// (callbacks run in the browser are sent as source text: they name nothing of this module at run time)
type BrowserGlobals = { readonly document: Doc; readonly pwned?: number }

const cell = (page: Page, queue: string, state: string) => page.textContent(`tr[data-queue="${queue}"] td.${state}`)

/** Waits until `selector`'s text is `text` in the page (the page polls every second). */
const untilText = (page: Page, selector: string, text: string) =>
  Effect.promise(() =>
    page.waitForFunction(
      ([s, t]) => (globalThis as unknown as BrowserGlobals).document.querySelector(s!)?.textContent === t,
      [selector, text] as const,
      { timeout: 15_000 }
    )
  )

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

describe("Ui in a headless Chromium", () => {
  it.live("the page shows the queue the test filled, follows jobs completing at the writer, and shows a markup error as text", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const writer = yield* writerProcess(directory)
      for (const id of ["t1", "t2", "t3", "t4", "t5"]) yield* tell(writer.child, `enq ${id}`, `enq ${id}`)
      yield* tell(writer.child, `fail ${hostile}`, "dead ")
      const client = QueueClient.layer({ url: writer.url, token: Redacted.make(token) })
      const ui = Context.get(
        yield* Layer.build(Ui.layer({ port: 0, sampleInterval: "250 millis" }).pipe(Layer.provide(Ui.layerSourceQueue), Layer.provide(client))),
        Ui.Ui
      )
      const { context } = yield* browser
      const page = yield* promise(() => context.newPage())
      const problems: Array<string> = []
      page.on("console", (m) => m.type() === "error" && problems.push(m.text()))
      page.on("pageerror", (e) => problems.push(e.message))
      yield* promise(() => page.goto(ui.url))

      // the queue as filled: 4 pending, 1 dead
      yield* untilText(page, `tr[data-queue="tasks"] td.pending`, "4")
      assert.deepStrictEqual(
        yield* promise(async () => [await cell(page, "tasks", "dead"), await cell(page, "tasks", "done"), await cell(page, "tasks", "claimed")]),
        ["1", "0", "0"]
      )

      // jobs completed at the writer: the page follows within its polling
      yield* tell(writer.child, "ack", "acked ")
      yield* tell(writer.child, "ack", "acked ")
      yield* untilText(page, `tr[data-queue="tasks"] td.done`, "2")
      assert.strictEqual(yield* promise(() => cell(page, "tasks", "pending")), "2")

      // the queue's charts and dead jobs; the error is shown as text and runs nothing
      yield* promise(() => page.click(`tr[data-queue="tasks"] td.name button`))
      yield* untilText(page, "#selected", "tasks")
      yield* promise(() => page.waitForSelector(`#dead-body tr td.error pre`, { timeout: 15_000 }))
      assert.strictEqual(yield* promise(() => page.textContent("#dead-body tr td.error pre")), hostile)
      yield* promise(() => page.waitForSelector(`#rate-chart polyline[data-series="completed"]`, { timeout: 15_000 }))
      yield* promise(() => page.waitForSelector(`#depth-chart polyline[data-series="pending"]`, { timeout: 15_000 }))

      // one job's record and history
      yield* promise(() => page.click("#dead-body tr td button"))
      yield* untilText(page, `#job-fields dd[data-field="status"]`, "Dead")
      assert.strictEqual(yield* promise(() => page.textContent(`#job-history td.outcome`)), "DeadLettered")
      assert.strictEqual(yield* promise(() => page.textContent(`#job-history td.error pre`)), hostile)
      assert.strictEqual(yield* promise(() => page.textContent(`#job-fields dd[data-field="lastError"]`)), hostile)
      const injected = yield* promise(() =>
        page.evaluate(() => {
          const { document, pwned } = (globalThis as unknown as BrowserGlobals)
          return { pwned: pwned ?? null, scripts: document.scripts.length, images: document.images.length }
        })
      )
      assert.deepStrictEqual(injected, { pwned: null, scripts: 1, images: 0 })
      assert.deepStrictEqual(problems, []) // no script error, no refused request, no policy violation

      // a bad id typed in is answered with the typed error's message
      yield* promise(() => page.fill("#job-id", "not an id"))
      yield* promise(() => page.click(`#job-form button[type="submit"]`))
      yield* untilText(page, "#job-error", `invalid job id "not an id": 1 to 128 characters of [A-Za-z0-9_-]`)
      yield* promise(() => page.click("#dead-body tr td button"))
      yield* untilText(page, `#job-fields dd[data-field="status"]`, "Dead")

      mkdirSync(artifacts, { recursive: true })
      const screenshot = path.join(artifacts, "ui-page.png")
      yield* promise(() => page.screenshot({ path: screenshot, fullPage: true }))
      console.log(`screenshot of the page: ${screenshot}`)
      // the one request refused: the bad id, by the endpoint
      assert.deepStrictEqual(problems, ["Failed to load resource: the server responded with a status of 400 (Bad Request)"])
    }), 90_000)
})
