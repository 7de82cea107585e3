/**
 * The store in context with its local log, as one `Context`: what to hand on to an effect that
 * runs elsewhere (a reload later, a layer built apart). `Effect.provideService(ObjectStore, store)`
 * would hand on the store alone and leave the directory backend's `LocalLog` behind.
 *
 * @internal
 */
import { Context, Effect, Option } from "effect"
import { ObjectStore } from "../ObjectStore.ts"
import { LocalLog } from "./LocalLog.ts"

/**
 * The `ObjectStore` in context and, if the context has one, its `LocalLog`. Its type names only
 * the store, which is always there.
 */
export const current: Effect.Effect<Context.Context<ObjectStore>, never, ObjectStore> = Effect.zipWith(
  ObjectStore,
  Effect.serviceOption(LocalLog),
  (store, log) => {
    const context = Context.make(ObjectStore, store)
    return Option.isSome(log) ? Context.add(context, LocalLog, log.value) : context
  }
)
