// The package as a user gets it: `npm pack` (its `prepack` builds dist/), the tarball installed
// with `effect` and `@effect/platform-node` (the peers, linked from this project's node_modules)
// into a fresh app, the app type-checked by tsc under strict settings (and its misuses refused)
// and run by plain `node` (no loader) on a directory store; then a second copy of `effect` under
// bucketq, which the queue's layers refuse with a message naming the fix.
import { execFileSync, spawnSync } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("..", import.meta.url))
const modules = path.join(root, "node_modules")

/** The app: a job enqueued, claimed, acked with a result, and its outcome printed as JSON. */
const program = `import { Effect, Option, Schema } from "effect"
import { Job, JobQueue } from "bucketq"
import { QueueLive } from "bucketq/layers/QueueLive"

const Sum = Job.define("sums", {
  payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
  result: Schema.Struct({ total: Schema.Number })
})

const program = Effect.gen(function*() {
  const queue = yield* JobQueue.JobQueue
  const { id } = yield* queue.enqueue(Sum, { a: 2, b: 3 })
  const claims = yield* queue.claim(Sum, { max: 1, wait: "5 seconds" })
  for (const claim of claims) {
    yield* queue.ack(claim, { result: { total: claim.job.payload.a + claim.job.payload.b } })
  }
  const outcome = yield* queue.awaitCompletion(Sum, id, { timeout: "5 seconds" })
  return {
    claimed: claims.length,
    outcome: outcome._tag,
    result: outcome._tag === "Completed" ? Option.getOrNull(outcome.result) : null
  }
})

const result = await Effect.runPromise(program.pipe(Effect.provide(QueueLive)))
console.log(JSON.stringify(result))
`

/** Misuses the types must catch: a payload of the wrong type, an internal module imported. */
const misuse = `import { Effect, Schema } from "effect"
import { Job, JobQueue } from "bucketq"
import type {} from "bucketq/queue/keys"

const Sum = Job.define("sums", { payload: Schema.Struct({ a: Schema.Number }) })

export const wrong = Effect.gen(function*() {
  const queue = yield* JobQueue.JobQueue
  yield* queue.enqueue(Sum, { a: "two" })
})
`

/** An ESM Node app's tsconfig: tsc's defaults with `strict` on, Node's types, `nodenext` modules. */
const tsconfig = {
  compilerOptions: { strict: true, module: "nodenext", types: ["node"] },
  files: ["main.ts"]
}

let work = ""
let app = ""
let tarball = ""
/** What tsc printed compiling the app (its errors), and its exit status; the same for the misuses. */
let typeCheck = { output: "", status: -1 as number | null }
let misuseCheck = { output: "", status: -1 as number | null }

/** Type-checks (and compiles) the app's files named in `tsconfig` with the toolchain's tsc. */
const tsc = (project: string) => {
  const run = spawnSync(path.join(modules, ".bin", "tsc"), ["-p", project], { cwd: app, encoding: "utf8" })
  return { output: run.stdout + run.stderr, status: run.status }
}

/** Runs the app's compiled program with plain node on a fresh directory store. */
const runApp = (store: string) =>
  spawnSync(process.execPath, ["main.js"], {
    cwd: app,
    encoding: "utf8",
    env: { ...process.env, BUCKETQ_URL: `file:${path.join(work, store)}` },
    timeout: 30_000
  })

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), "bucketq-package-"))
  app = path.join(work, "app")
  mkdirSync(app)
  execFileSync("npm", ["pack", "--silent", "--pack-destination", work], { cwd: root, stdio: "pipe" })
  tarball = path.join(work, readdirSync(work).find((f) => f.endsWith(".tgz"))!)
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
  writeFileSync(path.join(app, "tsconfig.json"), JSON.stringify(tsconfig))
  writeFileSync(path.join(app, "main.ts"), program)
  writeFileSync(path.join(app, "misuse.ts"), misuse)
  const misuseConfig = { compilerOptions: { ...tsconfig.compilerOptions, noEmit: true }, files: ["misuse.ts"] }
  writeFileSync(path.join(app, "tsconfig.misuse.json"), JSON.stringify(misuseConfig))
  // the peers linked from this project's node_modules (one copy each, no download); bucketq's own
  // dependencies come from the npm cache or the registry, as for a user
  const peers = ["effect", "@effect/platform-node", "@types/node"].map((name) => path.join(modules, name))
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, ...peers], {
    cwd: app,
    stdio: "pipe"
  })
  typeCheck = tsc("tsconfig.json")
  misuseCheck = tsc("tsconfig.misuse.json")
}, 120_000)

afterAll(() => {
  if (work !== "") rmSync(work, { recursive: true, force: true })
})

