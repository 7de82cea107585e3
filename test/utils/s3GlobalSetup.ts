// Starts the S3-compatible test server (Ceph RADOS Gateway, ../shared/s3/start.sh) unless
// S3_ENDPOINT already points at one (AWS, R2, MinIO: set S3_ENDPOINT, S3_BUCKET and the AWS_*
// variables), and stops it when the run ends if this run started it (one found running, started
// by a run beside this one, is left running for it). Workers inherit the environment set here.
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const kit = fileURLToPath(new URL("../../../shared/s3/", import.meta.url))
let started = false

export function setup() {
  if (process.env.S3_ENDPOINT) return
  if (!existsSync(`${kit}start.sh`)) {
    throw new Error(`no S3 test server kit at ${kit}start.sh: set S3_ENDPOINT (and S3_BUCKET, AWS_*) to use another server`)
  }
  const run = spawnSync("bash", [`${kit}start.sh`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  process.stderr.write(run.stderr)
  if (run.status !== 0) throw new Error(`${kit}start.sh failed (${run.status ?? run.signal})`)
  for (const [, name, value] of run.stdout.matchAll(/^export (\w+)=(.*)$/gm)) process.env[name!] = value!
  process.env.S3_QUOTE_IF_MATCH ??= "false" // radosgw 16 needs unquoted If-Match (see its README)
  started = !/already running/.test(run.stderr)
}

export function teardown() {
  if (started) execFileSync("bash", [`${kit}stop.sh`], { stdio: "inherit" })
}
