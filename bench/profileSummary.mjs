// node bench/profileSummary.mjs <file.cpuprofile> <jobs>: self time of a CPU profile by category, as a share
// of the process and in µs per job (idle and module loading left out of the per-job figures).
import fs from "node:fs"
const p = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
const jobs = Number(process.argv[3] ?? 1)
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const self = new Map()
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0))
const rules = [
  ["idle", (u, f) => f === "(idle)"],
  ["garbage collection", (u, f) => f === "(garbage collector)"],
  ["startup (module loading)", (u) => /node:internal\/modules|cjs-module-lexer|esm\/|bootstrap\/realm|package_json/.test(u) || /compileSourceTextModule|wrapSafe|internalModuleStat|readFileUtf8/.test(u)],
  ["rpc + schema serialization", (u) => /encoding\/SchemaBinary|SchemaAST|SchemaParser|Schema\.js|\/rpc\/|internal\/schema/.test(u)],
  ["websocket (ws) + sockets", (u, f) => /nm:ws\/|stream_base_commons|streams\/writable|net\.js/.test(u) || f === "writeBuffer" || f === "writev"],
  ["effect runtime", (u) => /dist\/internal\/(effect|core|record|context)|dist\/(Function|Pipeable|Context|Exit|Cause|Fiber|Scheduler|Option)\.js|internal\/request/.test(u)],
  ["msgpack (records, WAL)", (u) => /msgpack/.test(u)],
  ["sorted-btree", (u) => /sorted-btree/.test(u)],
  ["kv engine", (u) => /dist\/src\/(kv\/|Kv\.js|internal\/(binary|btree|latin1Kv))|schema\/(WalSegment|Run|LogPart)/.test(u)],
  ["local log + fs syscalls", (u, f) => /ObjectStore\/|node:fs/.test(u) || ["fdatasync", "fsync", "writeString", "write", "read", "open", "close", "fstat", "openFileHandle", "unlink"].includes(f)],
  ["queue", (u) => /dist\/src\/queue\/|schema\/JobRecord/.test(u)],
  ["Worker / client / server", (u) => /dist\/src\/(Worker|QueueClient|QueueServer|remote\/)/.test(u)],
  ["crypto", (u) => /crypto/.test(u)],
]
const cats = new Map()
let total = 0
for (const [id, t] of self) {
  const n = byId.get(id); const u = n.callFrame.url.replace(/^.*node_modules\//, "nm:").replace(/^.*\/dist\//, "dist/"); const f = n.callFrame.functionName
  const cat = (rules.find(([, test]) => test(u, f)) ?? ["other"])[0]
  cats.set(cat, (cats.get(cat) ?? 0) + t); total += t
}
const busy = total - (cats.get("idle") ?? 0) - (cats.get("startup (module loading)") ?? 0)
console.log(`| category | share of the process | µs per job |`)
console.log(`|---|---:|---:|`)
for (const [k, t] of [...cats].sort((a, b) => b[1] - a[1])) console.log(`| ${k} | ${(100 * t / total).toFixed(1)}% | ${k === "idle" || k.startsWith("startup") ? "" : (t / jobs).toFixed(1)} |`)
console.log(`| **busy, per job** (excluding idle and startup) | | **${(busy / jobs).toFixed(1)}** |`)
