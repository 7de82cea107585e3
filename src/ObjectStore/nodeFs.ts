/**
 * `node:fs` calls as effects. The directory backend uses Node's file API directly rather than
 * `effect/FileSystem`: it needs `link(2)` failing with `EEXIST`, `fsync` of directories and
 * vectored writes on the hot path, and the raw `errno` to classify failures.
 *
 * Reads (open for reading, fstat, reads up to `syncIoLimit` bytes, close) run synchronously: they
 * take microseconds, less than a round trip through libuv's thread pool. Everything that changes
 * the file system runs on the thread pool, off the event loop: not only `fsync`, but also creates,
 * links, renames and unlinks, which on ext4 can wait for the journal (measured here: a create
 * right after an fsync took 0.5 ms, as long as the fsync itself).
 *
 * @internal
 */
import * as fs from "node:fs"
import { Deferred, Effect } from "effect"
import * as ObjectStoreError from "../ObjectStoreError.ts"

/** A failed file system call: the Node error, with its `code` (`ENOENT`, `EEXIST`, ...). */
export type FsError = NodeJS.ErrnoException

const call = <A>(run: (done: (error: NodeJS.ErrnoException | null, value: A) => void) => void): Effect.Effect<A, FsError> =>
  Effect.callback<A, FsError>((resume) => {
    run((error, value) => resume(error ? Effect.fail(error) : Effect.succeed(value)))
  })

const callVoid = (run: (done: (error: NodeJS.ErrnoException | null) => void) => void): Effect.Effect<void, FsError> =>
  call<void>((done) => run((error) => done(error, undefined)))

const now = <A>(run: () => A): Effect.Effect<A, FsError> =>
  Effect.try({ try: run, catch: (error) => error as FsError })

/** Maps a file system failure to a store error. */
export const storeError = (operation: ObjectStoreError.Operation, key: string, error: FsError): ObjectStoreError.ObjectStoreError => {
  const code = codeOf(error)
  const reason: ObjectStoreError.Reason["_tag"] = code === "ENOENT"
    ? "NotFound"
    : code === "EMFILE" || code === "ENFILE" || code === "EAGAIN" || code === "EBUSY" || code === "EIO" ||
        code === "ENOSPC" || code === "EINTR"
    ? "Unavailable"
    : "Unknown"
  return ObjectStoreError.make(operation, key, reason, { detail: error.message, cause: error })
}

/** Reads up to this size are done synchronously. */
export const syncIoLimit = 256 * 1024

/** The errno code of a failure, if it has one. */
export const codeOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined

/** Opens for reading (synchronously) or for writing (on the thread pool). */
export const open = (path: string, flags: "r" | "w" | "wx", mode = 0o644) =>
  flags === "r" ? now(() => fs.openSync(path, flags)) : call<number>((done) => fs.open(path, flags, mode, done))
/** `close(2)`. */
export const close = (fd: number) => now(() => fs.closeSync(fd))
/** `fsync(2)`: the file's data and metadata reach the disk. */
export const fsync = (fd: number) => callVoid((done) => fs.fsync(fd, done))
/** `fdatasync(2)`: the file's data (and the size, if it changed) reach the disk. */
export const fdatasync = (fd: number) => callVoid((done) => fs.fdatasync(fd, done))
/** `fstat(2)`. */
export const fstat = (fd: number) => now(() => fs.fstatSync(fd))
/** `link(2)`: fails with `EEXIST` if `to` exists, atomically. */
export const link = (from: string, to: string) => callVoid((done) => fs.link(from, to, done))
/** `rename(2)`: atomically replaces `to`. */
export const rename = (from: string, to: string) => callVoid((done) => fs.rename(from, to, done))
/** `unlink(2)`. */
export const unlink = (path: string) => callVoid((done) => fs.unlink(path, done))
/** `mkdir(2)` of one directory. */
export const mkdir = (path: string) => callVoid((done) => fs.mkdir(path, done))
/** The entries of a directory, with their types. */
export const readdir = (path: string) =>
  call<Array<fs.Dirent>>((done) => fs.readdir(path, { withFileTypes: true }, done))

