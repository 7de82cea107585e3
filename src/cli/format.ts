/**
 * The CLI's plain-text output: aligned tables, instants (UTC, ISO 8601), ages, and a stored
 * payload shown as JSON when its bytes decode (payloads are stored as msgpack of the definition's
 * encoded form), else as base64. Pure functions: the commands' exact output is what these return.
 *
 * @internal
 */
import * as Msgpack from "../internal/msgpack.ts"
import type { QueueStats } from "../JobQueue.ts"

/** A right-aligned cell (numbers). */
export interface Right {
  readonly right: string
}

/** A cell: text (left-aligned) or `Right`. */
export type Cell = string | Right

/** A number cell, right-aligned. */
export const num = (n: number): Right => ({ right: String(n) })

const textOf = (cell: Cell) => (typeof cell === "string" ? cell : cell.right)

/**
 * A table: a header row and rows, each column as wide as its widest cell, columns two spaces
 * apart, no trailing spaces; one line per row, each ending with a newline.
 */
export const table = (headers: ReadonlyArray<Cell>, rows: ReadonlyArray<ReadonlyArray<Cell>>): string => {
  const all = [headers, ...rows]
  const widths = headers.map((_, i) => Math.max(...all.map((row) => textOf(row[i] ?? "").length)))
  return all.map((row) =>
    row.map((cell, i) => {
      const text = textOf(cell)
      return typeof cell === "string" ? text.padEnd(widths[i]!) : text.padStart(widths[i]!)
    }).join("  ").trimEnd() + "\n"
  ).join("")
}

/** `key: value` lines, keys padded to one width. */
export const fields = (entries: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(0, ...entries.map(([key]) => key.length + 1))
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width)} ${value}\n`).join("")
}

/** An instant (epoch ms) in UTC, ISO 8601. */
export const instant = (ms: number): string => new Date(ms).toISOString()

/** A duration in ms as the two largest units (`45s`, `2m05s`, `1h02m`, `3d04h`); `-` for none. */
export const age = (ms: number | undefined): string => {
  if (ms === undefined) return "-"
  const s = Math.max(0, Math.floor(ms / 1000))
  const two = (n: number) => String(n).padStart(2, "0")
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`
}

/** JSON of a decoded msgpack value: bytes as base64, big integers as strings, maps as objects. */
export const toJson = (value: unknown, indent?: number): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v instanceof Uint8Array
      ? Buffer.from(v).toString("base64")
      : typeof v === "bigint"
      ? v.toString()
      : v instanceof Map
      ? Object.fromEntries(v)
      : v, indent)

/** A stored payload or result: the JSON of its msgpack value, or `base64:<bytes>` when it is not msgpack. */
export const payload = (bytes: Uint8Array): string => {
  try {
    return toJson(Msgpack.decode(bytes))
  } catch {
    return `base64:${Buffer.from(bytes).toString("base64")}`
  }
}

/** The states of a job in the order the CLI shows them. */
export const states = ["Pending", "Scheduled", "Claimed", "Done", "Dead"] as const

/** The counters of a queue as table cells, in `states` order. */
export const counts = (stats: QueueStats): Array<Cell> => [
  num(stats.pending),
  num(stats.scheduled),
  num(stats.claimed),
  num(stats.done),
  num(stats.dead)
]
