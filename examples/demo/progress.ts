// The demo's live progress line: enqueued so far, queued (pending and scheduled), running
// (claimed), done, retried, dead, and jobs settled per second over the last two seconds. Counts
// come from the queues' counters (`stats`, kept in the store, so a resumed run goes on from
// where the last one was) and retries from the queue's `events` stream (added to the retries
// the accounting found at the start). On a terminal the line is redrawn in place 5 times a
// second; otherwise a plain line is printed twice a second.
import { Clock, Effect, Ref, Stream } from "effect"
import type * as JobQueue from "../../src/JobQueue.ts"

/** What the line shows. */
export interface Figures {
  readonly enqueued: number
  readonly total: number
  readonly queued: number
  readonly running: number
  readonly done: number
  readonly retried: number
  readonly dead: number
  readonly rate: number
}

/** The line, e.g. `enqueued 1200/3000 · queued 340 · running 16 · done 820 · retried 25 · dead 15 · 410 jobs/s`. */
export const format = (f: Figures): string =>
  `enqueued ${f.enqueued}/${f.total} · queued ${f.queued} · running ${f.running} · done ${f.done} · ` +
  `retried ${f.retried} · dead ${f.dead} · ${Math.round(f.rate)} jobs/s`

/** Counts of the queues named, from their counters. */
export const totals = (queue: JobQueue.Service, names: ReadonlyArray<string>) =>
  Effect.map(Effect.forEach(names, (name) => queue.stats(name)), (all) => ({
    queued: all.reduce((sum, s) => sum + s.pending + s.scheduled, 0),
    running: all.reduce((sum, s) => sum + s.claimed, 0),
    done: all.reduce((sum, s) => sum + s.done, 0),
    dead: all.reduce((sum, s) => sum + s.dead, 0)
  }))

const tty = process.stdout.isTTY === true
const write = (s: string) => Effect.sync(() => void process.stdout.write(s))

/** Prints a line of its own, ending the live line first on a terminal. */
export const say = (line: string) => write(tty ? `\r\x1b[2K${line}\n` : `${line}\n`)

/**
 * Starts the line (in the scope) and returns an effect that draws it one last time and ends it.
 * `enqueued` is read at every redraw; `retriedBefore` is what earlier runs retried.
 */
export const start = (options: {
  readonly queue: JobQueue.Service
  readonly names: ReadonlyArray<string>
  readonly total: number
  readonly enqueued: Ref.Ref<number>
  readonly retriedBefore: number
}) =>
  Effect.gen(function*() {
    const retried = yield* Ref.make(options.retriedBefore)
    yield* options.queue.events.pipe(
      Stream.runForEach((event) => event._tag === "Retried" ? Ref.update(retried, (n) => n + 1) : Effect.void),
      Effect.ignore,
      Effect.forkScoped
    )
    const samples: Array<{ readonly at: number; readonly settled: number }> = []
    const figures = Effect.gen(function*() {
      const counts = yield* totals(options.queue, options.names)
      const at = yield* Clock.currentTimeMillis
      samples.push({ at, settled: counts.done + counts.dead })
      while (samples.length > 1 && at - samples[0]!.at > 2000) samples.shift()
      const first = samples[0]!
      const rate = at > first.at ? ((counts.done + counts.dead - first.settled) * 1000) / (at - first.at) : 0
      return { ...counts, enqueued: yield* Ref.get(options.enqueued), total: options.total, retried: yield* Ref.get(retried), rate }
    })
    const draw = Effect.flatMap(figures, (f) => write(tty ? `\r\x1b[2K${format(f)}` : `${format(f)}\n`))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(draw, Effect.sleep(tty ? "200 millis" : "500 millis"))))
    return Effect.andThen(draw, tty ? write("\n") : Effect.void)
  })
