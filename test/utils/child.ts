// Child processes for cross-process and kill -9 tests: TypeScript fixtures run by node with tsx's
// loader in the same process (the tsx CLI would run them in a grandchild, out of reach of kill).
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { rmSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))

export interface Child {
  readonly process: ChildProcessWithoutNullStreams
  /** Lines printed on stdout so far. */
  readonly lines: Array<string>
  /** Resolves when a line satisfies `predicate` (also if one already did). */
  readonly waitForLine: (predicate: (line: string) => boolean) => Promise<string>
  /** Resolves once `count` lines satisfy `predicate`. */
  readonly waitForLines: (predicate: (line: string) => boolean, count: number) => Promise<void>
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | NodeJS.Signals>
  stderr: string
}

/**
 * Starts `node --import tsx <fixture> ...args` from the project root: a file of `test/fixtures/`,
 * or with `script` a file of the project (`examples/demo.ts`), with `env` added to the environment.
 */
export const startChild = (
  fixture: string,
  args: ReadonlyArray<string>,
  options?: { readonly script?: boolean; readonly env?: Readonly<Record<string, string>> }
): Child => {
  const file = options?.script === true ? `${root}${fixture}` : `${root}test/fixtures/${fixture}`
  const child = spawn(process.execPath, ["--import", "tsx", file, ...args], {
    cwd: root,
    env: { ...process.env, ...options?.env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  const lines: Array<string> = []
  const waiters: Array<{ readonly done: () => boolean; readonly resolve: () => void }> = []
  let buffer = ""
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    buffer += chunk
    let newline: number
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      lines.push(line)
      for (const waiter of [...waiters]) {
        if (waiter.done()) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve()
        }
      }
    }
  })
  const result: Child = {
    process: child,
    lines,
    stderr: "",
    waitForLine: (predicate) => result.waitForLines(predicate, 1).then(() => lines.find(predicate)!),
    waitForLines: (predicate, count) => {
      const done = () => lines.filter(predicate).length >= count
      if (done()) return Promise.resolve()
      return new Promise((resolve, reject) => {
        waiters.push({ done, resolve })
        child.once("exit", () => reject(new Error(`child exited before the line; stderr: ${result.stderr}`)))
      })
    },
    exited: new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal!)))
  }
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    result.stderr += chunk
  })
  return result
}

/** Kills (SIGKILL) and awaits every child of `children`, then removes every directory of `directories`; both lists are emptied. */
export const cleanUp = async (children: Array<Child>, directories: Array<string>): Promise<void> => {
  for (const child of children.splice(0)) {
    child.process.kill("SIGKILL")
    await child.exited
  }
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true })
}
