/**
 * An append-only log in the directory backend's own directory, which the KV uses for its WAL
 * there instead of one object per group commit: a durable append is one write and one
 * `fdatasync` of a file that exists, where a new object takes a temporary file, an fsync, a
 * link, an unlink and an fsync of the directory (measured on this project's VM: 0.15-0.2 ms
 * against 0.4-0.9 ms).
 *
 * Layout, under `%wal/` (a `%` not followed by `25`: never a key's directory); the format of
 * parts and seals is `schema/LogPart.ts`:
 *
 * ```
 * <epoch>/<part>.log   checksummed frames in a part of fixed size; a crash can leave any part's
 *                      last frames torn (several appends wait for their sync at once)
 * <epoch>/fence        created by a newer writer before it reads the epoch's parts; its meaning
 *                      is its existence (it holds no bytes)
 * <epoch>/seal         where each part's frames end, fixed once by the first newer writer that
 *                      read the epoch's log; checksummed
 * ```
 *
 * One writer per epoch appends (the KV's manifests make epochs unique). Fencing needs no lock:
 * the writer looks for its fence after each append is durable and acknowledges nothing once it
 * is there; a newer writer creates the fence before it reads. If the writer's look missed the
 * fence, its append came before the fence and so before the read, which therefore saw it; what
 * the writer appends after the fence is never acknowledged, and the seal keeps every later
 * reader from seeing it.
 *
 * Damage is never read as a shorter history: a frame that does not check where the log was
 * durable, a part of the wrong size, a missing part or a seal that does not check is
 * `LogCorrupt`, naming the file and the byte (see `localLog/read.ts`).
 *
 * The log is its own service, `LocalLog`, beside the `ObjectStore` (not a field of it): the
 * directory backend's layer provides both, and the KV looks for it with `Effect.serviceOption`.
 * Wrappers of the store (retry, metrics, validation) therefore never see it, and one that changes
 * what objects do (fault injection) provides a new `ObjectStore` and no `LocalLog`.
 *
 * @internal
 */
import * as path from "node:path"
import { Context, Duration, Effect, type Scope } from "effect"
import * as LogPart from "../../schema/LogPart.ts"
import { randomToken } from "../internal/token.ts"
import type { ObjectStoreError } from "../ObjectStoreError.ts"
import { type Appender, makeAppender, type Written } from "./localLog/append.ts"
import { LogCorrupt, type ParsedPart, parsePart, resolveSealed, resolveUnsealed, type TakenPart } from "./localLog/read.ts"
import * as Fs from "./nodeFs.ts"

export { type Appender, LogCorrupt, type Written }

/** The records of one part of an epoch's log. */
export type Part = Pick<TakenPart, "part" | "records">

/**
 * The operations of the log, as the directory backend offers it.
 *
 * @category models
 * @since 0.1.0
 */
export interface Service {
  /** The epochs that have a log, ascending. */
  readonly epochs: Effect.Effect<ReadonlyArray<number>, ObjectStoreError>
  /**
   * Fences `epoch` (once), then reads its parts up to its seal, sealing it where it ends now if
   * no one did before. Fails with `LogCorrupt` if acknowledged history does not check.
   */
  readonly takeOver: (epoch: number) => Effect.Effect<ReadonlyArray<Part>, ObjectStoreError | LogCorrupt>
  /**
   * Reads `epoch`'s parts as they are, writing nothing (no fence, no seal, no sync): up to its
   * seal if it has one, else up to where its frames end now (a live writer's log included, whose
   * newest appends may be missing or torn). Fails with `LogCorrupt` like `takeOver`.
   */
  readonly read: (epoch: number) => Effect.Effect<ReadonlyArray<Part>, ObjectStoreError | LogCorrupt>
  /** Starts the log of `epoch` (new: its first part); closed with the scope. */
  readonly appender: (epoch: number) => Effect.Effect<Appender, ObjectStoreError, Scope.Scope>
  /** Deletes one part of an epoch's log (its fence and seal stay). */
  readonly deletePart: (epoch: number, part: number) => Effect.Effect<void, ObjectStoreError>
}

/**
 * The append-only log beside the store's objects, when the backend has one (the directory
 * backend's layers provide it with their `ObjectStore`; memory and S3 have none). The KV reads it
 * with `Effect.serviceOption`: present, it appends its WAL there (one write and `fdatasync` per
 * group commit instead of one object) and recovers from it; absent, it uses WAL objects only. It
 * must be the log of the `ObjectStore` beside it: a layer that replaces the store with one that
 * behaves differently (fault injection) provides no `LocalLog`.
 *
 * @category services
 * @since 0.1.0
 */
