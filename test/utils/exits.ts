// Small helpers shared by the suites.
import { Exit } from "effect"

/** UTF-8 bytes of a string, and back. */
export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
export const text = (data: Uint8Array): string => new TextDecoder().decode(data)

/**
 * What an exit was, in one word: `Success`, the `reason` tag of an `ObjectStoreError`, or the tag
 * of any other typed failure (`NoFailure` for defects and interruptions).
 */
export const reasonOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "Success"
  const failure = exit.cause.reasons.find((r) => r._tag === "Fail") as
    | { readonly error: { readonly _tag: string; readonly reason?: unknown } }
    | undefined
  if (failure === undefined) return "NoFailure"
  const { _tag, reason } = failure.error
  return _tag === "ObjectStoreError" && typeof reason === "object" && reason !== null && "_tag" in reason
    ? String(reason._tag)
    : _tag
}
