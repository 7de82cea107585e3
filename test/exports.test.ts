// The package's exports map: the public modules resolve by name to the built files under dist/
// (JavaScript by default, declarations under the `types` condition), the internals (src/internal,
// the queue's parts, the KV's engine, the store backends' files, the remote protocol) do not.
// Resolved by plain node from an app holding this package.json over a dist/ tree of empty files
// named after the sources, so the map is checked without a build (test/package.test.ts checks
// the real build).
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("..", import.meta.url))

/** Empty `dist/<dir>/<name>.js` and `.d.ts` files for every TypeScript source under `dir`. */
const fakeBuild = (pkg: string, dir: string): void => {
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue
    const source = path.relative(root, path.join(entry.parentPath, entry.name))
    const target = path.join(pkg, "dist", source.slice(0, -".ts".length))
    mkdirSync(path.dirname(target), { recursive: true })
    writeFileSync(`${target}.js`, "")
    writeFileSync(`${target}.d.ts`, "")
  }
}

/**
 * What plain node resolves each specifier to from an app that installed the package, relative to
 * the package (or the error's code), under the given extra conditions.
 */
const resolveFromApp = (specifiers: ReadonlyArray<string>, conditions: ReadonlyArray<string>): Record<string, string> => {
  const app = mkdtempSync(path.join(tmpdir(), "bucketq-exports-"))
  try {
    const pkg = path.join(app, "node_modules", "bucketq")
    mkdirSync(pkg, { recursive: true })
    copyFileSync(path.join(root, "package.json"), path.join(pkg, "package.json"))
    for (const dir of ["src", "layers", "schema"]) fakeBuild(pkg, dir)
    writeFileSync(path.join(app, "probe.mjs"), `const out = {}
const base = new URL("./node_modules/bucketq/", import.meta.url).href
for (const s of ${JSON.stringify(specifiers)}) {
  try { out[s] = import.meta.resolve(s).slice(base.length) } catch (e) { out[s] = e.code }
}
console.log(JSON.stringify(out))`)
    const flags = conditions.map((c) => `--conditions=${c}`)
    return JSON.parse(execFileSync(process.execPath, [...flags, path.join(app, "probe.mjs")], { encoding: "utf8" }))
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
}

/** Each public specifier and the built file (without extension) it must resolve to. */
const publicModules: Record<string, string> = {
  "bucketq": "dist/src/index",
  "bucketq/JobQueue": "dist/src/JobQueue",
  "bucketq/Kv": "dist/src/Kv",
  "bucketq/ObjectStore": "dist/src/ObjectStore",
  "bucketq/QueueServer": "dist/src/QueueServer",
  "bucketq/QueueClient": "dist/src/QueueClient",
  "bucketq/Ui": "dist/src/Ui",
  "bucketq/layers/QueueLive": "dist/layers/QueueLive",
  "bucketq/schema/LogPart": "dist/schema/LogPart"
}

const internals = [
  "bucketq/internal/options",
  "bucketq/internal/effectCopy",
  "bucketq/internal/ui/page",
  "bucketq/queue/keys",
  "bucketq/queue/claim",
  "bucketq/kv/writer",
  "bucketq/ObjectStore/LocalLog",
  "bucketq/ObjectStore/localLog/read",
  "bucketq/remote/protocol",
  "bucketq/cli/commands"
]

describe("package exports", () => {
  it("public modules resolve to the built JavaScript; internals are not exported", () => {
    const result = resolveFromApp([...Object.keys(publicModules), ...internals], [])
    for (const [specifier, file] of Object.entries(publicModules)) {
      assert.strictEqual(result[specifier], `${file}.js`, specifier)
    }
    for (const internal of internals) {
      assert.strictEqual(result[internal], "ERR_PACKAGE_PATH_NOT_EXPORTED", internal)
    }
  })

  it("under the types condition, public modules resolve to their declarations", () => {
    const result = resolveFromApp(Object.keys(publicModules), ["types"])
    for (const [specifier, file] of Object.entries(publicModules)) {
      assert.strictEqual(result[specifier], `${file}.d.ts`, specifier)
    }
  })
})
