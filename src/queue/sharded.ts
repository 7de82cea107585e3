/**
 * One `JobQueue.Service` over several (`QueueClient.layerSharded`): each queue lives in one
 * shard, a prefix of its own with its own writer, and every operation goes where its queue
 * lives.
 *
 * - By queue: the operations that take a definition (`enqueue`, `claim`, `schedule`, `get` and
 *   `awaitCompletion` with one, ...) or a queue name (`stats`, `list`, `pause`, ...), and the
 *   settlements of a claim (by its job's queue), go to the queue's shard.
 * - By id alone (`get(id)`, `history`, `cancel`, `wake`, `requeueDead(id)`, `awaitCompletion(id)`):
 *   a job id does not tell its queue, so the shards are asked in turn (`get` at once) and the one
 *   that has the job answers; when none has it, the last shard's answer stands (its `NotFound`,
 *   `JobNotFound`, ...). An error that is not "not here" (a shard unreachable) stops the search.
 * - Across shards: `queues` and `schedules` gather every shard's (ordered as one queue's are),
 *   `events` merges every shard's, `unschedule` removes the key wherever it is.
 * - `kv` is the home shard's (the user KV is one namespace per prefix).
 * - Nothing commits across shards: a settlement's follow-up enqueues must be of its job's shard,
 *   and user KV writes (a settlement's, an enqueue's `kv`) go only with jobs of the home shard;
 *   anything else is `InvalidOption`, with nothing written, rather than stored where the rest of
 *   the queue would not see it.
 *
 * @internal
 */
import { Effect, Option, Predicate, Stream } from "effect"
import type { InvalidOption } from "../InvalidOption.ts"
import { invalid } from "../internal/options.ts"
import type { CancelOutcome, EnqueueOptions, Service, SettlementEffects, WakeOutcome } from "../JobQueue.ts"

/** The shards, and where a queue lives. */
export interface Shards {
  /** Every shard, the home shard first. */
  readonly all: readonly [Service, ...ReadonlyArray<Service>]
  /** The shard of a queue. */
  readonly of: (queue: string) => Service
}

/**
 * Asks the shards in turn: the first answer that is not "not here" (`absent`) stands, else the
 * last shard's. Failures other than `absentError` stop the search.
 */
