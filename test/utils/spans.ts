// Spans in tests: a tracer keeping every span it makes, and the parent of a span.
import { Effect, Option, Tracer } from "effect"

/** `body` given the spans made while it runs (by a tracer keeping them all), run with that tracer. */
export const withSpans = <A, E, R>(body: (spans: ReadonlyArray<Tracer.NativeSpan>) => Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const spans: Array<Tracer.NativeSpan> = []
    const tracer = Tracer.make({
      span: (options) => {
        const span = new Tracer.NativeSpan(options)
        spans.push(span)
        return span
      }
    })
    return Effect.withTracer(body(spans), tracer)
  })

/** The parent of a span (undefined for none, or for a span of another process). */
export const parentOf = (span: Tracer.AnySpan | undefined): Tracer.AnySpan | undefined =>
  span?._tag === "Span" ? Option.getOrUndefined(span.parent) : undefined
