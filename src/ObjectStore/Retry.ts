/**
 * The retry policy every backend gets: bounded exponential backoff with jitter from `Schedule`
 * (so `TestClock` drives it), and write tokens that settle the outcome of a conditional put whose
 * response was lost.
 *
 * @internal
 */
import { Duration, Effect, Result, Schedule, Stream } from "effect"
import type { Metadata, PutCondition, Service } from "../ObjectStore.ts"
import { isRetryable, ObjectStoreError } from "../ObjectStoreError.ts"
import { randomToken } from "../internal/token.ts"
import { checkUnreserved } from "./validate.ts"

/**
 * Options of the retry policy.
 *
 * @category models
 * @since 0.1.0
 */
export interface RetryOptions {
  /** Attempts in all, the first included (default 6). */
  readonly maxAttempts?: number | undefined
  /** Delay before the second attempt; doubles after each (default 50 ms). */
  readonly base?: Duration.Input | undefined
  /** Longest delay between two attempts (default 5 s). */
  readonly max?: Duration.Input | undefined
}

/** Metadata name of the write token every put carries. */
export const writeTokenName = "bucketq-token"

const retryableError = (error: unknown): boolean => error instanceof ObjectStoreError && isRetryable(error)

/** The backoff schedule: `base · 2^(n−1)`, each delay jittered by ×[0.8, 1.2], capped at `max`. */
export const backoff = (options: RetryOptions): Schedule.Schedule<unknown> => {
  const max = Duration.fromInputUnsafe(options.max ?? "5 seconds")
  return Schedule.exponential(options.base ?? "50 millis").pipe(
    Schedule.jittered,
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, max))),
    Schedule.upTo({ times: Math.max(0, (options.maxAttempts ?? 6) - 1) })
  )
}

const withoutToken = <A extends { readonly metadata: Metadata }>(info: A): A => {
  if (!(writeTokenName in info.metadata)) return info
  const { [writeTokenName]: _, ...metadata } = info.metadata
  return { ...info, metadata }
}

const isConditional = (condition: PutCondition | undefined): boolean =>
  condition?.ifNoneMatch !== undefined || condition?.ifMatch !== undefined

/** @internal */
export const retrying = (store: Service, options: RetryOptions): Service => {
  const schedule = backoff(options)
  const retry = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.retry(effect, { schedule, while: retryableError })

  const put: Service["put"] = (key, bytes, condition, metadata) =>
    Effect.gen(function*() {
      yield* checkUnreserved(metadata)
      const token = yield* randomToken
      const tagged = { ...metadata, [writeTokenName]: token }
      // Set once an attempt failed in a way that may have applied it (timeout, 5xx, 409).
      let uncertain = false
      // A precondition failure after an uncertain attempt may be our own earlier write: the
      // object's token says. Gone since: not ours to claim. Unreadable: the outcome stays unknown.
      const settle = (error: ObjectStoreError) =>
        store.head(key).pipe(
          retry,
          Effect.matchEffect({
            onFailure: (headError) =>
              Effect.fail(headError instanceof ObjectStoreError && headError.reason._tag !== "NotFound" ? headError : error),
            onSuccess: (info) => info.metadata[writeTokenName] === token ? Effect.succeed(info.etag) : Effect.fail(error)
          })
        )
      const attempt = store.put(key, bytes, condition, tagged).pipe(
        Effect.catchTag("ObjectStoreError", (error) => {
          if (error.reason._tag === "PreconditionFailed" && uncertain && isConditional(condition)) return settle(error)
          if (isRetryable(error)) uncertain = true
          return Effect.fail(error)
        })
      )
      return yield* retry(attempt)
    })

  // A listing that fails part-way resumes after the last key it gave. Final errors travel as
  // values through `Stream.retry`, which would otherwise retry them too.
  const list: Service["list"] = (prefix, listOptions) => {
    let last = listOptions?.startAfter
    return Stream.suspend(() => store.list(prefix, last === undefined ? {} : { startAfter: last })).pipe(
      Stream.map((entry) => {
        last = entry.key
        return Result.succeed(entry)
      }),
      Stream.catch((error) => retryableError(error) ? Stream.fail(error) : Stream.succeed(Result.fail(error))),
      Stream.retry(schedule),
      Stream.mapEffect((result) => Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure))
    )
  }

  return {
    get: (key, getOptions) => Effect.map(retry(store.get(key, getOptions)), withoutToken),
    head: (key) => Effect.map(retry(store.head(key)), withoutToken),
    put,
    delete: (key) => retry(store.delete(key)),
    list
  }
}
