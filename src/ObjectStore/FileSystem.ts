/**
 * The directory backend.
 *
 * **Layout.** Key segments map to nested directories, the last one to a file. A `%` in a
 * segment is written `%25`; a directory is named after its segment plus a trailing `%`, so the
 * key `a` (file `a`) and the keys under `a/` (directory `a%`) never collide, and `%tmp`, `%lock`
 * (a `%` not followed by `25`) can never be a key.
 *
 * **Writes.** The object (header with ETag and metadata, then the body; see
 * `schema/FileObject.ts`) is written to `%tmp/`, fsynced, then moved into place: `link(2)` for
 * put-if-absent (fails with `EEXIST` if the key exists, atomically across processes), `rename(2)`
 * otherwise; then the directory is fsynced. Success therefore means durable, and a crash leaves
 * the old object or the new one. Unconditional puts, `ifMatch` puts and deletes of one key
 * exclude each other through a per-key lock file in `%lock/` (and a per-key mutex in the
 * process), so `ifMatch` is atomic against writers in this and other processes. A lock whose
 * owner process died is broken, and so is one held unchanged for `staleLockMillis` (a process
 * stopped while holding it, `SIGSTOP` or a frozen VM, must not block every other writer of the
 * key for good: a standby taking over a frozen writer's store puts the writer record).
 *
 * @internal
 */
import { createHash } from "node:crypto"
import * as path from "node:path"
import { Clock, Duration, Effect, Option, type Scope, Semaphore, Stream } from "effect"
import * as FileObject from "../../schema/FileObject.ts"
import type { ListEntry, Metadata, ObjectInfo, PutCondition, Service, StoredObject } from "../ObjectStore.ts"
import * as ObjectStoreError from "../ObjectStoreError.ts"
import { InvalidKey } from "../ObjectStoreError.ts"
import { compareKeys } from "../internal/keyOrder.ts"
import { randomToken } from "../internal/token.ts"
import { listPageSize } from "./Memory.ts"
import * as LocalLog from "./LocalLog.ts"
import * as Fs from "./nodeFs.ts"

/**
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** The directory that holds the objects; created if missing. */
  readonly directory: string
  /**
   * Size of each part of the local log that holds the KV's WAL here (default 4 MiB, at least
   * 1 KiB): a part is created whole, as a sparse file, and a new one is started when a record
   * does not fit (or at every run flush).
   */
  readonly logPartBytes?: number | undefined
}

const tmpDirName = "%tmp"
const lockDirName = "%lock"
/** Longest encoded segment: a file name is at most 255 bytes, and directories add a `%`. */
const maxSegmentBytes = 254
/** Bytes read first when only the header is wanted; enough for any header with 2 KiB of metadata. */
const headProbeBytes = 4096

const encodeSegment = (segment: string): string => segment.replaceAll("%", "%25")
const decodeSegment = (name: string): string => name.replaceAll("%25", "%")
/** A name this backend could have written for a segment: every `%` starts `%25`. */
const isEncodedName = (name: string): boolean => !/%(?!25)/.test(name)

type Op = ObjectStoreError.Operation

/**
 * The store in `options.directory`, and the local log beside its objects (see `LocalLog.ts`),
 * which shares the store's coalesced directory fsync.
 *
 * @internal
 */
