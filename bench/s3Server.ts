// The S3-compatible server of ../shared/s3 for the benchmarks and the tests' global setup: started
// unless S3_ENDPOINT is set, stopped by the returned function; and the store options it answers to.
import { execFileSync, spawnSync } from "node:child_process"
import * as path from "node:path"
import { Redacted } from "effect"
import type * as ObjectStore from "../src/ObjectStore.ts"

// npm runs the benchmarks from the repository root (they may run compiled, from dist/)
const defaultKit = path.resolve("../shared/s3") + path.sep

/**
 * Starts the server of `kit` (a directory with `start.sh` and `stop.sh`) if needed, and sets its
 * environment; the result stops it again (a no-op if it was running already: another run's).
 */
export const startS3 = (kit = defaultKit): (() => void) => {
  if (process.env.S3_ENDPOINT) return () => {}
  const run = spawnSync("bash", [`${kit}start.sh`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  process.stderr.write(run.stderr)
  if (run.status !== 0) throw new Error(`${kit}start.sh failed (${run.status ?? run.signal})`)
  for (const [, name, value] of run.stdout.matchAll(/^export (\w+)=(.*)$/gm)) process.env[name!] = value!
  process.env.S3_QUOTE_IF_MATCH ??= "false" // radosgw 16 compares If-Match unquoted
  // a server that was running already (another run's) is left running
  if (/already running/.test(run.stderr)) return () => {}
  return () => execFileSync("bash", [`${kit}stop.sh`], { stdio: "inherit" })
}

/** Options of a store under `prefix` on the server in the environment. */
export const s3Options = (prefix: string): ObjectStore.S3Options => {
  const env = process.env
  return {
    bucket: env.S3_BUCKET!,
    prefix,
    endpoint: env.S3_ENDPOINT!,
    region: env.AWS_REGION ?? "us-east-1",
    forcePathStyle: true,
    quoteIfMatch: env.S3_QUOTE_IF_MATCH !== "false",
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: Redacted.make(env.AWS_SECRET_ACCESS_KEY!) }
  }
}
