/**
 * The one error every public operation fails with when an option it was given breaks its rule:
 * `InvalidOption`, naming the option, the value given (rendered as text, whatever it was) and the
 * rule it broke. Nothing is written when an operation fails with it; it is never a defect.
 *
 * **Details**
 *
 * The same class serves the job queue (`JobQueue`, `Job`, `Worker`), the KV (`Kv.layer`) and the
 * object store layers, so a program handles every bad option with one
 * `Effect.catchTag("InvalidOption", …)`. The synchronous constructors (`Job.define`, the
 * `Job.Backoff` constructors, `Worker.makePermits`, `Worker.Retry`) throw it instead, at the call.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * An option broke its rule: `option` is its name (a path such as `rateLimit.window` for nested
 * ones), `value` the value given, rendered as text (`NaN`, `Infinity`, `Invalid Date`, a JSON
 * string, a type name for functions and symbols; cut to 200 characters), and `reason` the rule.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidOption extends Schema.TaggedError<InvalidOption>()("InvalidOption", {
  option: Schema.String,
  value: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid option ${this.option} = ${this.value}: ${this.reason}`
  }
}
