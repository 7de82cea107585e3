// Starts the S3-compatible test server (Ceph RADOS Gateway, ../shared/s3/start.sh) unless
// S3_ENDPOINT already points at one (AWS, R2, MinIO: set S3_ENDPOINT, S3_BUCKET and the AWS_*
// variables), and stops it when the run ends if this run started it (one found running, started
// by a run beside this one, is left running for it). Workers inherit the environment set here.
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { startS3 } from "../../bench/s3Server.ts"

const kit = fileURLToPath(new URL("../../../shared/s3/", import.meta.url))
let stop = () => {}

export function setup() {
  if (process.env.S3_ENDPOINT) return
  if (!existsSync(`${kit}start.sh`)) {
    throw new Error(`no S3 test server kit at ${kit}start.sh: set S3_ENDPOINT (and S3_BUCKET, AWS_*) to use another server`)
  }
  stop = startS3(kit)
}

export function teardown() {
  stop()
}