const firstOwning = <A, E>(
  shards: ReadonlyArray<Service>,
  ask: (shard: Service) => Effect.Effect<A, E>,
  absent: (value: A) => boolean,
  absentError: (error: E) => boolean = () => false
): Effect.Effect<A, E> => {
  const from = (index: number): Effect.Effect<A, E> => {
    const last = index === shards.length - 1
    const answer = ask(shards[index]!)
    if (last) return answer
    return Effect.matchEffect(answer, {
      onSuccess: (value) => (absent(value) ? from(index + 1) : Effect.succeed(value)),
      onFailure: (error) => (absentError(error) ? from(index + 1) : Effect.fail(error))
    })
  }
  return from(0)
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined

/** The queue a definition (or a claim's job) names; `""` for none. */
const queueOf = (value: unknown): string => {
  const queue = field(value, "queue")
  return typeof queue === "string" ? queue : ""
}

/** The routed queue (see the module's header). */
export const make = ({ all, of }: Shards): Service => {
  const home = all[0]
  // Arguments are read defensively: one that names no queue goes home, whose checks refuse it.
  const byDefinition = (definition: unknown) => of(queueOf(definition))
  const byClaim = (claim: unknown) => of(queueOf(field(claim, "job")))
  /** The argument a name-or-definition overload was given: its queue's shard. */
  const byTarget = (target: unknown) => of(typeof target === "string" ? target : queueOf(target))

  /**
   * Why `effects` cannot commit with a job of `queue` (see the module's header), if they cannot.
   * Only well-formed effects are looked at: the shard's queue checks the rest, with its errors.
   */
  const crossShardError = (queue: string, effects: SettlementEffects | undefined): InvalidOption | undefined => {
    if (typeof effects !== "object" || effects === null) return undefined
    const shard = of(queue)
    const followUps: ReadonlyArray<unknown> = Array.isArray(effects.enqueue) ? effects.enqueue : []
    for (const followUp of followUps) {
      const target = Array.isArray(followUp) ? (followUp[0] as { readonly queue?: unknown } | undefined)?.queue : undefined
      if (typeof target === "string" && of(target) !== shard) {
        return invalid("enqueue", target, `a follow-up of a job of queue ${queue} must be of the same shard: a settlement commits in one shard`)
      }
    }
    return shard !== home && (hasEntries(effects.kv) || hasEntries(effects.kvDelete)) ? kvElsewhere(queue) : undefined
  }
  const hasEntries = (value: unknown) => typeof value === "object" && value !== null && Object.keys(value).length > 0
  const kvElsewhere = (queue: string) =>
    invalid("kv", queue, "the user KV is the home shard's: it is written only with jobs of the home shard's queues")
  /** Runs `settle` unless `effects` would cross shards. */
  const guarded = <A, E>(queue: string, effects: SettlementEffects | undefined, settle: () => Effect.Effect<A, E>) => {
    const error = crossShardError(queue, effects)
    return error === undefined ? settle() : Effect.fail(error)
  }
  const enqueueGuarded = (queue: string, options: EnqueueOptions | undefined) =>
    typeof options === "object" && options !== null && hasEntries(options.kv) && of(queue) !== home ? kvElsewhere(queue) : undefined

  const get = ((first: any, id?: string) =>
    id !== undefined
      ? byDefinition(first).get(first, id)
      : Effect.map(
        Effect.all(all.map((shard) => shard.get(first as string)), { concurrency: "unbounded" }),
        (found) => found.find(Option.isSome) ?? Option.none()
      )) as Service["get"]

  const awaitCompletion = ((first: any, second?: any, third?: any) => {
    if (typeof first !== "string") return byDefinition(first).awaitCompletion(first, second, third)
    // the shard that has the job waits for it; when none has it, the home shard answers (`NotFound`)
    return Effect.flatMap(
      Effect.findFirst(all, (shard) => Effect.map(Effect.option(shard.history(first)), Option.isSome)),
      (owner) => Option.getOrElse(owner, () => home).awaitCompletion(first, second)
    )
  }) as Service["awaitCompletion"]

  const requeueDead = ((target: string, options?: { readonly all: true }) =>
    options !== undefined
      ? of(target).requeueDead(target, options)
      : firstOwning(all, (shard) => shard.requeueDead(target), () => false, Predicate.isTagged("JobNotFound"))) as Service["requeueDead"]

  return {
    enqueue: (definition, payload, options) => {
      const error = enqueueGuarded(queueOf(definition), options)
      return error === undefined ? byDefinition(definition).enqueue(definition, payload, options) : Effect.fail(error)
    },
    enqueueBatch: (definition, payloads) => byDefinition(definition).enqueueBatch(definition, payloads),
    claim: (definition, options) => byDefinition(definition).claim(definition, options),
    ack: (claim, options) => guarded(queueOf(field(claim, "job")), options, () => byClaim(claim).ack(claim, options)),
    nack: (claim, error, options) => guarded(queueOf(field(claim, "job")), options?.effects, () => byClaim(claim).nack(claim, error, options)),
    release: (claim) => byClaim(claim).release(claim),
    discard: (claim) => byClaim(claim).discard(claim),
    deadLetter: (claim, reason, options) =>
      guarded(queueOf(field(claim, "job")), options?.effects, () => byClaim(claim).deadLetter(claim, reason, options)),
    extendLease: (claim, duration) => byClaim(claim).extendLease(claim, duration),
    get,
    history: (id) => firstOwning(all, (shard) => shard.history(id), () => false, Predicate.isTagged("JobNotFound")),
    kv: home.kv,
    events: Stream.mergeAll(all.map((shard) => shard.events), { concurrency: "unbounded" }),
    stats: (queue) => of(queue).stats(queue),
    cancel: (id) => firstOwning(all, (shard) => shard.cancel(id), (outcome: CancelOutcome) => outcome === "NotFound"),
    awaitCompletion,
    list: ((target: any, state: any, options?: any) => byTarget(target).list(target, state, options)) as Service["list"],
    queues: () =>
      Effect.map(
        Effect.all(all.map((shard) => shard.queues()), { concurrency: "unbounded" }),
        (lists) => lists.flat().sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0))
      ),
    deadJobs: (queue, options) => of(queue).deadJobs(queue, options),
    requeueDead,
    purgeDead: (queue) => of(queue).purgeDead(queue),
    wake: (id) => firstOwning(all, (shard) => shard.wake(id), (outcome: WakeOutcome) => outcome === "NotFound"),
    pause: (queue) => of(queue).pause(queue),
    resume: (queue) => of(queue).resume(queue),
    schedule: (definition, options) => byDefinition(definition).schedule(definition, options),
    unschedule: (key) => firstOwning(all, (shard) => shard.unschedule(key), (outcome) => outcome === "NotFound"),
    schedules: () =>
      Effect.map(
        Effect.all(all.map((shard) => shard.schedules()), { concurrency: "unbounded" }),
        (lists) => lists.flat().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      )
  }
}
