// The bank: transfers between accounts as transactions, an auditor reading every account in one
// snapshot, and a crash at a random store operation. The total never changes: not in any
// snapshot, not after recovery.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import type * as Kv from "../src/Kv.ts"
import { makePrng } from "../src/internal/prng.ts"
import { bytes, text } from "./utils/exits.ts"
import { drive, driveOrDie, faultyMemory, openKv } from "./utils/kv.ts"

const accounts = Array.from({ length: 10 }, (_, i) => `acct/${i}`)
const balance = (o: Option.Option<Uint8Array>) => Number(Option.getOrThrow(Option.map(o, text)))

const total = (reader: Pick<Kv.Transaction, "get">) =>
  Effect.map(Effect.forEach(accounts, (a) => Effect.map(reader.get(bytes(a)), balance)), (bs) => ({
    sum: bs.reduce((x, y) => x + y, 0),
    negative: bs.some((b) => b < 0)
  }))

const runBank = (seed: number) =>
  Effect.gen(function*() {
    const prng = makePrng(`bank-${seed}`)
    const { control, reliable, store } = yield* faultyMemory({
      seed,
      faults: { put: { latency: { _tag: "Uniform", min: 0, max: 4 }, lostResponseRate: 0.05 }, get: { errorRate: 0.02 } },
      retry: { base: "1 millis", maxAttempts: 8 }
    })
    const options = { runFlushSegments: 1 + prng.int(0, 3), maxRuns: 2, gcMinAge: 0, keepManifests: 1 }
    const a = yield* driveOrDie(openKv(store, options), "open")
    yield* driveOrDie(a.kv.write(accounts.map((key) => ({ _tag: "Put" as const, key: bytes(key), value: bytes("100") }))), "init")
    yield* control.freezeAt((yield* control.operations) + prng.int(0, 60))
    const transfer = a.kv.transaction((tx) =>
      Effect.gen(function*() {
        const from = accounts[prng.int(0, accounts.length)]!
        const to = accounts[prng.int(0, accounts.length)]!
        const amount = prng.int(1, 60)
        const fromBalance = balance(yield* tx.get(bytes(from)))
        yield* Effect.yieldNow // let other transactions interleave
        if (from === to || fromBalance < amount) return
        const toBalance = balance(yield* tx.get(bytes(to)))
        yield* tx.put(bytes(from), bytes(String(fromBalance - amount)))
        yield* tx.put(bytes(to), bytes(String(toBalance + amount)))
      }), { maxRetries: 100 })
    const audit = a.kv.transaction((tx) =>
      Effect.flatMap(total(tx), ({ negative, sum }) =>
        sum === 1000 && !negative ? Effect.void : Effect.die(new Error(`seed ${seed}: the auditor saw ${sum}`))))
    const workers = [
      ...Array.from({ length: 3 }, () => Effect.repeat(transfer, { times: 9 })),
      Effect.repeat(Effect.andThen(audit, Effect.sleep("1 millis")), { times: 9 })
    ]
    const done = yield* drive(Effect.all(workers, { concurrency: "unbounded" }), 2_000)
    if (done !== undefined && done._tag === "Failure") {
      return yield* Effect.die(new Error(`seed ${seed}: ${String(done.cause)}`))
    }
    yield* control.freeze
    const b = yield* driveOrDie(openKv(reliable, options), "reopen")
    const after = yield* total(b.kv)
    assert.deepStrictEqual(after, { sum: 1000, negative: false }, `seed ${seed}`)
  })

describe("Kv bank", () => {
  it.effect("60 seeds of transfers, audits and a crash: the total is 1,000 in every snapshot and after recovery", () =>
    Effect.forEach(Array.from({ length: 60 }, (_, seed) => seed), runBank, { discard: true }), { timeout: 120_000 })
})
