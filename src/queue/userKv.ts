/**
 * The user KV namespace (`queue.kv`): string keys and byte values in a key space of its own
 * (`keys.ts` `userKey`), written durably like every queue change. The same writes can ride on a
 * queue commit (`stageWrites`): an enqueue's `kv`, a settlement's `kv` and `kvDelete`, so that a
 * handler's bookkeeping and its job's outcome are one atomic step.
 *
 * Every key and value is checked before anything is written: a key is a well-formed string of 1
 * to 1024 UTF-8 bytes, a value a `Uint8Array` of at most 256 KiB (`ValueTooLarge` above it).
 *
 * @internal
 */
import { Effect, Option } from "effect"
import type { InvalidOption } from "../InvalidOption.ts"
import { fromLatin1, toLatin1 } from "../internal/binary.ts"
import { checked } from "../internal/options.ts"
import type { QueueKv } from "../JobQueue.ts"
import { afterPrefix, Changes, type Writes } from "../kv/engine.ts"
import { ValueTooLarge } from "../KvError.ts"
import type { QueueContext } from "./context.ts"
import * as Keys from "./keys.ts"
import * as QueueOptions from "./options.ts"
import { retries } from "./records.ts"

/** Puts and deletes of the user namespace, checked, to stage in a commit. */
export interface UserWrites {
  readonly put: ReadonlyArray<readonly [key: string, value: Uint8Array]>
  readonly delete: ReadonlyArray<string>
}

/** No user writes. */
export const noWrites: UserWrites = { put: [], delete: [] }

/** `ValueTooLarge` for a value over the namespace's limit. */
const sizeError = (value: Uint8Array): ValueTooLarge | undefined =>
  value.length > QueueOptions.maxUserValue
    ? new ValueTooLarge({ what: "value", size: value.length, limit: QueueOptions.maxUserValue })
    : undefined

/**
 * The user writes of `kv: { key: bytes }` and `kvDelete: [key]` (either left out), checked:
 * `InvalidOption` naming the option, or `ValueTooLarge`.
 */
export const userWrites = (
  option: string,
  kv: unknown,
  kvDelete: unknown
): Effect.Effect<UserWrites, InvalidOption | ValueTooLarge> =>
  Effect.suspend((): Effect.Effect<UserWrites, InvalidOption | ValueTooLarge> => {
    const invalid = (kv === undefined ? undefined : QueueOptions.userWritesError(`${option}kv`, kv)) ??
      (kvDelete === undefined ? undefined : QueueOptions.userDeletesError(`${option}kvDelete`, kvDelete))
    if (invalid !== undefined) return Effect.fail(invalid)
    const put = kv === undefined ? [] : Object.entries(kv as Record<string, Uint8Array>)
    for (const [, value] of put) {
      const tooLarge = sizeError(value)
      if (tooLarge !== undefined) return Effect.fail(tooLarge)
    }
    // a copy: the caller may reuse its buffers once the call returns
    return Effect.succeed({ put: put.map(([key, value]) => [key, value.slice()] as const), delete: [...(kvDelete as ReadonlyArray<string> ?? [])] })
  })

/** Stages checked user writes in a queue transaction (deletes first: a key both put and deleted ends put). */
export const stageWrites = (tx: Writes, writes: UserWrites): void => {
  for (const key of writes.delete) tx.delete(Keys.userKey(key))
  for (const [key, value] of writes.put) tx.put(Keys.userKey(key), toLatin1(value))
}


/** A value or none, as `compareAndSet` takes them. */
const asOption = (value: Option.Option<Uint8Array> | Uint8Array): Option.Option<Uint8Array> =>
  Option.isOption(value) ? value : Option.some(value)

/** `userValueError` of a value or of the value in an `Option` (none passes). */
const maybeValueError = (option: string, value: unknown) =>
  Option.isOption(value)
    ? Option.isSome(value) ? QueueOptions.userValueError(option, value.value) : undefined
    : QueueOptions.userValueError(option, value)

/** The user KV namespace of the queue of `ctx`. */
export const make = (ctx: QueueContext): QueueKv => {
  const { kv, live } = ctx

  const get: QueueKv["get"] = (key) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.userKeyError("key", key))
      yield* live
      const value = yield* kv.get(Keys.userKey(key))
      return value === undefined ? Option.none() : Option.some(fromLatin1(value))
    })

  const put: QueueKv["put"] = (key, value) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.userKeyError("key", key) ?? QueueOptions.userValueError("value", value))
      const tooLarge = sizeError(value)
      if (tooLarge !== undefined) return yield* tooLarge
      // a copy: the caller may reuse its buffer once the call returns
      const changes = new Changes()
      changes.put(Keys.userKey(key), toLatin1(value))
      yield* kv.write(changes)
    })

  const del: QueueKv["delete"] = (key) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.userKeyError("key", key))
      const changes = new Changes()
      changes.delete(Keys.userKey(key))
      yield* kv.write(changes)
    })

  const compareAndSet: QueueKv["compareAndSet"] = (key, expected, next) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.userKeyError("key", key) ?? maybeValueError("expected", expected) ?? maybeValueError("next", next))
      const value = asOption(next)
      if (Option.isSome(value)) {
        const tooLarge = sizeError(value.value)
        if (tooLarge !== undefined) return yield* tooLarge
      }
      const stored = Option.map(value, toLatin1)
      const want = Option.map(asOption(expected), toLatin1)
      const userKey = Keys.userKey(key)
      const { value: set } = yield* kv.transaction((tx) =>
        Effect.map(tx.get(userKey), (current) => {
          const matches = Option.isNone(want) ? current === undefined : current === want.value
          if (!matches) return false
          if (Option.isSome(stored)) tx.put(userKey, stored.value)
          else tx.delete(userKey)
          return true
        }), retries)
      return set
    })

  const scan: QueueKv["scan"] = (prefix, options) =>
    Effect.gen(function*() {
      yield* checked(QueueOptions.userScanError(prefix, options))
      yield* live
      const from = Keys.userKey(prefix)
      const after = options?.after === undefined ? undefined : Keys.userKey(options.after) + "\x00"
      // keys are latin1 strings, so `>` is byte order
      const start = after !== undefined && after > from ? after : from
      const entries = yield* kv.scan(start, afterPrefix(from), options?.limit ?? 1000)
      return entries.map(([key, value]) => ({ key: Keys.userKeyName(key), value: fromLatin1(value) }))
    })

  return { get, put, delete: del, compareAndSet, scan }
}
