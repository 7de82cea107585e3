/**
 * Appending to one epoch's local log (format: `schema/LogPart.ts`).
 *
 * - A write goes to the page cache at once, in call order (a few microseconds); its `durable`
 *   runs `fdatasync` and then looks for the epoch's fence. Several may wait at once.
 * - Each frame records how far the log was durable when it was written (the longest prefix of
 *   frames whose syncs completed). When the log goes idle with its last frames not yet claimed
 *   by a later one, a confirm frame claims them after `confirmAfter`, and the scope's end writes
 *   one too: so a reader can tell damage to an acknowledged frame from a crash's torn tail.
 * - A part is created whole before it is used (header, full size, fsync, rename, directory
 *   fsync), so its size never changes. Rotation (asked for, or when the next frame does not fit)
 *   creates the next part, then writes a rotate frame in the old one and syncs it: a durable
 *   rotate frame means the next part exists. This is synchronous, once per rotation (a run
 *   flush): a millisecond or two of the event loop, against the simplicity of one write path.
 * - A write that fails (throws) breaks the appender: later writes throw, since a reader could
 *   take the partial frame it left for damage once later frames say they were durable.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, type Scope } from "effect"
import * as LogPart from "../../../schema/LogPart.ts"
import { makeSignal } from "../../internal/signal.ts"
import type { ObjectStoreError } from "../../ObjectStoreError.ts"
import * as Fs from "../nodeFs.ts"

/** A record written to the page cache, to be made durable. */
export interface Written {
  /** The part it is in. */
  readonly part: number
  /**
   * Makes it durable (with everything written before it), then looks for the fence. `Fenced`
   * means a newer writer fenced the epoch: the record may be in the log, but it must not be
   * acknowledged. Several may run at once.
   */
  readonly durable: Effect.Effect<"Appended" | "Fenced", ObjectStoreError>
}

/** Appends to one epoch's log. */
export interface Appender {
  /**
   * Writes `record` after the ones written before it, synchronously (into the page cache); with
   * `rotate`, in a new part first (so that older parts can be deleted). Throws the file system
   * error if the write fails, and from then on.
   */
  readonly write: (record: Uint8Array, rotate: boolean) => Written
  /** The part written to now. */
  readonly currentPart: () => number
}

/** Tuning of the log. */
export interface AppendOptions {
  /** Size of a new part (a sparse file); a bigger one is made for a frame that needs it. */
  readonly partBytes: number
  /** How long the log stays idle before a confirm frame claims its last frames. */
  readonly confirmAfter: Duration.Duration
}

/** Where the parts of an epoch go, and how their failures are reported. */
export interface EpochFiles {
  readonly dir: string
  readonly epoch: number
  readonly partName: (part: number) => string
  readonly asStoreError: <A, E, R>(effect: Effect.Effect<A, E | Fs.FsError, R>) => Effect.Effect<A, Exclude<E, Fs.FsError> | ObjectStoreError, R>
}

interface OpenPart {
  readonly part: number
  readonly fd: number
  readonly size: number
  /** Where the next frame goes. */
  end: number
  /** Syncs running on it: a retired part is closed once none is left. */
  syncing: number
  retired: boolean
}

/** A frame written and not yet known durable. */
interface Pending {
  readonly at: LogPart.Position
  done: boolean
}

const syncDirectorySync = (dir: string) => {
  const fd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const writeFully = (fd: number, bytes: Uint8Array, position: number) => {
  for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at, bytes.length - at, position + at)
}

/** Creates a part whole and durably (see the file header), open for writing. */
const createPart = (files: EpochFiles, part: number, size: number): OpenPart => {
  const final = path.join(files.dir, files.partName(part))
  const draft = `${final}.new`
  const fd = fs.openSync(draft, "w")
  try {
    writeFully(fd, LogPart.encodePartHeader({ epoch: files.epoch, part, size }), 0)
    fs.ftruncateSync(fd, size)
    fs.fsyncSync(fd)
    fs.renameSync(draft, final)
    syncDirectorySync(files.dir)
  } catch (error) {
    fs.closeSync(fd)
    throw error
  }
  return { part, fd, size, end: LogPart.partHeaderBytes, syncing: 0, retired: false }
}

