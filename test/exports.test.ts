// The package's exports: the public modules resolve by name, the internals (src/internal, the
// queue's parts, the KV's engine, the store backends' files) do not.
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("..", import.meta.url))

/** What plain node resolves each specifier to, from an app that installed the package. */
const resolveFromApp = (specifiers: ReadonlyArray<string>): Record<string, string> => {
  const app = mkdtempSync(path.join(tmpdir(), "bucketq-exports-"))
  try {
    mkdirSync(path.join(app, "node_modules"))
    symlinkSync(root, path.join(app, "node_modules", "bucketq"), "dir")
    writeFileSync(path.join(app, "probe.mjs"), `const out = {}
for (const s of ${JSON.stringify(specifiers)}) {
  try { import.meta.resolve(s); out[s] = "resolves" } catch (e) { out[s] = e.code }
}
console.log(JSON.stringify(out))`)
    return JSON.parse(execFileSync(process.execPath, [path.join(app, "probe.mjs")], { encoding: "utf8" }))
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
}

describe("package exports", () => {
  it("public modules resolve; internals are not exported", () => {
    const result = resolveFromApp([
      "bucketq",
      "bucketq/JobQueue",
      "bucketq/Kv",
      "bucketq/ObjectStore",
      "bucketq/schema/LogPart",
      "bucketq/internal/options",
      "bucketq/queue/keys",
      "bucketq/queue/claim",
      "bucketq/kv/writer",
      "bucketq/ObjectStore/LocalLog",
      "bucketq/ObjectStore/localLog/read",
      "bucketq/QueueServer",
      "bucketq/QueueClient",
      "bucketq/remote/protocol"
    ])
    for (const publicModule of ["bucketq", "bucketq/JobQueue", "bucketq/Kv", "bucketq/ObjectStore", "bucketq/schema/LogPart", "bucketq/QueueServer", "bucketq/QueueClient"]) {
      assert.strictEqual(result[publicModule], "resolves", publicModule)
    }
    for (const internal of ["bucketq/internal/options", "bucketq/queue/keys", "bucketq/queue/claim", "bucketq/kv/writer", "bucketq/ObjectStore/LocalLog", "bucketq/ObjectStore/localLog/read", "bucketq/remote/protocol"]) {
      assert.strictEqual(result[internal], "ERR_PACKAGE_PATH_NOT_EXPORTED", internal)
    }
  })
})
