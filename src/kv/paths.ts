/**
 * Object keys of the KV engine under its store's root: `manifest/<id>`, `wal/<id>` (20-digit ids,
 * so that key order is numeric order) and `runs/<ulid>`.
 *
 * @internal
 */
import { keyOf as manifestKey } from "../../schema/Manifest.ts"

export { manifestKey }

/** @internal */
export const manifestPrefix = "manifest/"
/** @internal */
export const walPrefix = "wal/"
/** @internal */
export const runPrefix = "runs/"

/** @internal */
export const walKey = (id: number): string => `${walPrefix}${String(id).padStart(20, "0")}`

/** @internal */
export const runKey = (id: string): string => `${runPrefix}${id}`

/** The id in `manifest/<id>` or `wal/<id>`, or undefined for any other key. */
export const idOf = (key: string, prefix: string): number | undefined => {
  if (!key.startsWith(prefix)) return undefined
  const digits = key.slice(prefix.length)
  return /^\d{20}$/.test(digits) ? Number(digits) : undefined
}
