// Two writers opening one directory store at once (two standbys taking over together): a newer
// writer fences only the local logs it finds when it opens, so an older writer that creates its
// log after that must find itself fenced before acknowledging anything; otherwise its commits
// would be acknowledged into a log no one reads (found by the standby tests).
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import * as Kv from "../src/Kv.ts"
import * as BlockCache from "../src/kv/blockCache.ts"
import { recover } from "../src/kv/recovery.ts"
import { makeStats } from "../src/kv/runReader.ts"
import { startWriter } from "../src/kv/writer.ts"
import * as ObjectStore from "../src/ObjectStore.ts"
import { reasonOf } from "./utils/exits.ts"
import { tempDirectory } from "./utils/stores.ts"

/** A directory store over `directory`, and its local log. */
const storeOver = (directory: string) =>
  Effect.map(Layer.build(ObjectStore.layerFileSystem({ directory })), (context) => ({
    store: Context.get(context, ObjectStore.ObjectStore),
    log: Context.get(context, ObjectStore.LocalLog)
  }))

const reads = { cache: BlockCache.make(1024 * 1024), stats: makeStats() }

const writerOptions = {
  minFlushInterval: Duration.zero,
  maxWalPutsInFlight: 4,
  useLocalLog: true,
  maxUnflushedBytes: 64 * 1024 * 1024,
  runFlushSegments: 512,
  memtableBytes: 8 * 1024 * 1024,
  maxRuns: 16,
  maxRunBytes: 32 * 1024 * 1024,
  reads,
  gcMinAge: Duration.minutes(10),
  keepManifests: 10,
  fenceCheckInterval: undefined
}

describe("Kv writers opening one directory store at once", () => {
  it.effect("an older writer whose log is created after a newer writer opened fails Fenced before it can acknowledge a commit", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const older = yield* storeOver(directory)
      // the older writer raised its epoch and recovered, but has not created its log yet…
      const recovered = yield* recover(older.store, older.log, { openAttempts: 10, reads })
      assert.strictEqual(recovered.epoch, 1)
      // …when a newer writer opens: it finds no log of epoch 1 to fence
      const newer = Context.get(yield* Layer.build(Kv.layer().pipe(Layer.provide(ObjectStore.layerFileSystem({ directory })))), Kv.Kv)
      assert.strictEqual((yield* newer.stats).epoch, 2)
      const started = yield* Effect.exit(startWriter(older.store, older.log, recovered, writerOptions))
      assert.strictEqual(reasonOf(started), "Fenced")
    }))
})