export const make = (
  options: Options
): Effect.Effect<{ readonly store: Service; readonly log: LocalLog.Service }, ObjectStoreError.ObjectStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const root = path.resolve(options.directory)
    const tmpDir = path.join(root, tmpDirName)
    const lockDir = path.join(root, lockDirName)
    // Identifies this process's temp files and locks, even after its pid is reused.
    const processToken = `${process.pid}.${yield* randomToken}`
    let tmpCounter = 0
    const newTempPath = () => path.join(tmpDir, `${processToken}.${++tmpCounter}`)
    const knownDirectories = new Set<string>()

    const setup = (error: Fs.FsError) => Fs.storeError("put", options.directory, error)
    const syncDirectory = yield* Fs.makeDirectorySync
    /**
     * `mkdir`, made durable by an fsync of the parent, also when the directory existed: another
     * fiber or process may have created it a moment ago and not yet made that durable. Missing
     * parents are created first.
     */
    const mkdirDurable = (dir: string): Effect.Effect<void, Fs.FsError> =>
      Fs.mkdir(dir).pipe(
        Effect.catchIf(
          (error) => Fs.codeOf(error) === "ENOENT" && path.dirname(dir) !== dir,
          () => Effect.andThen(mkdirDurable(path.dirname(dir)), Fs.mkdir(dir))
        ),
        Effect.catchIf((error) => Fs.codeOf(error) === "EEXIST", () => Effect.void),
        Effect.andThen(syncDirectory(path.dirname(dir)))
      )
    yield* Effect.mapError(mkdirDurable(root), setup)
    knownDirectories.add(root)
    for (const dir of [tmpDir, lockDir]) yield* Effect.mapError(ensureDirectory(dir), setup)
    yield* removeStaleTemps(tmpDir)

    // ---- paths ---------------------------------------------------------------------------

    const segmentsOf = (key: string): Effect.Effect<Array<string>, InvalidKey> => {
      const encoded = key.split("/").map(encodeSegment)
      return encoded.some((s) => Buffer.byteLength(s) > maxSegmentBytes)
        ? Effect.fail(new InvalidKey({ key, reason: "SegmentTooLong" }))
        : Effect.succeed(encoded)
    }
    const locate = (key: string) =>
      Effect.map(segmentsOf(key), (segments) => {
        const leaf = segments.pop()!
        const dir = path.join(root, ...segments.map((s) => `${s}%`))
        return { dir, file: path.join(dir, leaf) }
      })

    /** Creates `dir` and its missing parents, each made durable in its parent. */
    function ensureDirectory(dir: string): Effect.Effect<void, Fs.FsError> {
      if (knownDirectories.has(dir)) return Effect.void
      return Effect.gen(function*() {
        const parent = path.dirname(dir)
        if (parent !== dir && dir !== root) yield* ensureDirectory(parent)
        yield* mkdirDurable(dir)
        knownDirectories.add(dir)
      })
    }

    // ---- reading ---------------------------------------------------------------------------

    const corrupt = (operation: Op, key: string, detail: string) =>
      ObjectStoreError.make(operation, key, "Corrupt", { detail })

    const bodySizeMismatch = (size: number, expected: number) => `the body is ${size} bytes, its header says ${expected}`

    /** Reads the head of an open file, and its body size. */
    const readHead = (operation: Op, key: string, fd: number) =>
      Effect.gen(function*() {
        const stat = yield* Fs.fstat(fd)
        let bytes = yield* Fs.readAt(fd, Math.min(headProbeBytes, stat.size), 0)
        let parsed = FileObject.parseHead(bytes)
        if (parsed._tag === "NeedBytes" && parsed.bytes <= stat.size) {
          bytes = yield* Fs.readAt(fd, parsed.bytes, 0)
          parsed = FileObject.parseHead(bytes)
        }
        if (parsed._tag === "NeedBytes") return yield* Effect.fail(corrupt(operation, key, "truncated header"))
        if (parsed._tag === "Corrupt") return yield* Effect.fail(corrupt(operation, key, parsed.detail))
        const size = stat.size - parsed.bodyOffset
        if (size !== parsed.header.size) return yield* Effect.fail(corrupt(operation, key, bodySizeMismatch(size, parsed.header.size)))
        return { header: parsed.header, bodyOffset: parsed.bodyOffset, size }
      })

    const infoAt = (operation: Op, key: string, file: string) =>
      Fs.withFd(file, "r", (fd) => readHead(operation, key, fd))

    const info = (key: string, head: { header: FileObject.Header; size: number }): ObjectInfo => ({
      key,
      etag: head.header.etag,
      size: head.size,
      metadata: head.header.metadata
    })

    const get: Service["get"] = (key, getOptions) =>
      Effect.gen(function*() {
        const { file } = yield* locate(key)
        const range = getOptions?.range
        if (range === undefined) {
          const bytes = yield* Fs.readFile(file)
          const parsed = FileObject.parseHead(bytes)
          if (parsed._tag !== "Parsed") {
            return yield* Effect.fail(corrupt("get", key, parsed._tag === "Corrupt" ? parsed.detail : "truncated header"))
          }
          const body = bytes.subarray(parsed.bodyOffset)
          if (body.length !== parsed.header.size) {
            return yield* Effect.fail(corrupt("get", key, bodySizeMismatch(body.length, parsed.header.size)))
          }
          return { ...info(key, { header: parsed.header, size: body.length }), bytes: body } satisfies StoredObject
        }
        return yield* Fs.withFd(file, "r", (fd) =>
          Effect.gen(function*() {
            const head = yield* readHead("get", key, fd)
            const start = Math.min(range.start, head.size)
            const end = Math.min(range.end ?? head.size, head.size)
            const bytes = end > start ? yield* Fs.readAt(fd, end - start, head.bodyOffset + start) : new Uint8Array(0)
            return { ...info(key, head), bytes } satisfies StoredObject
          }))
      }).pipe(Effect.catchIf(isFsError, (error) => Effect.fail(Fs.storeError("get", key, error))))

    const head: Service["head"] = (key) =>
      Effect.gen(function*() {
        const { file } = yield* locate(key)
        return info(key, yield* infoAt("head", key, file))
      }).pipe(Effect.catchIf(isFsError, (error) => Effect.fail(Fs.storeError("head", key, error))))

    // ---- writing ---------------------------------------------------------------------------

    /** Writes the object to a new temp file and makes its content durable. */
    const writeTemp = (etag: string, bytes: Uint8Array, metadata: Metadata | undefined) =>
      Effect.gen(function*() {
        const tmp = newTempPath()
        const headBytes = FileObject.encodeHead({ version: 2, etag, metadata: { ...metadata }, size: bytes.length })
        yield* Fs.withFd(tmp, "wx", (fd) => Effect.andThen(Fs.writeAll(fd, [headBytes, bytes]), Fs.fsync(fd)))
        return tmp
      })

    const keyLocks = makeKeyLocks(lockDir, processToken, newTempPath)

    const createIfAbsent = (key: string, dir: string, file: string, tmp: string) =>
      Fs.link(tmp, file).pipe(
        Effect.ensuring(Effect.ignore(Fs.unlink(tmp))),
        Effect.catchIf(
          (error) => Fs.codeOf(error) === "EEXIST",
          () => Effect.fail(ObjectStoreError.make("put", key, "PreconditionFailed"))
        ),
        Effect.andThen(syncDirectory(dir))
      )

    const replace = (key: string, dir: string, file: string, condition: PutCondition | undefined, tmp: string) =>
      Effect.gen(function*() {
        if (condition?.ifMatch !== undefined) {
          const current = yield* Effect.option(Effect.catchIf(
            infoAt("put", key, file),
            (error) => isFsError(error) && Fs.codeOf(error) === "ENOENT",
            () => Effect.fail(Option.none())
          ))
          if (Option.isNone(current) || current.value.header.etag !== condition.ifMatch) {
            return yield* Effect.fail(ObjectStoreError.make("put", key, "PreconditionFailed"))
          }
        }
        yield* Fs.rename(tmp, file)
        yield* syncDirectory(dir)
      }).pipe(Effect.onError(() => Effect.ignore(Fs.unlink(tmp))))

    const put: Service["put"] = (key, bytes, condition, metadata) =>
      Effect.gen(function*() {
        const { dir, file } = yield* locate(key)
        yield* ensureDirectory(dir)
        const etag = yield* randomToken
        const tmp = yield* writeTemp(etag, bytes, metadata)
        if (condition?.ifNoneMatch === "*") yield* createIfAbsent(key, dir, file, tmp)
        else yield* keyLocks.withLock(key, replace(key, dir, file, condition, tmp))
        return etag
      }).pipe(
        Effect.catchIf(isFsError, (error) => Effect.fail(Fs.storeError("put", key, error))),
        // The steps after the temp file is written must all run, or the key lock and the
        // temp file would be left behind while the rename may still land.
        Effect.uninterruptible
      )

    const remove: Service["delete"] = (key) =>
      Effect.gen(function*() {
        const { dir, file } = yield* locate(key)
        yield* keyLocks.withLock(
          key,
          Fs.unlink(file).pipe(
            Effect.andThen(syncDirectory(dir)),
            Effect.catchIf((error) => Fs.codeOf(error) === "ENOENT", () => Effect.void)
          )
        )
      }).pipe(
        Effect.catchIf(isFsError, (error) => Effect.fail(Fs.storeError("delete", key, error))),
        Effect.uninterruptible
      )

    // ---- listing ---------------------------------------------------------------------------

    /** Every key under the directory for `keyPrefix` ("" or ending in "/") that may match `prefix`. */
    const collectKeys = (dir: string, keyPrefix: string, prefix: string): Effect.Effect<Array<string>, Fs.FsError> =>
      Effect.gen(function*() {
        const entries = yield* Effect.catchIf(
          Fs.readdir(dir),
          (error) => Fs.codeOf(error) === "ENOENT",
          () => Effect.succeed([])
        )
        const keys: Array<string> = []
        for (const entry of entries) {
          const name = entry.name
          if (entry.isDirectory() && name.endsWith("%") && isEncodedName(name.slice(0, -1))) {
            const sub = `${keyPrefix}${decodeSegment(name.slice(0, -1))}/`
            if (sub.startsWith(prefix) || prefix.startsWith(sub)) {
              keys.push(...(yield* collectKeys(path.join(dir, name), sub, prefix)))
            }
          } else if (entry.isFile() && isEncodedName(name)) {
            const key = `${keyPrefix}${decodeSegment(name)}`
            if (key.startsWith(prefix)) keys.push(key)
          }
        }
        return keys
      })

    const list: Service["list"] = (prefix, listOptions) => {
      const startAfter = listOptions?.startAfter
      const complete = prefix.split("/").slice(0, -1)
      const baseDir = path.join(root, ...complete.map((s) => `${encodeSegment(s)}%`))
      const baseKey = complete.length === 0 ? "" : `${complete.join("/")}/`
      const entryOf = (key: string) =>
        Effect.gen(function*() {
          const { file } = yield* locate(key)
          const head = yield* infoAt("list", key, file)
          return { key, size: head.size, etag: head.header.etag } satisfies ListEntry
        }).pipe(
          // Deleted since the directory was read: not listed, as if listed a moment later.
          Effect.catchIf((error) => isFsError(error) && Fs.codeOf(error) === "ENOENT", () => Effect.succeed(undefined))
        )
      return Stream.unwrap(
        collectKeys(baseDir, baseKey, prefix).pipe(
          Effect.map((keys) =>
            keys.filter((key) => startAfter === undefined || compareKeys(key, startAfter) > 0).sort(compareKeys)
          ),
          Effect.map((keys) =>
            Stream.paginate(0, (offset: number) =>
              Effect.forEach(keys.slice(offset, offset + listPageSize), entryOf, { concurrency: 16 }).pipe(
                Effect.map((entries) =>
                  [
                    entries.filter((e) => e !== undefined),
                    offset + listPageSize < keys.length ? Option.some(offset + listPageSize) : Option.none()
                  ] as const
                )
              ))
          )
        )
      ).pipe(Stream.catchIf(isFsError, (error) => Stream.fail(Fs.storeError("list", prefix, error))))
    }

    return {
      store: { get, head, put, delete: remove, list } satisfies Service,
      log: LocalLog.make(root, syncDirectory, { partBytes: options.logPartBytes })
    }
  })

