// bucketq in the shared peer harness (../shared/bench/peers): the adapter contract of its
// lib/driver.mjs, implemented with bucketq's public API. Run it through ./run.sh, which copies the
// harness to a temporary directory, drops this file in, registers the system `bucketq` and runs it.
//
// What runs: JobQueue.layer() over Kv.layer() over ObjectStore.layerFileSystem({ directory }) on
// a fresh directory under the harness's scratch dir, every option at its default. That means every
// enqueue and every ack is durable before it returns (fdatasync of the local WAL log, one per group
// commit): the same durability as bullmq-always. No server: the store is in this process, so its
// memory is in `bench peak RSS`.
//
// - enqueue / enqueueBulk: queue.enqueue / queue.enqueueBatch (one atomic commit per batch).
// - startWorkers(c): by default (BUCKETQ_WORKERS=worker) what users run:
//   Worker.layer(Task, (payload) => Effect.sync(() => handler(payload)), { concurrency: c }),
//   provided with the queue and built in its own scope; close() closes that scope (the worker
//   stops claiming and drains) and then the queue's. BUCKETQ_WORKERS=bare: c fibers, each looping
//   claim({ max: 1, wait }) -> handler(payload) -> ack, as bench/queue.ts does.
// - stats(): queue.stats(queue), the queue's own counters: pending = pending + scheduled +
//   claimed, done = acknowledged so far (cumulative), failed = dead.
// Effect's logs (the worker's warnings, if any) go to stderr, so stdout stays the harness's JSON lines.
//
// Environment (set by ./run.sh through the harness's system_env):
//   BUCKETQ_SCRATCH  where the fresh store directories go (the harness's scratch dir + /bucketq)
//   BUCKETQ_ROOT     the bucketq checkout (for its versions; `bucketq` and `effect` resolve
//                    through node_modules entries that run.sh creates)
//   BUCKETQ_COMMIT   the checkout's commit, reported by meta()
//   BUCKETQ_RUN      compiled (default: `bucketq` resolves to the checkout's tsc output,
//                    dist/src/index.js) or tsx (its TypeScript sources, through the tsx loader)
//   BUCKETQ_WORKERS  worker (default) or bare, see startWorkers above
//   BUCKETQ_CLAIM_WAIT_MS  bare loops: how long an idle loop's claim waits for an enqueue (default 50)
//   BUCKETQ_MODE     local (default: the queue in this process) or remote (system `bucketq-remote`:
//                    the queue in a writer process of its own, dist/bench/remoteWriter.js, served by
//                    QueueServer on loopback; this process reaches it through QueueClient.layer, so
//                    producers and workers are remote to the writer as BullMQ's are to Redis)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Context, Effect, Exit, Fiber, Layer, Logger, Redacted, Schema, Scope } from 'effect';
import { Job, JobQueue, Kv, ObjectStore, QueueClient, Worker } from 'bucketq';
import { main } from './lib/driver.mjs';

const QUEUE = 'bench';
const Task = Job.define(QUEUE, { payload: Schema.Struct({ i: Schema.Number, t: Schema.Number, pad: Schema.String }) });
const claimWait = `${Number(process.env.BUCKETQ_CLAIM_WAIT_MS || 50)} millis`;
const runMode = process.env.BUCKETQ_RUN || 'compiled';
const workersMode = process.env.BUCKETQ_WORKERS || 'worker';
if (!['worker', 'bare'].includes(workersMode)) throw new Error(`BUCKETQ_WORKERS must be worker or bare, not ${workersMode}`);
const mode = process.env.BUCKETQ_MODE || 'local';
if (!['local', 'remote'].includes(mode)) throw new Error(`BUCKETQ_MODE must be local or remote, not ${mode}`);
const logToStderr = Layer.succeed(Logger.LogToStderr, true);

const version = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;

// Where `bucketq` resolved, and which `effect` the adapter and bucketq each get (real paths).
function resolution() {
  const entry = fs.realpathSync(fileURLToPath(import.meta.resolve('bucketq')));
  const effectHere = fs.realpathSync(fileURLToPath(import.meta.resolve('effect')));
  const effectThere = fs.realpathSync(createRequire(entry).resolve('effect'));
  return { entry, effectHere, effectThere };
}

function scratchDir(env) {
  const base = env.BUCKETQ_SCRATCH;
  if (!base) throw new Error('BUCKETQ_SCRATCH is not set');
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, 'store-'));
}

/** A writer process on `directory`, stopped when `scope` closes, and the layer of a client of it. */
async function remoteLayer(env, directory, scope) {
  const token = randomBytes(16).toString('hex');
  const script = path.join(env.BUCKETQ_ROOT, 'dist/bench/remoteWriter.js');
  // with this process's node flags (--cpu-prof profiles both ends)
  const writer = spawn(process.execPath, [...process.execArgv, script, directory, token], { stdio: ['ignore', 'pipe', 'inherit'] });
  await Effect.runPromise(Scope.addFinalizer(scope, Effect.promise(() => new Promise((resolve) => {
    if (writer.exitCode !== null) return resolve();
    writer.once('exit', () => resolve());
    writer.kill('SIGTERM');
  }))));
  const port = await new Promise((resolve, reject) => {
    let buffer = '';
    writer.once('exit', (code) => reject(new Error(`the writer exited (${code}) before listening`)));
    writer.stdout.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      const match = /listening (\d+)/.exec(buffer);
      if (match) resolve(match[1]);
    });
  });
  return QueueClient.layer({ url: `ws://127.0.0.1:${port}/rpc`, token: Redacted.make(token) }).pipe(Layer.provide(logToStderr));
}

