/**
 * The web page's memory of the last minutes: a bounded ring of samples of every queue's counters,
 * and the series a chart draws from it (depth by state, and rates from the differences between
 * consecutive samples). Pure data and arithmetic: the sampling itself (its clock and schedule) is
 * `Ui.ts`'s.
 *
 * @internal
 */
import type { QueueStats } from "../../JobQueue.ts"

/** The counters of one queue in one sample. */
export interface Counts {
  readonly pending: number
  readonly scheduled: number
  readonly claimed: number
  /** Cumulative: jobs acknowledged so far. */
  readonly done: number
  readonly dead: number
}

/** Every queue's counters at one instant (epoch ms). */
export interface Sample {
  readonly at: number
  readonly queues: ReadonlyMap<string, Counts>
}

/** A sample of the queues listed at `at`. */
export const sampleOf = (at: number, queues: ReadonlyArray<QueueStats>): Sample =>
  ({ at, queues: new Map(queues.map((q) => [q.queue, countsOf(q)])) })

const countsOf = ({ claimed, dead, done, pending, scheduled }: Counts): Counts => ({ pending, scheduled, claimed, done, dead })

/** A ring of at most `capacity` items: pushing onto a full ring drops the oldest. */
export interface Ring<A> {
  readonly push: (item: A) => void
  /** The items, oldest first. */
  readonly items: () => ReadonlyArray<A>
}

/** An empty ring of `capacity` (at least 1) items. */
export const makeRing = <A>(capacity: number): Ring<A> => {
  const slots: Array<A> = []
  let next = 0
  return {
    push: (item) => {
      if (slots.length < capacity) slots.push(item)
      else slots[next] = item
      next = (next + 1) % capacity
    },
    items: () => (slots.length < capacity ? slots.slice() : [...slots.slice(next), ...slots.slice(0, next)])
  }
}

/**
 * One point of a chart: the depth by state at `at`, and the rates per second since the sample
 * before (`null` on the first point). `enqueued` is the growth of all jobs ever seen (pending,
 * scheduled, claimed, done, dead), `deadLettered` the growth of the dead; both are floored at 0
 * (a purge lowers them).
 */
export interface Point {
  readonly at: number
  readonly pending: number
  readonly scheduled: number
  readonly claimed: number
  readonly dead: number
  readonly completed: number | null
  readonly enqueued: number | null
  readonly deadLettered: number | null
}

const zero: Counts = { pending: 0, scheduled: 0, claimed: 0, done: 0, dead: 0 }

/** The counters of `queue` in `sample` (zero when absent), or of every queue summed when `queue` is undefined. */
const countsIn = (sample: Sample, queue: string | undefined): Counts => {
  if (queue !== undefined) return sample.queues.get(queue) ?? zero
  let sum = zero
  for (const c of sample.queues.values()) {
    sum = {
      pending: sum.pending + c.pending,
      scheduled: sum.scheduled + c.scheduled,
      claimed: sum.claimed + c.claimed,
      done: sum.done + c.done,
      dead: sum.dead + c.dead
    }
  }
  return sum
}

const total = (c: Counts): number => c.pending + c.scheduled + c.claimed + c.done + c.dead

const rate = (now: number, before: number, seconds: number): number => Math.max(0, now - before) / seconds

/** The chart points of `queue` (or of all queues summed) over `samples`, oldest first. */
export const series = (samples: ReadonlyArray<Sample>, queue: string | undefined): ReadonlyArray<Point> =>
  samples.map((sample, i) => {
    const now = countsIn(sample, queue)
    const previous = i === 0 ? undefined : samples[i - 1]!
    const depth = { at: sample.at, pending: now.pending, scheduled: now.scheduled, claimed: now.claimed, dead: now.dead }
    const seconds = previous === undefined ? 0 : (sample.at - previous.at) / 1000
    if (previous === undefined || seconds <= 0) return { ...depth, completed: null, enqueued: null, deadLettered: null }
    const before = countsIn(previous, queue)
    return {
      ...depth,
      completed: rate(now.done, before.done, seconds),
      enqueued: rate(total(now), total(before), seconds),
      deadLettered: rate(now.dead, before.dead, seconds)
    }
  })
