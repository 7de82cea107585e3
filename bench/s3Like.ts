// The S3-like latency the benchmarks inject into the memory store (FaultInjection, log-normal):
// PUT p50 30 ms, p99 150 ms; GET, HEAD, LIST and DELETE p50 15 ms, p99 80 ms. Shared by
// bench/s3.ts and bench/backlog.ts so that both price the same store.
import type * as FaultInjection from "../src/FaultInjection.ts"

/** PUT p50 30 ms / p99 150 ms; every other kind p50 15 ms / p99 80 ms. */
export const s3Like = {
  put: { latency: { _tag: "LogNormal", p50: 30, p99: 150 } },
  all: { latency: { _tag: "LogNormal", p50: 15, p99: 80 } }
} as const satisfies FaultInjection.Faults
