#!/usr/bin/env bash
# bucketq in the shared peer harness (../shared/bench/peers), measured in the same run as the peers.
#
#   npm run bench:peers -- bench/peers/results/<date>/c16-r1.jsonl
#   SYSTEMS="bullmq-everysec bullmq-always pgboss-tuned graphile-worker bucketq" N=20000 C=16 \
#     bash bench/peers/run.sh bench/peers/results/<date>/c16-r1.jsonl
#   node <work dir>/lib/report.mjs bench/peers/results/<date>/c16-r*.jsonl   # median [min-max] of runs
#
# For repeated runs, pin the commit (BUCKETQ_REF=<commit>): the default, HEAD, is read again by
# every invocation, and the measured commit is in each run's meta lines (version.bucketq).
#
# The argument is where the raw JSON lines go; the harness's Markdown table is written next to it
# (same name, .md). The harness's server and benchmark logs stay in the work dir (<work dir>/results/).
# Every setting of the harness's run.sh passes through (SYSTEMS, WORKLOADS, N, C, WL_TIMEOUT, BATCH,
# RATE, LATENCY_JOBS, REDIS_PORT, PG_PORT, SCRATCH); SYSTEMS defaults to the four peers plus bucketq.
# bucketq's own settings (see bucketq.mjs): BUCKETQ_WORKERS=worker (default: Worker.layer) or bare
# (claim/ack loops); BUCKETQ_RUN=compiled (default: the commit's tsc output, plain JavaScript like
# the peers) or tsx (its TypeScript sources through the tsx loader, as the first results ran).
#
# What it does, without touching the shared harness:
#   1. copies the harness to a work dir (BUCKETQ_PEERS_WORK, default ${TMPDIR:-/tmp}/bucketq-peers-harness;
#      its node_modules is kept between runs) and drops bench/peers/bucketq.mjs in;
#   2. runs the harness's setup.sh there (apt: redis-server, postgresql-15; npm ci). If npm ci refuses
#      the harness's lockfile (it lacks the non-Linux optional packages of msgpackr-extract, which
#      npm 11 wants listed), it runs npm install instead and fails unless every locked version is
#      unchanged;
#   3. exports the bucketq commit BUCKETQ_REF (default HEAD) with git archive into the work dir, so
#      the run measures committed code even while the checkout is being edited (BUCKETQ_REF=worktree
#      copies the checkout's files as they are), links the repository's node_modules into it and
#      compiles it there (node_modules/.bin/tsc -p tsconfig.build.json -> dist/, what npm run build
#      does); then node_modules/bucketq in the work dir is a small package whose entry is that
#      dist/src/index.js (BUCKETQ_RUN=tsx: a link to the sources), and node_modules/effect a link
#      to the repository's, so the adapter and bucketq load one and the same effect;
#   4. registers the system `bucketq` in the copy's run.sh: system_peer bucketq.mjs, system_server
#      none (the store is a directory in the benchmark process), system_env the bucketq settings
#      and where the stores go ($SCRATCH/bucketq) (BUCKETQ_RUN=tsx: and the tsx loader);
#   5. runs the copy's run.sh and copies the .jsonl and .md to the path given.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED=$(cd "$REPO/../shared/bench/peers" && pwd)
WORK=${BUCKETQ_PEERS_WORK:-${TMPDIR:-/tmp}/bucketq-peers-harness}
REF=${BUCKETQ_REF:-HEAD}
RUN=${BUCKETQ_RUN:-compiled}
WORKERS=${BUCKETQ_WORKERS:-worker}
export SYSTEMS=${SYSTEMS:-"bullmq-everysec bullmq-always pgboss-tuned graphile-worker bucketq"}

log() { echo "[bench:peers] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: bash bench/peers/run.sh RESULTS.jsonl"
DEST=$(realpath -m "$1")
case "$REPO$WORK" in *[[:space:]]*) die "paths with spaces are not supported (the harness word-splits system_env)" ;; esac
case "$RUN" in compiled|tsx) ;; *) die "BUCKETQ_RUN must be compiled or tsx" ;; esac
case "$WORKERS" in worker|bare) ;; *) die "BUCKETQ_WORKERS must be worker or bare" ;; esac

# 1. the harness copy (node_modules kept, everything else replaced)
mkdir -p "$WORK"
find "$WORK" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name results -exec rm -rf {} +
cp -r "$SHARED"/. "$WORK"/
chmod -R u+w "$WORK"
rm -rf "$WORK/node_modules/bucketq" "$WORK/node_modules/effect"
cp "$REPO/bench/peers/bucketq.mjs" "$WORK/bucketq.mjs"

# 2. servers and the peers' npm dependencies
if ! bash "$WORK/setup.sh"; then
  [ -d "$WORK/node_modules" ] && (cd "$WORK" && npm ls --depth=0 >/dev/null 2>&1) && die "setup.sh failed"
  log "setup.sh failed, probably at npm ci: trying npm install with the same lockfile"
  cp "$WORK/package-lock.json" "$WORK/.package-lock.pinned.json"
  (cd "$WORK" && npm install --no-audit --no-fund)
  node -e '
    const fs = require("fs");
    const [a, b] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")).packages);
    const bad = Object.keys(a).filter((k) => !b[k] || a[k].version !== b[k].version);
    if (bad.length) { console.error("npm install changed locked versions:", bad.join(", ")); process.exit(1); }
  ' "$WORK/.package-lock.pinned.json" "$WORK/package-lock.json" || die "npm install did not keep the locked versions"
  bash "$WORK/setup.sh" || die "setup.sh failed"
