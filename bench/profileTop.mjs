// node bench/profileTop.mjs <file.cpuprofile> [count] [pattern...]: the functions of a CPU profile
// with the most self time (default 20), then, for each pattern, the time of the stacks with a
// frame matching it ("name file:line" text, e.g. "writer.js:276" or "readBlock"): the inclusive
// time of that code. Companion of profileSummary.mjs, which sums by category.
import fs from "node:fs"

const profile = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
const count = Number(process.argv[3] ?? 20)
const patterns = process.argv.slice(4)
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
const nameOf = (node) =>
  `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.replace(/^.*\/(node_modules|dist)\//, "")}:${node.callFrame.lineNumber}`
const self = new Map()
for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
const byName = new Map()
const inclusive = new Map()
let total = 0
for (const [id, t] of self) {
  total += t
  const name = nameOf(byId.get(id))
  byName.set(name, (byName.get(name) ?? 0) + t)
  const matched = new Set()
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const frame = nameOf(byId.get(at))
    for (const pattern of patterns) if (frame.includes(pattern)) matched.add(pattern)
  }
  for (const pattern of matched) inclusive.set(pattern, (inclusive.get(pattern) ?? 0) + t)
}
const row = (t) => `${(t / 1000).toFixed(0)} ms | ${((100 * t) / total).toFixed(1)}%`
console.log(`| self time | share | function |\n|---:|---:|---|`)
for (const [name, t] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`| ${row(t)} | \`${name}\` |`)
if (patterns.length > 0) {
  console.log(`\n| inclusive time | share | frames matching |\n|---:|---:|---|`)
  for (const pattern of patterns) console.log(`| ${row(inclusive.get(pattern) ?? 0)} | \`${pattern}\` |`)
}
console.log(`\nprofile total ${(total / 1000).toFixed(0)} ms`)
