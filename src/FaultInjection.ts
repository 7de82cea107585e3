/**
 * A fault-injecting object store for tests: seeded latency, errors, "applied but the response
 * was lost", and a freeze switch that stops the store at operation k (a simulated crash). It
 * counts requests and bytes per operation kind.
 *
 * **Details**
 *
 * `layer(options)` wraps the `ObjectStore` in context (build that one with `retry: false`) and
 * provides a new `ObjectStore`, with the retry policy on top of the faults (unless
 * `retry: false`), plus the `FaultInjection` control service. Latency is slept on Effect's
 * `Clock`, so `TestClock` drives it; every random draw comes from a generator seeded by
 * `options.seed`, so a schedule of faults repeats exactly.
 *
 * The layer provides no `ObjectStore.LocalLog`: a KV over the faulty store writes its WAL as
 * objects, which the faults reach, even over the directory backend. Build it with
 * `Layer.provide` (which keeps the inner layer's services, its `LocalLog` included, to itself);
 * `Layer.provideMerge` would put the inner layer's log beside the faulty store.
 *
 * **Example** (A store that loses every tenth put response)
 *
 * ```ts
 * import { Layer } from "effect"
 * import { FaultInjection, ObjectStore } from "bucketq"
 *
 * const store = FaultInjection.layer({ seed: 7, faults: { put: { lostResponseRate: 0.1 } } }).pipe(
 *   Layer.provide(ObjectStore.layerMemory({ retry: false }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Option, Stream } from "effect"
import { ObjectStore, type RetryOptions, type Service as ObjectStoreService } from "./ObjectStore.ts"
import { listPageSize } from "./ObjectStore/Memory.ts"
import { retrying } from "./ObjectStore/Retry.ts"
import { validated } from "./ObjectStore/Validated.ts"
import * as ObjectStoreError from "./ObjectStoreError.ts"
import type { InvalidOption } from "./InvalidOption.ts"
import { checked } from "./internal/options.ts"
import { makePrng, type Prng } from "./internal/prng.ts"
import * as StoreOptions from "./ObjectStore/options.ts"

/**
 * A latency distribution, in milliseconds.
 *
 * @category models
 * @since 0.1.0
 */
export type Latency =
  | { readonly _tag: "Fixed"; readonly millis: number }
  | { readonly _tag: "Uniform"; readonly min: number; readonly max: number }
  /** Log-normal with this median and 99th percentile, the usual shape of object store latency. */
  | { readonly _tag: "LogNormal"; readonly p50: number; readonly p99: number }

/**
 * Faults of one operation kind. Rates are probabilities per request, in [0, 1].
 *
 * @category models
 * @since 0.1.0
 */
export interface OperationFaults {
  /** Slept before the request is applied. */
  readonly latency?: Latency | undefined
  /** Fail before applying anything. */
  readonly errorRate?: number | undefined
  /** The reason of those failures (default `Unavailable`). */
  readonly errorReason?: ObjectStoreError.Reason["_tag"] | undefined
  /** Apply the request, then fail `Unavailable` as if the response had been lost. */
  readonly lostResponseRate?: number | undefined
  /** Only keys (list: prefixes) starting with this are affected. */
  readonly keyPrefix?: string | undefined
}

/**
 * Faults per operation kind; `all` applies to kinds without an entry of their own.
 *
 * @category models
 * @since 0.1.0
 */
export type Faults = { readonly [K in ObjectStoreError.Operation | "all"]?: OperationFaults | undefined }

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** Seed of every random draw. */
  readonly seed: number | string
  readonly faults?: Faults | undefined
  /** Freeze at this operation index (0-based, counted over all kinds); see `freezeAt`. */
  readonly freezeAt?: number | undefined
  /** The retry policy put over the faults; `false` for the bare faulty store. */
  readonly retry?: RetryOptions | false | undefined
}

/**
 * Requests and bytes of one operation kind, counted below the retry policy (every attempt).
 *
 * @category models
 * @since 0.1.0
 */
export interface OperationCounters {
  readonly requests: number
  readonly bytesWritten: number
  readonly bytesRead: number
  readonly errors: number
  readonly lostResponses: number
}

