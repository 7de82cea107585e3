// The files of a directory store with their contents' hashes, to check that something left it as it was.
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"

/** Every file under `root`: its path relative to `root`, size and SHA-256, sorted. */
export const filesOf = (root: string): Array<string> =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const file = path.join(entry.parentPath, entry.name)
      const data = readFileSync(file)
      return `${path.relative(root, file)} ${data.length} ${createHash("sha256").update(data).digest("hex")}`
    })
    .sort()
