// A tour of the object store every part of bucketq is built on.
//   npx tsx examples/objectStore.ts                      (a directory store in ./.bucketq)
//   BUCKETQ_URL=memory: npx tsx examples/objectStore.ts
import { Effect, Stream } from "effect"
import { StoreLive } from "../layers/StoreLive.ts"
import { ObjectStore } from "../src/index.ts"

const encode = (text: string) => new TextEncoder().encode(text)
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** Adds one to a counter object with compare-and-swap, retrying when another writer got there first. */
const increment = (store: ObjectStore.Service, key: string): Effect.Effect<number, unknown> =>
  Effect.gen(function*() {
    const current = yield* store.get(key).pipe(
      Effect.catchReason("ObjectStoreError", "NotFound", () => Effect.succeed(undefined))
    )
    const next = current === undefined ? 1 : Number(decode(current.bytes)) + 1
    const condition = current === undefined ? { ifNoneMatch: "*" as const } : { ifMatch: current.etag }
    return yield* store.put(key, encode(String(next)), condition).pipe(
      Effect.as(next),
      Effect.catchReason("ObjectStoreError", "PreconditionFailed", () => increment(store, key))
    )
  })

const program = Effect.gen(function*() {
  const store = yield* ObjectStore.ObjectStore
  const run = yield* increment(store, "example/runs")
  yield* store.put(`example/log/${String(run).padStart(6, "0")}`, encode(`run ${run}`), { ifNoneMatch: "*" })
  const log = yield* Stream.runCollect(store.list("example/log/"))
  yield* Effect.log(`run ${run}; the log has ${log.length} entries, the last ${log.at(-1)?.key}`)
})

Effect.runPromise(Effect.provide(program, StoreLive)).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