/**
 * @category models
 * @since 0.1.0
 */
export type Counters = { readonly [K in ObjectStoreError.Operation]: OperationCounters }

/**
 * The control of a fault-injecting store.
 *
 * @category models
 * @since 0.1.0
 */
export interface Service {
  /** Replaces the faults from now on (checked as `Options.faults`: `InvalidOption`, nothing changed). */
  readonly setFaults: (faults: Faults) => Effect.Effect<void, InvalidOption>
  /**
   * From operation `index` on (0-based over all kinds), no request completes: each hangs until
   * interrupted, as in-flight requests do when a process dies. With `applyFirst`, the request
   * at `index` is applied before it hangs (it landed, but no one learned of it).
   */
  readonly freezeAt: (index: number, options?: { readonly applyFirst?: boolean | undefined }) => Effect.Effect<void>
  /** Freezes from the next operation on. */
  readonly freeze: Effect.Effect<void>
  /** Requests started after this work again; those already hanging stay so. */
  readonly unfreeze: Effect.Effect<void>
  /** Whether the store is frozen now. */
  readonly frozen: Effect.Effect<boolean>
  /** Operations started so far (the index the next one gets). */
  readonly operations: Effect.Effect<number>
  readonly counters: Effect.Effect<Counters>
  readonly resetCounters: Effect.Effect<void>
}

/**
 * @category services
 * @since 0.1.0
 */
export class FaultInjection extends Context.Service<FaultInjection, Service>()("bucketq/FaultInjection") {}

const operations: ReadonlyArray<ObjectStoreError.Operation> = ["get", "head", "put", "delete", "list"]

const emptyCounters = (): Record<ObjectStoreError.Operation, { -readonly [K in keyof OperationCounters]: number }> => {
  const counters = {} as Record<ObjectStoreError.Operation, { -readonly [K in keyof OperationCounters]: number }>
  for (const op of operations) counters[op] = { requests: 0, bytesWritten: 0, bytesRead: 0, errors: 0, lostResponses: 0 }
  return counters
}

const sampleLatency = (prng: Prng, latency: Latency): number => {
  switch (latency._tag) {
    case "Fixed":
      return latency.millis
    case "Uniform":
      return latency.min + prng.next() * (latency.max - latency.min)
    case "LogNormal": {
      const mu = Math.log(latency.p50)
      const sigma = (Math.log(latency.p99) - mu) / 2.3263
      return Math.exp(mu + sigma * prng.normal())
    }
  }
}