export class LocalLog extends Context.Service<LocalLog, Service>()("bucketq/LocalLog") {}

/** Tuning of the log (defaults: 4 MiB parts, a confirm frame after 20 ms idle). */
export interface Options {
  readonly partBytes?: number | undefined
  readonly confirmAfter?: Duration.Input | undefined
}

const pad = (n: number) => String(n).padStart(20, "0")
const partName = (part: number) => `${pad(part)}.log`

/** Where the logs are, relative to the store's root: every file of theirs is named under it. */
export const logPrefix = "%wal/"
/** Where an epoch's log is, relative to the store's root (for messages naming it). */
export const epochPath = (epoch: number): string => `${logPrefix}${pad(epoch)}`
/** Where a part of an epoch's log is, relative to the store's root. */
export const partPath = (epoch: number, part: number): string => `${epochPath(epoch)}/${partName(part)}`

/** Builds the log of the store in `root`, using its coalesced directory fsync. */
export const make = (
  root: string,
  syncDirectory: (dir: string) => Effect.Effect<void, Fs.FsError>,
  options?: Options
): Service => {
  const base = path.join(root, "%wal")
  const epochDir = (epoch: number) => path.join(base, pad(epoch))
  const relative = (file: string) => path.relative(root, file)
  const appendOptions = {
    partBytes: options?.partBytes ?? 4 * 1024 * 1024,
    confirmAfter: Duration.fromInputUnsafe(options?.confirmAfter ?? "20 millis")
  }
  const ignoreExists = <A, R>(effect: Effect.Effect<A, Fs.FsError, R>) =>
    Effect.catchIf(effect, (error) => Fs.codeOf(error) === "EEXIST", () => Effect.void)

  /** Creates the epoch's directory (and `%wal/`), durably. */
  const ensureEpochDir = (epoch: number) =>
    Fs.mkdir(base).pipe(
      ignoreExists,
      Effect.andThen(syncDirectory(root)),
      Effect.andThen(Fs.mkdir(epochDir(epoch))),
      ignoreExists,
      Effect.andThen(syncDirectory(base))
    )

  const numbered = (dir: string, suffix: string) =>
    Fs.readdir(dir).pipe(
      Effect.catchIf((error) => Fs.codeOf(error) === "ENOENT", () => Effect.succeed([])),
      Effect.map((entries) =>
        entries
          .filter((e) => e.name.endsWith(suffix) && /^\d{20}/.test(e.name))
          .map((e) => Number(e.name.slice(0, 20)))
          .sort((a, b) => a - b)
      )
    )

  const sealFile = (epoch: number) => path.join(epochDir(epoch), "seal")

  /** The epoch's seal, undefined if none; `LogCorrupt` if it does not check. */
  const readSeal = (epoch: number) =>
    Fs.readFile(sealFile(epoch)).pipe(
      Effect.flatMap((bytes) => {
        const seal = LogPart.decodeSeal(bytes)
        return typeof seal === "string" ? Effect.fail(new LogCorrupt(relative(sealFile(epoch)), 0, seal)) : Effect.succeed(seal)
      }),
      Effect.catchIf((error) => Fs.codeOf(error) === "ENOENT", () => Effect.succeed(undefined))
    )

  /** Writes the seal unless one exists; the seal that holds. */
  const writeSeal = (epoch: number, seal: LogPart.Seal) =>
    Effect.gen(function*() {
      const dir = epochDir(epoch)
      const draft = path.join(dir, `seal.${process.pid}.${yield* randomToken}`)
      yield* Fs.withFd(draft, "w", (fd) => Effect.andThen(Fs.writeAll(fd, [LogPart.encodeSeal(seal)]), Fs.fsync(fd)))
      const won = yield* Fs.link(draft, sealFile(epoch)).pipe(
        Effect.as(true),
        Effect.catchIf((error) => Fs.codeOf(error) === "EEXIST", () => Effect.succeed(false)),
        Effect.ensuring(Effect.ignore(Fs.unlink(draft)))
      )
      yield* syncDirectory(dir)
      return won ? seal : (yield* readSeal(epoch))!
    })

  const orCorrupt = <A>(result: A | LogCorrupt) => result instanceof LogCorrupt ? Effect.fail(result) : Effect.succeed(result)

  /**
   * A part's bytes, parsed; with `sync`, made durable first (a live writer's unsynced appends are
   * read here, and a takeover must read only what stays).
   */
  const readPart = (epoch: number, part: number, sync = true) =>
    Effect.gen(function*() {
      const file = path.join(epochDir(epoch), partName(part))
      const read = (fd: number) => Effect.flatMap(Fs.fstat(fd), (stat) => Fs.readAt(fd, stat.size, 0))
      const bytes = yield* Fs.withFd(file, "r", (fd) => sync ? Effect.andThen(Fs.fdatasync(fd), read(fd)) : read(fd))
      const parsed = parsePart(relative(file), bytes, { epoch, part })
      return yield* orCorrupt(parsed)
    })

  /** File system failures as store errors about `where` (a path under `%wal/`). */
  const asStoreError = (operation: "get" | "put" | "delete" | "list", where: string) =>
    <A, E, R>(effect: Effect.Effect<A, E | Fs.FsError, R>): Effect.Effect<A, Exclude<E, Fs.FsError> | ObjectStoreError, R> =>
      Effect.catchIf(
        effect,
        (error): error is Fs.FsError => error instanceof Error && !(error instanceof LogCorrupt) && Fs.codeOf(error) !== undefined,
        (error) => Effect.fail(Fs.storeError(operation, relative(where), error))
      ) as Effect.Effect<A, Exclude<E, Fs.FsError> | ObjectStoreError, R>


  /** Creates the epoch's fence (once), durably. */
  const fenceEpoch = (epoch: number) =>
    ensureEpochDir(epoch).pipe(
      Effect.andThen(Fs.withFd(path.join(epochDir(epoch), "fence"), "wx", () => Effect.void).pipe(ignoreExists)),
      Effect.andThen(syncDirectory(epochDir(epoch)))
    )

  const takeOver = (epoch: number) =>
    Effect.gen(function*() {
      // a sealed epoch was fenced durably before it was sealed: every later open skips the fsyncs
      let existing = yield* readSeal(epoch)
      if (existing === undefined) {
        yield* fenceEpoch(epoch)
        existing = yield* readSeal(epoch) // another reader may have sealed it meanwhile
      }
      const parts: Array<ParsedPart> = []
      for (const part of yield* numbered(epochDir(epoch), ".log")) {
        // a part the seal does not list was created after it: never acknowledged, not read
        if (existing === undefined || existing.has(part)) parts.push(yield* readPart(epoch, part))
      }
      if (existing !== undefined) return yield* orCorrupt(resolveSealed(parts, existing, relative(sealFile(epoch))))
      const taken = yield* orCorrupt(resolveUnsealed(parts))
      const seal = yield* writeSeal(epoch, new Map(taken.map((p) => [p.part, p.end])))
      // another reader sealed first: its seal holds (it read the same durable frames, or more)
      return seal.size === taken.length && taken.every((p) => seal.get(p.part) === p.end)
        ? taken
        : yield* orCorrupt(resolveSealed(parts, seal, relative(sealFile(epoch))))
    })

  const readOnly = (epoch: number) =>
    Effect.gen(function*() {
      const seal = yield* readSeal(epoch)
      const parts: Array<ParsedPart> = []
      for (const part of yield* numbered(epochDir(epoch), ".log")) {
        if (seal === undefined || seal.has(part)) parts.push(yield* readPart(epoch, part, false))
      }
      return yield* orCorrupt(seal === undefined ? resolveUnsealed(parts) : resolveSealed(parts, seal, relative(sealFile(epoch))))
    })

  return {
    epochs: asStoreError("list", base)(numbered(base, "")),
    takeOver: (epoch) => asStoreError("get", epochDir(epoch))(takeOver(epoch)),
    read: (epoch) => asStoreError("get", epochDir(epoch))(readOnly(epoch)),
    appender: (epoch) =>
      asStoreError("put", epochDir(epoch))(Effect.andThen(
        ensureEpochDir(epoch),
        makeAppender(
          { dir: epochDir(epoch), epoch, partName, asStoreError: asStoreError("put", epochDir(epoch)) },
          path.join(epochDir(epoch), "fence"),
          appendOptions
        )
      )),
    deletePart: (epoch, part) =>
      Fs.unlink(path.join(epochDir(epoch), partName(part))).pipe(
        Effect.catchIf((error) => Fs.codeOf(error) === "ENOENT", () => Effect.void),
        asStoreError("delete", epochDir(epoch))
      )
  }
}