describe("the packed package", () => {
  it("tests run on Node 22 or later", () => {
    assert.isAtLeast(Number(process.versions.node.split(".")[0]), 22, process.version)
  })

  it("holds the built modules, the README, the LICENSE and package.json, and no sources or internals' tests", () => {
    const files = execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).trim().split("\n")
    const tops = new Set(files.map((f) => f.split("/").slice(1, 3).join("/")))
    assert.deepStrictEqual([...tops].sort(), ["LICENSE", "README.md", "dist/bin", "dist/layers", "dist/schema", "dist/src", "package.json"])
    for (const built of ["dist/src/index.js", "dist/src/index.d.ts", "dist/src/index.js.map", "dist/layers/QueueLive.js", "dist/layers/QueueLive.d.ts"]) {
      assert.include(files, `package/${built}`)
    }
    assert.isFalse(files.some((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), "no TypeScript sources")
  })

  it("its source maps carry the sources they map, which the package does not ship", () => {
    const map = JSON.parse(readFileSync(path.join(app, "node_modules", "bucketq", "dist", "src", "JobQueue.js.map"), "utf8"))
    assert.deepStrictEqual(map.sources, ["../../src/JobQueue.ts"])
    assert.include(map.sourcesContent[0], "export const layer = ")
  })

  it("an app using it type-checks with tsc under strict settings", () => {
    assert.strictEqual(typeCheck.output, "")
    assert.strictEqual(typeCheck.status, 0)
  })

  it("tsc refuses a payload of the wrong type and an internal module in that app", () => {
    const errors = misuseCheck.output.trim().split("\n").map((line) => line.replace(/: error (TS\d+).*/, " $1"))
    assert.deepStrictEqual(errors, ["misuse.ts(3,21) TS2307", "misuse.ts(9,31) TS2322"])
    assert.notStrictEqual(misuseCheck.status, 0)
  })

  it("plain node loads every public module of the installed package, and refuses its internals", () => {
    const files = execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).trim().split("\n")
    const exported = files.flatMap((f) => {
      const m = /^package\/dist\/(src|layers|schema)\/([A-Za-z]+)\.js$/.exec(f)
      return m === null ? [] : [m[1] === "src" ? (m[2] === "index" ? "bucketq" : `bucketq/${m[2]}`) : `bucketq/${m[1]}/${m[2]}`]
    })
    assert.includeMembers(exported, ["bucketq", "bucketq/JobQueue", "bucketq/Worker", "bucketq/QueueServer", "bucketq/layers/QueueLive", "bucketq/schema/JobRecord"])
    const internals = ["bucketq/internal/effectCopy", "bucketq/queue/claim", "bucketq/kv/writer", "bucketq/ObjectStore/S3", "bucketq/remote/protocol"]
    writeFileSync(path.join(app, "probe.mjs"), `const out = {}
for (const s of ${JSON.stringify([...exported, ...internals])}) {
  try { await import(s); out[s] = "loads" } catch (e) { out[s] = e.code ?? String(e) }
}
console.log(JSON.stringify(out))`)
    const out = JSON.parse(execFileSync(process.execPath, ["probe.mjs"], { cwd: app, encoding: "utf8" }))
    for (const specifier of exported) assert.strictEqual(out[specifier], "loads", specifier)
    for (const specifier of internals) assert.strictEqual(out[specifier], "ERR_PACKAGE_PATH_NOT_EXPORTED", specifier)
  })

  it("plain node runs the app: a job enqueued, claimed and acked on a directory store completes with its result", () => {
    const run = runApp("store")
    assert.strictEqual(run.stderr, "")
    assert.deepStrictEqual(JSON.parse(run.stdout), { claimed: 1, outcome: "Completed", result: { total: 5 } })
  })

  it("the installed bucketq command reads the app's store with plain node", () => {
    assert.strictEqual(runApp("store-cli").status, 0)
    const run = spawnSync(path.join(app, "node_modules", ".bin", "bucketq"), ["--url", `file:${path.join(work, "store-cli")}`, "queues"], {
      cwd: app,
      encoding: "utf8",
      timeout: 30_000
    })
    assert.strictEqual(run.stderr, "")
    assert.strictEqual(run.stdout, "QUEUE  PENDING  SCHEDULED  CLAIMED  DONE  DEAD  PAUSED\nsums         0          0        0     1     0  no\n")
  })

  it("a second copy of effect under bucketq fails the layer with a message naming the fix", () => {
    const own = path.join(app, "node_modules", "bucketq", "node_modules", "effect")
    cpSync(path.join(modules, "effect"), own, {
      recursive: true,
      filter: (source) => !/[/\\](src|ai-docs)$|\.map$|\.d\.ts$/.test(source)
    })
    try {
      const run = runApp("store-duplicate")
      assert.notStrictEqual(run.status, 0)
      assert.include(run.stderr, "DuplicateEffect")
      assert.include(run.stderr, "bucketq imports a different copy of the `effect` package")
      assert.include(run.stderr, "npm ls effect")
      assert.strictEqual(run.stdout, "")
    } finally {
      rmSync(own, { recursive: true, force: true })
    }
  })
})
