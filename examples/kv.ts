// The KV engine: durable commits, a serializable transaction, a scan, and a restart that recovers.
//   npx tsx examples/kv.ts            (a directory store in ./.bucketq-kv-example)
import { Effect, Layer, Option } from "effect"
import { Kv, ObjectStore } from "../src/index.ts"

const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const store = ObjectStore.layerFileSystem({ directory: "./.bucketq-kv-example" })
const kvLayer = Kv.layer().pipe(Layer.provide(store))

/** Moves everything from one account to another, atomically. */
const move = (kv: Kv.Service, from: string, to: string) =>
  kv.transaction((tx) =>
    Effect.gen(function*() {
      const amount = Number(Option.getOrElse(Option.map(yield* tx.get(bytes(from)), text), () => "0"))
      const target = Number(Option.getOrElse(Option.map(yield* tx.get(bytes(to)), text), () => "0"))
      yield* tx.put(bytes(to), bytes(String(target + amount)))
      yield* tx.put(bytes(from), bytes("0"))
      return amount
    }), { isolation: "serializable" })

const first = Effect.gen(function*() {
  const kv = yield* Kv.Kv
  const { seq } = yield* kv.write([{ _tag: "Put", key: bytes("acct/a"), value: bytes("100") }])
  const moved = yield* move(kv, "acct/a", "acct/b")
  yield* Effect.log(`commit ${seq} is durable; moved ${moved}`)
}).pipe(Effect.provide(kvLayer))

const afterRestart = Effect.gen(function*() {
  const kv = yield* Kv.Kv
  const accounts = yield* kv.scan({ prefix: bytes("acct/") })
  yield* Effect.log(`after a restart: ${accounts.map((e) => `${text(e.key)}=${text(e.value)}`).join(", ")}; epoch ${(yield* kv.stats).epoch}`)
}).pipe(Effect.provide(kvLayer))

Effect.runPromise(Effect.andThen(first, afterRestart)).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
