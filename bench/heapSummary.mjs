// node bench/heapSummary.mjs <file.heapsnapshot> [jobs]: the self size of a V8 heap snapshot by kind
// of object (strings by length: the KV's values and keys are latin1 strings), in MiB and, given
// the number of jobs, in bytes per job. Parses the whole snapshot: give Node about 8× its size
// (`node --max-old-space-size=...`).
import fs from "node:fs"

const snapshot = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
const jobs = Number(process.argv[3] ?? 0)
const { node_fields: fields, node_types: [types] } = snapshot.snapshot.meta
const width = fields.length
const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f))
const isString = (type) => type === "string" || type === "concatenated string" || type === "sliced string"
const kinds = new Map()
let total = 0
for (let i = 0; i < snapshot.nodes.length; i += width) {
  const type = types[snapshot.nodes[i + typeAt]]
  const name = snapshot.strings[snapshot.nodes[i + nameAt]]
  const kind = isString(type)
    ? `${type}, ${name.length < 40 ? "under 40 characters" : name.length <= 200 ? "40 to 200 characters" : "over 200 characters"}`
    : ["object", "array", "hidden"].includes(type) ? `${type} ${name}`.slice(0, 70) : type
  const size = snapshot.nodes[i + sizeAt]
  const entry = kinds.get(kind) ?? { bytes: 0, count: 0 }
  entry.bytes += size
  entry.count++
  kinds.set(kind, entry)
  total += size
}
console.log(`| kind | MiB | objects |${jobs > 0 ? " bytes per job |" : ""}`)
console.log(`|---|---:|---:|${jobs > 0 ? "---:|" : ""}`)
for (const [kind, { bytes, count }] of [...kinds].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 15)) {
  console.log(`| ${kind} | ${(bytes / 2 ** 20).toFixed(1)} | ${count} |${jobs > 0 ? ` ${(bytes / jobs).toFixed(0)} |` : ""}`)
}
console.log(`| **total** | **${(total / 2 ** 20).toFixed(1)}** | |${jobs > 0 ? ` **${(total / jobs).toFixed(0)}** |` : ""}`)