/** Reads up to `length` bytes at `position`; fewer at the end of the file. */
export const readAt = (fd: number, length: number, position: number): Effect.Effect<Uint8Array, FsError> => {
  const buffer = Buffer.allocUnsafe(length)
  if (length <= syncIoLimit) return now(() => buffer.subarray(0, fs.readSync(fd, buffer, 0, length, position)))
  return call<Uint8Array>((done) =>
    fs.read(fd, buffer, 0, length, position, (error, bytesRead) => done(error, buffer.subarray(0, bytesRead)))
  )
}

/** The whole content of a file. */
export const readFile = (path: string): Effect.Effect<Uint8Array, FsError> =>
  withFd(path, "r", (fd) => Effect.flatMap(fstat(fd), (stat) => readAt(fd, stat.size, 0)))

/** Writes every byte of `chunks` at the file's position, in order. */
export const writeAll = (fd: number, chunks: ReadonlyArray<Uint8Array>): Effect.Effect<void, FsError> =>
  Effect.suspend(() => {
    const pending = chunks.filter((chunk) => chunk.length > 0)
    if (pending.length === 0) return Effect.void
    return Effect.flatMap(
      call<number>((done) => fs.writev(fd, pending, done)),
      (written) => writeAll(fd, dropBytes(pending, written))
    )
  })

const dropBytes = (chunks: ReadonlyArray<Uint8Array>, count: number): Array<Uint8Array> => {
  const rest: Array<Uint8Array> = []
  let skip = count
  for (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length
      continue
    }
    rest.push(skip > 0 ? chunk.subarray(skip) : chunk)
    skip = 0
  }
  return rest
}

/** Opens `path`, runs `use` with the descriptor, and closes it whatever happens. */
export const withFd = <A, E, R>(
  path: string,
  flags: "r" | "w" | "wx",
  use: (fd: number) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | FsError, R> =>
  Effect.acquireUseRelease(open(path, flags), use, (fd) => Effect.ignore(close(fd)))

/**
 * `fsync(2)` of directories, made durable the creation, rename or removal of their entries,
 * through descriptors kept open, and coalesced: a caller waits for an fsync that started after
 * it asked, so while one is in flight every new caller shares the next one.
 */
export const makeDirectorySync = Effect.gen(function*() {
  const fds = new Map<string, number>()
  const rounds = new Map<string, { running: Deferred.Deferred<void, FsError>; next: Deferred.Deferred<void, FsError> | undefined }>()
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const fd of fds.values()) fs.closeSync(fd)
      fds.clear()
    })
  )
  const fdOf = (dir: string) =>
    Effect.suspend(() => {
      const cached = fds.get(dir)
      if (cached !== undefined) return Effect.succeed(cached)
      return Effect.tap(open(dir, "r"), (fd) => Effect.sync(() => fds.set(dir, fd)))
    })
  const run = (dir: string, done: Deferred.Deferred<void, FsError>): Effect.Effect<void> =>
    Effect.flatMap(fdOf(dir), fsync).pipe(
      Effect.exit,
      Effect.flatMap((exit) => {
        Deferred.doneUnsafe(done, exit)
        const round = rounds.get(dir)!
        if (round.next === undefined) {
          rounds.delete(dir)
          return Effect.void
        }
        round.running = round.next
        round.next = undefined
        return run(dir, round.running)
      })
    )
  return (dir: string): Effect.Effect<void, FsError> =>
    Effect.suspend(() => {
      const round = rounds.get(dir)
      if (round === undefined) {
        const done = Deferred.makeUnsafe<void, FsError>()
        rounds.set(dir, { running: done, next: undefined })
        return Effect.andThen(Effect.forkDetach(run(dir, done)), Deferred.await(done))
      }
      round.next ??= Deferred.makeUnsafe<void, FsError>()
      return Deferred.await(round.next)
    })
})

/** Whether a process with this id exists (signal 0 checks without signalling). */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return codeOf(error) === "EPERM"
  }
}