/** Starts the log of `files.epoch` (its first part); closed with the scope. */
export const makeAppender = (
  files: EpochFiles,
  fence: string,
  options: AppendOptions
): Effect.Effect<Appender, ObjectStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const open = new Set<OpenPart>()
    const pending: Array<Pending> = []
    let broken: unknown
    let current = yield* files.asStoreError(Effect.try({ try: () => createPart(files, 1, options.partBytes), catch: (e) => e as Fs.FsError }))
    open.add(current)
    let durableThrough: LogPart.Position = { part: 1, offset: LogPart.partHeaderBytes }
    // the durable position the last frame written claims, and where the last frame other than
    // a confirm ends: a confirm is due while the first is behind the second
    let lastClaim = durableThrough
    let lastContentEnd = durableThrough
    const idle = makeSignal()

    const closePart = (p: OpenPart) => {
      if (open.delete(p)) fs.closeSync(p.fd)
    }
    const release = (p: OpenPart) => {
      p.syncing--
      if (p.retired && p.syncing === 0) closePart(p)
    }

    /** Marks done what a completed sync of `part` covered, and moves the durable position on. */
    const synced = (part: number, through: number) => {
      for (const entry of pending) if (entry.at.part === part && entry.at.offset <= through) entry.done = true
      while (pending.length > 0 && pending[0]!.done) durableThrough = pending.shift()!.at
      if (pending.length === 0) idle.notify()
    }

    /** Writes one frame at the end of the current part; its end is pending until synced. */
    const writeFrame = (kind: LogPart.FrameKind, body: Uint8Array): LogPart.Position => {
      if (broken !== undefined) throw broken
      try {
        const bytes = LogPart.encodeFrame(kind, current.end, durableThrough, body)
        writeFully(current.fd, bytes, current.end)
        current.end += bytes.length
      } catch (error) {
        broken = error
        throw error
      }
      lastClaim = durableThrough
      const at = { part: current.part, offset: current.end }
      if (kind !== LogPart.FrameKind.Confirm) lastContentEnd = at
      pending.push({ at, done: false })
      return at
    }

    /** Moves to a new part big enough for a `needed`-byte frame (see the file header). */
    const rotate = (needed: number) => {
      const old = current
      const next = createPart(files, old.part + 1, Math.max(options.partBytes, LogPart.partHeaderBytes + needed))
      open.add(next)
      writeFrame(LogPart.FrameKind.Rotate, new Uint8Array(0))
      fs.fdatasyncSync(old.fd)
      synced(old.part, old.end)
      old.retired = true
      if (old.syncing === 0) closePart(old)
      current = next
    }

    const durable = (p: OpenPart, at: LogPart.Position) =>
      Effect.gen(function*() {
        yield* Fs.fdatasync(p.fd)
        synced(p.part, at.offset)
        return fs.existsSync(fence) ? "Fenced" as const : "Appended" as const
      }).pipe(Effect.ensuring(Effect.sync(() => release(p))), files.asStoreError)

    const write = (record: Uint8Array, rotateFirst: boolean): Written => {
      const needed = LogPart.headBytes + record.length
      if (rotateFirst || current.end + needed + LogPart.headBytes > current.size) {
        try {
          rotate(needed + LogPart.headBytes)
        } catch (error) {
          broken ??= error
          throw error
        }
      }
      const at = writeFrame(LogPart.FrameKind.Data, record)
      const p = current
      p.syncing++
      return { part: p.part, durable: Effect.suspend(() => durable(p, at)) }
    }

    const confirmDue = () =>
      broken === undefined && pending.length === 0 && LogPart.comparePositions(lastClaim, lastContentEnd) < 0 &&
      current.end + LogPart.headBytes * 2 <= current.size && !fs.existsSync(fence)

    // registered before the confirm loop is forked, so it runs after the loop is interrupted
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        try {
          if (confirmDue()) {
            writeFrame(LogPart.FrameKind.Confirm, new Uint8Array(0))
            fs.fdatasyncSync(current.fd)
          }
        } catch {
          // the log is closing: a confirm that could not be written leaves the last frames unclaimed
        }
        for (const p of open) fs.closeSync(p.fd)
        open.clear()
      })
    )
    /** Claims the last frames with a confirm frame once the log has been idle a while. */
    const confirmLoop = Effect.gen(function*() {
      yield* idle.wait
      yield* Effect.sleep(options.confirmAfter)
      if (!confirmDue()) return
      const p = current
      const at = writeFrame(LogPart.FrameKind.Confirm, new Uint8Array(0))
      p.syncing++
      yield* Effect.ignore(durable(p, at))
    }).pipe(Effect.catchDefect(() => Effect.void), Effect.forever)
    yield* Effect.forkScoped(confirmLoop)

    return { write, currentPart: () => current.part } satisfies Appender
  })
