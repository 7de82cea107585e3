// bucketq's figures as ratios against BullMQ, from results of bench/peers/run.sh:
//   node bench/peers/ratios.mjs bench/peers/results/<date>/c16-r*.jsonl
// Each ratio is computed within one run (bucketq and the peer measured in the same invocation),
// then the median [min-max] over the runs is printed. Throughput: above 1 means bucketq is faster;
// latency: below 1 means bucketq is faster.
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (!files.length) { console.error('usage: node bench/peers/ratios.mjs RESULTS.jsonl [...]'); process.exit(2); }
const peers = ['bullmq-always', 'bullmq-everysec'];
const metrics = [
  ['W1', 'jobs_per_s', 'W1 enqueue jobs/s'],
  ['W2', 'jobs_per_s', 'W2 bulk jobs/s'],
  ['W3', 'jobs_per_s', 'W3 drain jobs/s'],
  ['W4', 'latency_p50_ms', 'W4 p50 ms'],
  ['W4', 'latency_p99_ms', 'W4 p99 ms'],
];
const runs = files.map((f) => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)));
const value = (rows, system, workload, metric) => rows.find((r) => r.system === system && r.workload === workload && r.metric === metric)?.value;
const median = (v) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));

const configs = [...new Set(runs.map((rows) => rows.find((r) => r.system === 'bucketq' && r.workload !== 'meta')).filter(Boolean).map((r) => `${r.N}|${r.C}`))];
for (const config of configs) {
  const [n, c] = config.split('|').map(Number);
  const here = runs.filter((rows) => rows.some((r) => r.system === 'bucketq' && r.N === n && r.C === c));
  console.log(`### bucketq ÷ peer, N=${n}, C=${c} (${here.length} run${here.length > 1 ? 's' : ''}${here.length > 1 ? ': median [min–max] of the per-run ratios' : ''})\n`);
  console.log(`| metric | ${peers.map((p) => `bucketq ÷ ${p}`).join(' | ')} |`);
  console.log(`|---|${peers.map(() => '---:').join('|')}|`);
  for (const [workload, metric, label] of metrics) {
    const cells = peers.map((peer) => {
      const r = here.map((rows) => value(rows, 'bucketq', workload, metric) / value(rows, peer, workload, metric)).filter(Number.isFinite);
      if (!r.length) return '—';
      return r.length > 1 ? `${fmt(median(r))} [${fmt(Math.min(...r))}–${fmt(Math.max(...r))}]` : fmt(r[0]);
    });
    console.log(`| ${label} | ${cells.join(' | ')} |`);
  }
  console.log('\nThroughput rows: above 1 means bucketq is faster. Latency rows: below 1 means bucketq is faster.\n');
}
