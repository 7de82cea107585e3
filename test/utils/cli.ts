// Running the `bucketq` CLI as a child process (node with tsx's loader, from the project root),
// with its output, error output and exit code; or in this process, its console captured.
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { ConfigProvider, Console, Effect } from "effect"
import { Command } from "effect/cli"
import { app, version } from "../../src/cli/commands.ts"

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
    execFile(process.execPath, ["--import", "tsx", `${root}bin/bucketq.ts`, ...args], {
      cwd: root,
      env: { ...inherited, NO_COLOR: "1", ...env },
      timeout: 60_000
    }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resume(Effect.succeed({ stdout, stderr, code }))
    })
  })

/**
 * Runs `bucketq ...args` in this process (the same commands, with the platform's services), its
 * console captured and its configuration only `env`: much faster than a process, for the tests
 * that check output rather than the process's exit.
 */
export const bucketqHere = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const out: Array<string> = []
    const err: Array<string> = []
    const line = (into: Array<string>) => (...parts: ReadonlyArray<unknown>) => void into.push(`${parts.map(String).join(" ")}\n`)
    const console: Console.Console = { ...globalThis.console, log: line(out), info: line(out), error: line(err), warn: line(err) }
    const exit = yield* Effect.exit(
      Command.runWith(app, { version })(args).pipe(
        Effect.provide(NodeServices.layer),
        Effect.provideService(Console.Console, console),
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
      )
    )
    return { stdout: out.join(""), stderr: err.join(""), code: exit._tag === "Success" ? 0 : 1 } satisfies CliRun
  })
