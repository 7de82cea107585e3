// Reading metrics in tests: the value of one series of the registry in context, and a fresh
// registry, so that a test sees only what it did.
import { Effect, Metric } from "effect"

/** The state of the series `id` whose attributes are exactly `attributes` (undefined: none). */
export const series = (id: string, attributes: Readonly<Record<string, string>>) =>
  Effect.map(Metric.snapshot, (snapshots) =>
    snapshots.find((s) => {
      const own = s.attributes ?? {}
      const keys = Object.keys(attributes)
      return s.id === id && Object.keys(own).length === keys.length && keys.every((k) => own[k] === attributes[k])
    })?.state)

/** A counter's count or a gauge's value (0 for a series not there). */
export const valueOf = (id: string, attributes: Readonly<Record<string, string>>) =>
  Effect.map(series(id, attributes), (state) => {
    if (state === undefined) return 0
    if ("count" in state && !("buckets" in state)) return Number(state.count)
    if ("value" in state) return Number(state.value)
    throw new Error(`${id} is neither a counter nor a gauge`)
  })

/** `effect` with a registry of its own (layers built in it count there). */
export const withRegistry = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => Effect.provideService(effect, Metric.MetricRegistry, new Map()))
