/**
 * The outermost wrapper of every store layer: input is checked before anything else runs, so a
 * bad key is never retried, counted or sent.
 *
 * @internal
 */
import { Effect, Stream } from "effect"
import type { Service } from "../ObjectStore.ts"
import { checkKey, checkMetadata, checkPrefix, checkRange, checkStartAfter } from "./validate.ts"

/** @internal */
export const validated = (store: Service): Service => ({
  get: (key, options) =>
    checkKey(key).pipe(Effect.andThen(checkRange(key, options)), Effect.andThen(() => store.get(key, options))),
  head: (key) => Effect.andThen(checkKey(key), () => store.head(key)),
  put: (key, bytes, condition, metadata) =>
    checkKey(key).pipe(
      Effect.andThen(checkMetadata(metadata)),
      Effect.andThen(() => store.put(key, bytes, condition, metadata))
    ),
  delete: (key) => Effect.andThen(checkKey(key), () => store.delete(key)),
  list: (prefix, options) => {
    const startAfter = options?.startAfter
    const checks = startAfter === undefined
      ? checkPrefix(prefix)
      : Effect.andThen(checkPrefix(prefix), checkStartAfter(startAfter))
    return Stream.unwrap(Effect.map(checks, () => store.list(prefix, options)))
  }
})
