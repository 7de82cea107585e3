// Running the `bucketq` CLI as a child process (node with tsx's loader, from the project root),
// with its output, error output and exit code.
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

const root = fileURLToPath(new URL("../../", import.meta.url))

export interface CliRun {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
}

/** Runs `bucketq ...args` with `env` added to (and `BUCKETQ_TOKEN`, `BUCKETQ_URL` removed from) this process's. */
export const bucketq = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.callback<CliRun>((resume) => {
    const { BUCKETQ_TOKEN: _token, BUCKETQ_URL: _url, ...inherited } = process.env
    execFile(process.execPath, ["--import", "tsx", `${root}src/bin.ts`, ...args], {
      cwd: root,
      env: { ...inherited, NO_COLOR: "1", ...env },
      timeout: 60_000
    }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resume(Effect.succeed({ stdout, stderr, code }))
    })
  })