/**
 * Wraps `store` with faults; returns the faulty store and its control. Throws `InvalidOption` for
 * an option outside its rule (rates from 0 to 1, latencies from 0 to an hour, known operations and
 * reasons, `freezeAt` a whole number, the retry policy's rules), at once: it is built where a test
 * is written.
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (store: ObjectStoreService, options: Options): { readonly store: ObjectStoreService; readonly control: Service } => {
  const invalid = StoreOptions.faultInjectionOptionsError(options)
  if (invalid !== undefined) throw invalid
  const prng = makePrng(options.seed)
  let faults: Faults = options.faults ?? {}
  let started = 0
  let frozenFrom = options.freezeAt ?? Number.POSITIVE_INFINITY
  let applyFirst = false
  let counters = emptyCounters()

  type Decision = { readonly _tag: "Run"; readonly delay: number; readonly fail?: ObjectStoreError.Reason["_tag"]; readonly lose: boolean } | {
    readonly _tag: "Freeze"
    readonly apply: boolean
  }

  /** Draws what happens to the next request, in a fixed order of draws so that a seed repeats. */
  const decide = (op: ObjectStoreError.Operation, key: string): Decision => {
    const index = started++
    counters[op].requests++
    if (index >= frozenFrom) return { _tag: "Freeze", apply: applyFirst && index === frozenFrom }
    const f = faults[op] ?? faults.all
    if (f === undefined || (f.keyPrefix !== undefined && !key.startsWith(f.keyPrefix))) {
      return { _tag: "Run", delay: 0, lose: false }
    }
    const delay = f.latency === undefined ? 0 : sampleLatency(prng, f.latency)
    const failDraw = prng.next()
    const loseDraw = prng.next()
    if (failDraw < (f.errorRate ?? 0)) {
      counters[op].errors++
      return { _tag: "Run", delay, fail: f.errorReason ?? "Unavailable", lose: false }
    }
    const lose = loseDraw < (f.lostResponseRate ?? 0)
    if (lose) counters[op].lostResponses++
    return { _tag: "Run", delay, lose }
  }

  const sleep = (millis: number) => (millis > 0 ? Effect.sleep(Duration.millis(millis)) : Effect.void)

  const inject = <A, E>(
    op: ObjectStoreError.Operation,
    key: string,
    run: Effect.Effect<A, E>,
    onSuccess: (a: A) => void
  ): Effect.Effect<A, E | ObjectStoreError.ObjectStoreError> =>
    Effect.suspend(() => {
      const decision = decide(op, key)
      if (decision._tag === "Freeze") return decision.apply ? Effect.andThen(Effect.exit(run), Effect.never) : Effect.never
      const injected = (reason: ObjectStoreError.Reason["_tag"], detail: string) =>
        Effect.fail(ObjectStoreError.make(op, key, reason, { detail }))
      return sleep(decision.delay).pipe(
        Effect.andThen(
          decision.fail !== undefined
            ? injected(decision.fail, "injected fault")
            : Effect.tap(run, (a) => {
              onSuccess(a)
              return decision.lose ? injected("Unavailable", "injected lost response") : Effect.void
            })
        )
      )
    })

  const faulty: ObjectStoreService = {
    get: (key, getOptions) => inject("get", key, store.get(key, getOptions), (o) => (counters.get.bytesRead += o.bytes.length)),
    head: (key) => inject("head", key, store.head(key), () => {}),
    put: (key, bytes, condition, metadata) =>
      inject("put", key, store.put(key, bytes, condition, metadata), () => (counters.put.bytesWritten += bytes.length)),
    delete: (key) => inject("delete", key, store.delete(key), () => {}),
    // Read a page of 1,000 keys at a time, each page one request with its own faults, as S3
    // pages a listing.
    list: (prefix, listOptions) =>
      Stream.paginate(listOptions?.startAfter, (after: string | undefined) =>
        inject(
          "list",
          prefix,
          Stream.runCollect(Stream.take(store.list(prefix, after === undefined ? {} : { startAfter: after }), listPageSize)),
          () => {}
        ).pipe(Effect.map((page) => [page, page.length === listPageSize ? Option.some(page[page.length - 1]!.key) : Option.none()] as const)))
  }

  const control: Service = {
    setFaults: (next) =>
      Effect.andThen(
        checked(StoreOptions.faultsError("faults", next)),
        Effect.sync(() => void (faults = next))
      ),
    freezeAt: (index, freezeOptions) =>
      Effect.sync(() => {
        frozenFrom = index
        applyFirst = freezeOptions?.applyFirst ?? false
      }),
    freeze: Effect.sync(() => {
      frozenFrom = started
      applyFirst = false
    }),
    unfreeze: Effect.sync(() => void (frozenFrom = Number.POSITIVE_INFINITY)),
    frozen: Effect.sync(() => started >= frozenFrom),
    operations: Effect.sync(() => started),
    counters: Effect.sync(() => {
      const copy = emptyCounters()
      for (const op of operations) copy[op] = { ...counters[op] }
      return copy
    }),
    resetCounters: Effect.sync(() => void (counters = emptyCounters()))
  }
  return { store: faulty, control }
}

/**
 * Wraps the `ObjectStore` in context with faults, and the retry policy over them. Its context
 * holds the new store and the control, nothing else (no `LocalLog`).
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<ObjectStore | FaultInjection, InvalidOption, ObjectStore> =>
  Layer.effectContext(Effect.andThen(checked(StoreOptions.faultInjectionOptionsError(options)), Effect.map(ObjectStore, (inner) => {
    const { control, store } = make(inner, options)
    const outer = validated(options.retry === false ? store : retrying(store, options.retry ?? {}))
    return Context.make(ObjectStore, outer).pipe(Context.add(FaultInjection, control))
  })))
