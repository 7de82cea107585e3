// Every TypeScript snippet of the README type-checks against the library as it is: each ```ts
// block becomes a module of its own, with the imports it leaves out (the names of `effect`,
// `bucketq` and Node that the README's snippets use) and the placeholders of the prose (`Email`,
// `sendEmail`, `handler`, ...) declared in front of it, unless the block declares them itself;
// then `tsc` checks them all under the project's strict settings. A type error is reported with
// the README line it comes from.
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"

const root = path.resolve(import.meta.dirname, "..")

interface Block {
  /** The README line of the block's first line of code (1-based). */
  readonly line: number
  readonly code: string
}

const blocksOf = (markdown: string): ReadonlyArray<Block> => {
  const blocks: Array<Block> = []
  const lines = markdown.split("\n")
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```ts") continue
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end]!.trim() !== "```") end++
    blocks.push({ line: start + 1, code: lines.slice(start, end).join("\n") })
    i = end
  }
  return blocks
}

// names a snippet may use without importing them, and where they come from
const imports: ReadonlyArray<readonly [module: string, names: ReadonlyArray<string>]> = [
  ["effect", ["Config", "Context", "Duration", "Effect", "Exit", "Fiber", "Layer", "Option", "Redacted", "Schedule", "Schema", "Stream"]],
  ["bucketq", [
    "FaultInjection",
    "Job",
    "JobQueue",
    "Kv",
    "ObjectStore",
    "QueueClient",
    "QueueLive",
    "QueueServer",
    "QueueTest",
    "Worker",
    "WriterRecord"
  ]],
  ["@effect/platform-node", ["NodeRuntime"]]
]

// the placeholders of the prose: declared for the snippets that use them without defining them
const placeholders: ReadonlyArray<readonly [name: string, declaration: string]> = [
  ["Email", `declare const Email: import("bucketq").Job.Definition<{ readonly to: string }, { readonly to: string }>`],
  ["Order", `declare const Order: import("bucketq").Job.Definition<{ readonly orderId: string; readonly email: string }, { readonly orderId: string; readonly email: string }>`],
  ["Thumbnail", `declare const Thumbnail: import("bucketq").Job.Definition<{ readonly image: string }, { readonly image: string }>`],
  ["sendEmail", `declare const sendEmail: (email: { readonly to: string }) => import("effect").Effect.Effect<void>`],
  ["chargeCard", `declare const chargeCard: (order: { readonly orderId: string }) => import("effect").Effect.Effect<void>`],
  ["makeThumbnail", `declare const makeThumbnail: (job: { readonly image: string }) => import("effect").Effect.Effect<void>`],
  ["queue", `declare const queue: import("bucketq").JobQueue.Service`],
  ["bytes", `declare const bytes: Uint8Array`],
  ["payload", `declare const payload: { readonly to: string }`],
  ["after", `declare const after: string | undefined`],
  ["claim", `declare const claim: import("bucketq").JobQueue.Claim<{ readonly to: string }>`],
  ["id", `declare const id: string`],
  ["lastId", `declare const lastId: string`],
  ["smtpConnections", `declare const smtpConnections: import("bucketq").Worker.Permits`],
  ["os", `import * as os from "node:os"`]
]

const defines = (code: string, name: string) =>
  new RegExp(`\\b(const|let|function|class|import\\s+\\*\\s+as)\\s+${name}\\b|import\\s*(type\\s*)?\\{[^}]*\\b${name}\\b[^}]*\\}`).test(code)
const uses = (code: string, name: string) => new RegExp(`(^|[^.\\w])${name}\\b`).test(code)

/** The module a block becomes: its missing imports and placeholders, then the block. */
const moduleOf = (block: Block): { readonly source: string; readonly offset: number; readonly removed: number } => {
  const header: Array<string> = []
  for (const [module, names] of imports) {
    const missing = names.filter((name) => uses(block.code, name) && !defines(block.code, name))
    if (missing.length > 0) header.push(`import { ${missing.join(", ")} } from "${module}"`)
  }
  for (const [name, declaration] of placeholders) {
    if (uses(block.code, name) && !defines(block.code, name)) header.push(declaration)
  }
  // a block that uses `yield*` outside any generator is the body of one: wrapped in `Effect.gen`
  const lines = block.code.split("\n")
  const importLines = lines.filter((l) => /^import\b/.test(l))
  const rest = lines.filter((l) => !/^import\b/.test(l)).join("\n")
  const wrapped = /yield\*/.test(block.code) && !/function\s*\*/.test(block.code)
  if (wrapped && !uses(block.code, "Effect")) header.unshift(`import { Effect } from "effect"`)
  const body = wrapped ? `export const snippet = Effect.gen(function*() {\n${rest}\n})` : rest
  // the block's own imports first: the lines of the rest keep their offset after the header
  return { source: `${[...importLines, ...header].join("\n")}\nexport {}\n${body}\n`, offset: importLines.length + header.length + 1 + (wrapped ? 1 : 0), removed: importLines.length }
}

describe("the README", () => {
  it("every TypeScript snippet type-checks against the library", () => {
    const blocks = blocksOf(readFileSync(path.join(root, "README.md"), "utf8"))
    assert.isAbove(blocks.length, 10)
    const dir = mkdtempSync(path.join(root, ".readme-snippets-"))
    try {
      const files = blocks.map((block, i) => {
        const file = `block-${String(i).padStart(2, "0")}.ts`
        const { offset, removed, source } = moduleOf(block)
        writeFileSync(path.join(dir, file), source)
        return { file, block, offset, removed }
      })
      writeFileSync(
        path.join(dir, "tsconfig.json"),
        JSON.stringify({
          extends: "../tsconfig.json",
          compilerOptions: { noUnusedLocals: false, paths: { bucketq: ["../src/index.ts"] } },
          include: ["*.ts"]
        })
      )
      let output = ""
      try {
        execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(dir, "tsconfig.json")], {
          encoding: "utf8",
          stdio: "pipe"
        })
      } catch (error) {
        output = String((error as { readonly stdout?: unknown }).stdout ?? error)
      }
      // each error named by its README line
      const errors = output.split("\n").filter((l) => /error TS/.test(l)).map((l) => {
        const match = /^(?:.*[\\/])?(block-\d+\.ts)\((\d+),(\d+)\): (.*)$/.exec(l)
        const found = match && files.find((f) => f.file === match[1])
        if (!found) return l
        const at = Number(match![2])
        // the block's imports are the file's first lines; the rest of it follows the header
        const line = at <= found.removed ? found.block.line + at - 1 : found.block.line + at - 1 - found.offset + found.removed
        return `README.md:${line}: ${match![4]}`
      })
      assert.deepStrictEqual(errors, [])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
