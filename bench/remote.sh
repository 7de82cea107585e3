#!/usr/bin/env bash
# npm run bench:remote [-- RESULTS.jsonl]: the peer harness's W1 (enqueue), W3 (drain) and W4
# (latency) with bucketq's queue in a writer process of its own and the producers and workers in
# the benchmark process, reaching it over QueueClient on loopback (system `bucketq-remote`), in the
# same run as BullMQ with appendfsync always (its clients are remote to Redis too) and bucketq in
# process. Settings as bench/peers/run.sh (N, C, SYSTEMS, WORKLOADS, ...); results by default in
# bench/peers/results/<date>/remote-<time>.jsonl and .md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SYSTEMS=${SYSTEMS:-"bullmq-always bucketq-remote bucketq"}
export WORKLOADS=${WORKLOADS:-"W1 W3 W4"}
OUT=${1:-bench/peers/results/$(date +%F)/remote-$(date +%H%M%S).jsonl}
exec bash bench/peers/run.sh "$OUT"
