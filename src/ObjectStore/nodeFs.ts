/**
 * `node:fs` calls as effects. The directory backend uses Node's file API directly rather than
 * `effect/FileSystem`: it needs `link(2)` failing with `EEXIST`, `fsync` of directories and
 * vectored writes on the hot path, and the raw `errno` to classify failures.
 *
 * @internal
 */
import * as fs from "node:fs"
import { Effect } from "effect"

/** A failed file system call: the Node error, with its `code` (`ENOENT`, `EEXIST`, ...). */
export type FsError = NodeJS.ErrnoException

const call = <A>(run: (done: (error: NodeJS.ErrnoException | null, value: A) => void) => void): Effect.Effect<A, FsError> =>
  Effect.callback<A, FsError>((resume) => {
    run((error, value) => resume(error ? Effect.fail(error) : Effect.succeed(value)))
  })

const callVoid = (run: (done: (error: NodeJS.ErrnoException | null) => void) => void): Effect.Effect<void, FsError> =>
  call<void>((done) => run((error) => done(error, undefined)))

/** The errno code of a failure, if it has one. */
export const codeOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined

export const open = (path: string, flags: string | number, mode = 0o644) =>
  call<number>((done) => fs.open(path, flags, mode, done))
export const close = (fd: number) => callVoid((done) => fs.close(fd, done))
export const fsync = (fd: number) => callVoid((done) => fs.fsync(fd, done))
export const fstat = (fd: number) => call<fs.Stats>((done) => fs.fstat(fd, done))
export const link = (from: string, to: string) => callVoid((done) => fs.link(from, to, done))
export const rename = (from: string, to: string) => callVoid((done) => fs.rename(from, to, done))
export const unlink = (path: string) => callVoid((done) => fs.unlink(path, done))
export const mkdir = (path: string) => callVoid((done) => fs.mkdir(path, done))
export const readFile = (path: string) => call<Buffer>((done) => fs.readFile(path, done))
export const readdir = (path: string) =>
  call<Array<fs.Dirent>>((done) => fs.readdir(path, { withFileTypes: true }, done))

/** Reads up to `length` bytes at `position`; fewer at the end of the file. */
export const readAt = (fd: number, length: number, position: number) =>
  call<Uint8Array>((done) => {
    const buffer = Buffer.allocUnsafe(length)
    fs.read(fd, buffer, 0, length, position, (error, bytesRead) => done(error, buffer.subarray(0, bytesRead)))
  })

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
  flags: string | number,
  use: (fd: number) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | FsError, R> =>
  Effect.acquireUseRelease(open(path, flags), use, (fd) => Effect.ignore(close(fd)))

/** `fsync(2)` of a directory, which makes the creation, rename or removal of its entries durable. */
export const fsyncDirectory = (path: string) => withFd(path, "r", fsync)

/** Whether a process with this id exists (signal 0 checks without signalling). */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return codeOf(error) === "EPERM"
  }
}
