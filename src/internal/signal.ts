/**
 * A wake-up that is never lost: a `notify` with nobody waiting makes the next `wait` return at
 * once; a `notify` wakes everyone waiting. Waiters re-check their condition after waking.
 *
 * @internal
 */
import { Deferred, Effect } from "effect"

/** @internal */
export interface Signal {
  readonly notify: () => void
  readonly wait: Effect.Effect<void>
}

/** @internal */
export const makeSignal = (): Signal => {
  let pending = false
  let waiter: Deferred.Deferred<void> | undefined
  return {
    notify: () => {
      if (waiter === undefined) {
        pending = true
        return
      }
      const w = waiter
      waiter = undefined
      Deferred.doneUnsafe(w, Effect.void)
    },
    wait: Effect.suspend(() => {
      if (pending) {
        pending = false
        return Effect.void
      }
      waiter ??= Deferred.makeUnsafe<void>()
      return Deferred.await(waiter)
    })
  }
}
