// The writer process of `npm run bench:remote`: the queue on a directory, served by QueueServer on
// loopback; prints "listening <port>" once it listens, and runs until killed.
//   node dist/bench/remoteWriter.js <directory> <token>
import { Effect, Layer, Redacted } from "effect"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import * as QueueServer from "../src/QueueServer.ts"

const [directory, token] = process.argv.slice(2)
// a clean exit on SIGTERM, so that a --cpu-prof profile of this process is written
process.on("SIGTERM", () => process.exit(0))
const Queue = JobQueue.layer().pipe(Layer.provide(Kv.layer()), Layer.provide(ObjectStore.layerFileSystem({ directory: directory! })))
const Server = QueueServer.layer({ port: 0, token: Redacted.make(token!) }).pipe(Layer.provide(Queue))
const program = Effect.gen(function*() {
  const server = yield* QueueServer.QueueServer
  process.stdout.write(`listening ${server.port}\n`)
  return yield* Effect.never
})
Effect.runPromise(Effect.scoped(Effect.provide(program, Server))).catch((error) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
