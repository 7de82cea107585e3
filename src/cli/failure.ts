/**
 * The one error of the `bucketq` CLI's commands: a sentence for the person at the terminal
 * (`effect/cli` prints it, through `CliError.userMessage`, and the process exits with 1). Errors
 * of the library are turned into one with `failWith`, which keeps their own message.
 *
 * @internal
 */
import { Effect, Schema } from "effect"
import { CliError } from "effect/cli"

/** A command failed; `message` says why, for people. */
export class CliFailure extends Schema.TaggedError<CliFailure>()("CliFailure", {
  message: Schema.String
}) {
  override get [CliError.userMessage](): string {
    return this.message
  }
}

/** The message of any failure: its own `message` when it has one. */
export const describe = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string" && error.message !== ""
    ? error.message
    : String(error)

/** Fails with `CliFailure` ("`what`: the error's message") instead of any other error. */
export const failWith = (what: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, CliFailure, R> =>
  Effect.mapError(effect, (error) => error instanceof CliFailure ? error : new CliFailure({ message: `${what}: ${describe(error)}` }))