fi

# 3. the bucketq code to measure, compiled in the work dir
[ -d "$REPO/node_modules/effect" ] || die "run npm ci in the repository first"
SRC=$WORK/bucketq-src
rm -rf "$SRC" && mkdir -p "$SRC"
if [ "$REF" = worktree ]; then
  COMMIT="$(git -C "$REPO" rev-parse --short HEAD)$( [ -n "$(git -C "$REPO" status --porcelain -- src schema layers)" ] && echo -dirty )"
  (cd "$REPO" && git ls-files -z -co --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -x -C "$SRC"
else
  COMMIT=$(git -C "$REPO" rev-parse --short "$REF^{commit}")
  git -C "$REPO" archive "$COMMIT" | tar -x -C "$SRC"
fi
ln -s "$REPO/node_modules" "$SRC/node_modules"
ln -s "$REPO/node_modules/effect" "$WORK/node_modules/effect"
if [ "$RUN" = compiled ]; then
  [ -x "$REPO/node_modules/.bin/tsc" ] || die "run npm ci in the repository first (no tsc)"
  [ -f "$SRC/tsconfig.build.json" ] || die "$COMMIT has no tsconfig.build.json (no npm run build): try BUCKETQ_RUN=tsx"
  (cd "$SRC" && node_modules/.bin/tsc -p tsconfig.build.json) || die "tsc -p tsconfig.build.json failed for $COMMIT"
  [ -f "$SRC/dist/src/index.js" ] || die "the build did not write dist/src/index.js"
  # `bucketq` = the compiled entry. Node loads it by its real path, under $SRC: its own imports
  # (effect, its dependencies) resolve through $SRC/node_modules, the repository's.
  mkdir -p "$WORK/node_modules/bucketq"
  ln -s "$SRC/dist" "$WORK/node_modules/bucketq/dist"
  printf '{ "name": "bucketq", "private": true, "type": "module", "exports": { ".": "./dist/src/index.js" } }\n' \
    > "$WORK/node_modules/bucketq/package.json"
  NODE_OPTS=""
else
  [ -d "$REPO/node_modules/tsx" ] || die "run npm ci in the repository first (no tsx)"
  ln -s "$SRC" "$WORK/node_modules/bucketq"
  TSX=$(node -p 'require("url").pathToFileURL(process.argv[1]).href' "$REPO/node_modules/tsx/dist/loader.mjs")
  NODE_OPTS="NODE_OPTIONS=--import=$TSX "
fi
# one effect for the adapter and for bucketq (Node resolves symlinks: compare real paths)
effect_from() { node -e 'const fs = require("fs"); console.log(fs.realpathSync(require("module").createRequire(fs.realpathSync(process.argv[1])).resolve("effect")))' "$1"; }
ENTRY=$SRC/$([ "$RUN" = compiled ] && echo dist/src/index.js || echo src/index.ts)
EFFECT_A=$(effect_from "$WORK/bucketq.mjs") && EFFECT_B=$(effect_from "$ENTRY") || die "effect does not resolve"
[ "$EFFECT_A" = "$EFFECT_B" ] || die "two copies of effect: $EFFECT_A (adapter) and $EFFECT_B (bucketq)"

# 4. register bucketq in the copy's run.sh ($SCRATCH is expanded by run.sh itself)
# bucketq-remote: the same adapter with its queue in a writer process of its own (BUCKETQ_MODE=remote)
BQ_VARS="BUCKETQ_RUN=$RUN BUCKETQ_WORKERS=$WORKERS BUCKETQ_ROOT=$SRC BUCKETQ_COMMIT=$COMMIT BUCKETQ_SCRATCH=\$SCRATCH/bucketq"
export BQ_PEER='    bucketq|bucketq-remote) echo "bucketq.mjs" ;;'
export BQ_SERVER='    bucketq|bucketq-remote) echo "none" ;;'
export BQ_ENV="    bucketq) echo \"${NODE_OPTS}$BQ_VARS BUCKETQ_MODE=local\" ;;
    bucketq-remote) echo \"${NODE_OPTS}$BQ_VARS BUCKETQ_MODE=remote\" ;;"
awk '
  /^system_peer\(\) \{/ { f = "BQ_PEER" }
  /^system_server\(\) \{/ { f = "BQ_SERVER" }
  /^system_env\(\) \{/ { f = "BQ_ENV" }
  { print }
  f != "" && /case "\$1" in/ { print ENVIRON[f]; f = ""; n++ }
  END { if (n != 3) exit 3 }
' "$SHARED/run.sh" > "$WORK/run.sh" || die "could not register bucketq in run.sh (its system_* functions changed?)"

# 5. run
log "bucketq $COMMIT ($([ "$REF" = worktree ] && echo "checkout" || echo "git archive of $REF"), $RUN, workers: $WORKERS); harness copy: $WORK"
mkdir -p "$WORK/results" "$(dirname "$DEST")"
OUT=$WORK/results/$(basename "${DEST%.*}").jsonl
bash "$WORK/run.sh" "$OUT"
cp "$OUT" "$DEST"
cp "${OUT%.*}.md" "${DEST%.*}.md"
log "results: $DEST, table: ${DEST%.*}.md, logs: ${OUT%.*}-logs/"