const isFsError = (error: unknown): error is Fs.FsError => error instanceof Error && Fs.codeOf(error) !== undefined

/** Deletes temp files left by processes that no longer run (a crash mid-put). */
const removeStaleTemps = (tmpDir: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    const entries = yield* Fs.readdir(tmpDir)
    for (const entry of entries) {
      const pid = Number(entry.name.split(".")[0])
      if (Number.isSafeInteger(pid) && pid !== process.pid && !Fs.processAlive(pid)) {
        yield* Effect.ignore(Fs.unlink(path.join(tmpDir, entry.name)))
      }
    }
  }).pipe(Effect.ignore)

/**
 * How long a lock of a live process may stand unchanged before a waiter breaks it. The lock is
 * held for a read of the object's header, a rename and a directory sync: milliseconds, and a
 * second or two on a disk under heavy load. Its owner, resumed after the lock was broken, may
 * complete the one write it was making; that write is checked against the object as it was when
 * the owner read it, so it can overwrite a later one: the price of not blocking forever.
 */
export const staleLockMillis = 2000

/**
 * Per-key mutual exclusion: a semaphore per key within the process, and a lock file created
 * with `O_EXCL` across processes. The file holds its owner's pid and process token; a lock whose
 * owner is gone (its pid is dead, or it is our pid with another token), or that this waiter has
 * seen unchanged for `staleLockMillis`, is broken by renaming it away, which only one breaker can
 * do.
 */
