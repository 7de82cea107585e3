/**
 * One copy of `effect`: every layer of bucketq checks, as it is built, that the runtime building it
 * is the `effect` that bucketq imports, and dies with `DuplicateEffect` (a message naming the fix)
 * when it is not.
 *
 * Two copies happen when an app's `effect` and bucketq's resolve to different folders: bucketq
 * installed from a folder or with `npm link` (its own `node_modules/effect` comes along), or
 * versions that npm could not dedupe. Values of one copy are then only partly understood by the
 * other, and the program fails much later with a defect that names neither package.
 *
 * **Details**
 *
 * The check compares the class of the fiber running the layer with the class of a fiber of
 * bucketq's copy (created once, on the first check). A fiber of the same copy is an instance of the
 * same class; the check is a pointer comparison.
 */
import { Effect, Schema, Version } from "effect"

/**
 * The layer was built by a runtime of another copy of `effect` than the one bucketq imports.
 * `version` is the version of bucketq's copy. A defect: no program can handle it but by installing
 * one copy.
 */
export class DuplicateEffect extends Schema.TaggedError<DuplicateEffect>()("DuplicateEffect", {
  version: Schema.String
}) {
  override get message(): string {
    return `bucketq imports a different copy of the \`effect\` package (version ${this.version}) from the one ` +
      "running this program: two copies of effect in one app do not understand each other's values. " +
      "Fix: install a single copy. `effect` is a peer dependency of bucketq: list it in your app's " +
      "dependencies, run `npm dedupe`, and check that `npm ls effect` shows one version. If bucketq " +
      "was installed from a folder or with `npm link`, that folder's node_modules/effect is the " +
      "second copy: install bucketq from the registry or from a tarball made by `npm pack` instead."
  }
}

let ownFiberClass: unknown = undefined

/** The class of this copy's fibers, found by running one fiber of this copy once. */
const fiberClassOfThisCopy = (): unknown => {
  ownFiberClass ??= Effect.runSync(Effect.withFiber((fiber) => Effect.succeed(fiber.constructor)))
  return ownFiberClass
}

/**
 * Succeeds when the fiber running it belongs to the `effect` that bucketq imports; otherwise dies
 * with `DuplicateEffect`. Every layer's build starts with it.
 */
export const checkOneEffect: Effect.Effect<void> = Effect.withFiber((fiber) =>
  fiber.constructor === fiberClassOfThisCopy()
    ? Effect.void
    : Effect.die(new DuplicateEffect({ version: Version.getCurrentVersion() }))
)
