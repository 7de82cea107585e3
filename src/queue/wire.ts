/**
 * What the writer needs of a job definition, as plain data. A `Job.Definition` holds Schemas and
 * functions (a custom backoff, migrations), which stay with the code that encodes and decodes
 * payloads; the writer only stores encoded payloads and needs the definition's numbers: its
 * queue, attempts, priority, lease, retentions and payload version. The queue's writing parts
 * take these settings and encoded payloads, so that they serve a definition in this process and,
 * over a connection, one in another process alike.
 *
 * @internal
 */
import { Duration, Schema } from "effect"
import * as Job from "../Job.ts"

/**
 * A definition's settings (durations in milliseconds).
 *
 * @internal
 */
export const JobSettings = Schema.Struct({
  queue: Schema.String,
  maxAttempts: Schema.Int,
  priority: Schema.Int,
  leaseMillis: Schema.Number,
  /** Done jobs kept this long (none: deleted at their ack). */
  keepDoneMillis: Schema.optionalKey(Schema.Number),
  deadRetentionMillis: Schema.Number,
  resultRetentionMillis: Schema.Number,
  /** The version payloads are written with (1 when the definition has none). */
  version: Schema.Int
})

/** @internal */
export type JobSettings = typeof JobSettings.Type

const settingsByDefinition = new WeakMap<object, JobSettings>()

/**
 * The settings of a checked definition (built once per definition: the hot paths ask for them at
 * every call).
 */
export const settingsOf = (definition: Job.Definition<any, any, any>): JobSettings => {
  let settings = settingsByDefinition.get(definition)
  if (settings === undefined) {
    settings = {
      queue: definition.queue,
      maxAttempts: definition.maxAttempts,
      priority: definition.priority,
      leaseMillis: Duration.toMillis(definition.leaseDuration),
      ...(definition.keepDone === undefined ? {} : { keepDoneMillis: Duration.toMillis(definition.keepDone) }),
      deadRetentionMillis: Duration.toMillis(definition.deadRetention),
      // definitions built by hand before results existed have no retention: the default applies
      resultRetentionMillis: Duration.toMillis(definition.resultRetention ?? Job.defaultResultRetention),
      version: definition.version ?? 1
    }
    settingsByDefinition.set(definition, settings)
  }
  return settings
}