const makeKeyLocks = (lockDir: string, processToken: string, newDraft: () => string) => {
  const local = new Map<string, { readonly semaphore: Semaphore.Semaphore; users: number }>()
  const lockPath = (key: string) => path.join(lockDir, createHash("sha1").update(key).digest("hex"))

  const ownerGone = (content: string): boolean => {
    const [pidText] = content.split(".")
    const pid = Number(pidText)
    if (!Number.isSafeInteger(pid) || pid <= 0) return true
    if (pid === process.pid) return content !== processToken
    return !Fs.processAlive(pid)
  }

  const readContent = (file: string) =>
    Effect.map(Fs.readFile(file), (b) => Buffer.from(b).toString("utf8")).pipe(
      Effect.catchIf((error) => Fs.codeOf(error) === "ENOENT", () => Effect.succeed(undefined))
    )

  const breakLock = (file: string, seen: string) =>
    Effect.gen(function*() {
      const moved = `${file}.${processToken}.stale`
      const renamed = yield* Fs.rename(file, moved).pipe(
        Effect.as(true),
        Effect.catchIf((error) => Fs.codeOf(error) === "ENOENT", () => Effect.succeed(false))
      )
      if (!renamed) return
      // Between our read and the rename another process may have broken it and locked again.
      if ((yield* readContent(moved)) !== seen) yield* Effect.ignore(Fs.link(moved, file))
      yield* Effect.ignore(Fs.unlink(moved))
    })

  const acquire = (file: string): Effect.Effect<void, Fs.FsError> =>
    Effect.gen(function*() {
      // The lock appears with its content at once: written aside, then linked into place.
      const draft = newDraft()
      yield* Fs.withFd(draft, "w", (fd) => Fs.writeAll(fd, [Buffer.from(processToken)]))
      let wait = 1
      // the lock this waiter sees, and since when (on its own clock)
      let seen: { readonly content: string; readonly since: number } | undefined
      while (true) {
        const created = yield* Fs.link(draft, file).pipe(
          Effect.as(true),
          Effect.catchIf((error) => Fs.codeOf(error) === "EEXIST", () => Effect.succeed(false))
        )
        if (created) return yield* Effect.ignore(Fs.unlink(draft))
        const content = yield* readContent(file)
        if (content === undefined) continue
        const now = yield* Clock.currentTimeMillis
        if (seen?.content !== content) seen = { content, since: now }
        if (ownerGone(content)) {
          yield* breakLock(file, content)
          continue
        }
        if (now - seen.since >= staleLockMillis) {
          yield* Effect.logWarning(`directory store: breaking the lock of ${file}, held by a live process for ${now - seen.since} ms`)
          yield* breakLock(file, content)
          seen = undefined
          continue
        }
        yield* Effect.sleep(Duration.millis(wait))
        wait = Math.min(wait * 2, 50)
      }
    })

  const withLock = <A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Fs.FsError, R> =>
    Effect.suspend(() => {
      let slot = local.get(key)
      if (slot === undefined) {
        slot = { semaphore: Semaphore.makeUnsafe(1), users: 0 }
        local.set(key, slot)
      }
      slot.users++
      const held = slot
      const file = lockPath(key)
      return held.semaphore.withPermits(1)(
        Effect.acquireUseRelease(acquire(file), () => effect, () => Effect.ignore(Fs.unlink(file)))
      ).pipe(Effect.ensuring(Effect.sync(() => {
        if (--held.users === 0) local.delete(key)
      })))
    })

  return { withLock }
}
