/**
 * The store in context with its local log, as one `Context`: what to hand on to an effect that
 * runs elsewhere (a reload later, a layer built apart). `Effect.provideService(ObjectStore, store)`
 * would hand on the store alone and leave the directory backend's `LocalLog` behind.
 *
 * @internal
 */
import { Context, Effect, Option } from "effect"
import { ObjectStore, type Service } from "../ObjectStore.ts"
import { LocalLog, type Service as LocalLogService } from "./LocalLog.ts"

/**
 * `store` as the only service of a context, with `log` beside it when there is one: what every
 * layer that provides a store (and the directory's log) builds.
 */
export const storeContext = (store: Service, log: Option.Option<LocalLogService>): Context.Context<ObjectStore> => {
  const context = Context.make(ObjectStore, store)
  return Option.isSome(log) ? Context.add(context, LocalLog, log.value) : context
}

/**
 * The `ObjectStore` in context and, if the context has one, its `LocalLog`. Its type names only
 * the store, which is always there. (Suspended: this module and `ObjectStore.ts` import each other.)
 */
export const current: Effect.Effect<Context.Context<ObjectStore>, never, ObjectStore> = Effect.suspend(() =>
  Effect.zipWith(ObjectStore, Effect.serviceOption(LocalLog), storeContext)
)