const adapter = {
  name: 'bucketq',

  async meta(ctx) {
    const root = ctx.env.BUCKETQ_ROOT;
    if (!root) throw new Error('BUCKETQ_ROOT is not set');
    const r = resolution();
    if (r.effectHere !== r.effectThere) throw new Error(`two copies of effect: ${r.effectHere} (adapter) and ${r.effectThere} (bucketq)`);
    const realRoot = fs.realpathSync(root);
    return {
      'version.bucketq': `${version(root)}${ctx.env.BUCKETQ_COMMIT ? ` (${ctx.env.BUCKETQ_COMMIT})` : ''}`,
      'version.effect': version(path.join(root, 'node_modules/effect')),
      ...(runMode === 'tsx'
        ? { 'version.tsx': version(path.join(root, 'node_modules/tsx')) }
        : { 'version.typescript': version(path.join(root, 'node_modules/typescript')) }),
      'version.node': process.version,
      'bucketq.run': runMode === 'tsx'
        ? 'TypeScript sources through the tsx loader'
        : 'compiled JavaScript (tsc -p tsconfig.build.json of the commit, no tsx)',
      'bucketq.commit': ctx.env.BUCKETQ_COMMIT || '?',
      'bucketq.entry': path.relative(realRoot, r.entry),
      'effect.single_copy': 'yes (adapter and bucketq resolve the same real path)',
      'store.backend': mode === 'remote'
        ? 'directory (ObjectStore.layerFileSystem) in a writer process (dist/bench/remoteWriter.js, QueueServer on loopback, not in bench peak RSS); this process: QueueClient.layer over WebSocket'
        : 'directory (ObjectStore.layerFileSystem), in process',
      'store.directory': ctx.env.BUCKETQ_SCRATCH ? `${ctx.env.BUCKETQ_SCRATCH}/store-*` : '?',
      'durability': 'every enqueue and ack durable before it returns (default)',
      'kv.options': 'defaults (useLocalLog: true = WAL appended to a local log + fdatasync per group commit; maxWalPutsInFlight: 4)',
      'queue.options': 'defaults; done jobs deleted on ack (keepDone unset), stats.done is cumulative',
      'worker.mode': workersMode,
      'worker.claim': workersMode === 'worker'
        ? 'Worker.layer(Task, handler, { concurrency: C }), other options at their defaults (batch = C, idleWait 5 s, lease the definition\'s)'
        : `bare loops: claim({ max: 1, wait: "${claimWait}" }) then ack, one loop per unit of concurrency`,
    };
  },

  async open(ctx) {
    const directory = scratchDir(ctx.env);
    const scope = Effect.runSync(Scope.make());
    const layer = mode === 'remote'
      ? await remoteLayer(ctx.env, directory, scope)
      : JobQueue.layer().pipe(
        Layer.provide(Kv.layer()),
        Layer.provide(ObjectStore.layerFileSystem({ directory })),
        Layer.provide(logToStderr),
      );
    const context = await Effect.runPromise(Layer.buildWithScope(layer, scope));
    const queue = Context.get(context, JobQueue.JobQueue);
    const initial = await Effect.runPromise(queue.stats(QUEUE));
    if (initial.pending + initial.scheduled + initial.claimed !== 0) throw new Error('fresh queue is not empty');

    let stopping = false;
    // worker mode: the scope the Worker layer is built in
    let workerScope;
    // bare mode: the loops' fibers
    const loops = [];
    const loop = (handler) => Effect.gen(function* () {
      while (!stopping) {
        const claims = yield* queue.claim(Task, { max: 1, wait: claimWait });
        for (const claim of claims) {
          handler(claim.job.payload);
          yield* queue.ack(claim);
        }
      }
    });

    return {
      enqueue: (data) => Effect.runPromise(queue.enqueue(Task, data)),
      enqueueBulk: (datas) => Effect.runPromise(queue.enqueueBatch(Task, datas)),
      async startWorkers(c, handler) {
        if (workersMode === 'worker') {
          if (workerScope) throw new Error('startWorkers called twice');
          workerScope = Effect.runSync(Scope.make());
          const worker = Worker.layer(Task, (payload) => Effect.sync(() => handler(payload)), { concurrency: c }).pipe(
            Layer.provide(Layer.succeed(JobQueue.JobQueue, queue)),
            Layer.provide(logToStderr),
          );
          await Effect.runPromise(Layer.buildWithScope(worker, workerScope));
          return;
        }
        for (let i = 0; i < c; i++) {
          const fiber = Effect.runFork(loop(handler));
          fiber.addObserver((exit) => {
            if (Exit.isFailure(exit) && !stopping) ctx.log('worker failed', String(exit.cause));
          });
          loops.push(fiber);
        }
      },
      async stats() {
        const s = await Effect.runPromise(queue.stats(QUEUE));
        return { pending: s.pending + s.scheduled + s.claimed, done: s.done, failed: s.dead };
      },
      async close() {
        stopping = true;
        // The worker stops claiming and drains the jobs in flight when its scope closes.
        if (workerScope) await Effect.runPromise(Scope.close(workerScope, Exit.void));
        // Idle bare loops are inside a claim's wait; interrupting them there loses nothing.
        await Effect.runPromise(Fiber.interruptAll(loops));
        await Effect.runPromise(Scope.close(scope, Exit.void));
      },
    };
  },
};

export default adapter;
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main(adapter);
