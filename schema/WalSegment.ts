/**
 * A WAL segment: one group-commit batch, written by one put-if-absent at `wal/<id>`. An empty
 * object is a fence (it holds a WAL id against an older writer) and carries no commits.
 *
 * A writer may have several segments in flight, so a crash can leave a gap in the WAL ids.
 * `fenceId` and `landedThrough` tell a legitimate gap from a lost object: `fenceId` is the fence
 * the writer started after; every id from there through `landedThrough` held a segment (its
 * writer's, or an older one's it skipped over) when this segment was put. An acknowledged
 * segment is below every later segment's `landedThrough`.
 *
 * ```
 * frame(kind 1, version 2,
 *   epoch | walId | fenceId | landedThrough | firstSeq | lastSeq | commit count          (varints)
 *   per commit: seq | op count, per op: tag (0 put, 1 delete) | key | value (puts))
 * ```
 *
 * Keys and values are latin1 strings (one char per byte: keys sort like the bytes), as the KV
 * holds them in memory.
 *
 * @since 0.1.0
 */
import { DecodeError, Reader, unframe, Writer } from "../src/internal/binary.ts"

/** @since 0.1.0 */
export const kind = 1
/** @since 0.1.0 */
export const version = 2

/**
 * One committed batch: its sequence number and its writes (`null` deletes).
 *
 * @category models
 * @since 0.1.0
 */
export interface Commit {
  readonly seq: number
  readonly ops: ReadonlyArray<readonly [key: string, value: string | null]>
}

/**
 * @category models
 * @since 0.1.0
 */
export interface Segment {
  readonly epoch: number
  readonly walId: number
  /** The fence this segment's writer wrote when it opened; its own segments come after it. */
  readonly fenceId: number
  /** Every WAL id after `fenceId` up to this one held a segment when this one was put. */
  readonly landedThrough: number
  readonly commits: ReadonlyArray<Commit>
}

/**
 * @category encoding
 * @since 0.1.0
 */
export const encode = (segment: Segment): Uint8Array => {
  // sized up front and framed in place: a segment is written once, not grown and copied (a hot path)
  let size = 10 + 7 * 9
  for (const commit of segment.commits) {
    size += 18
    for (const [key, value] of commit.ops) size += 11 + key.length + (value === null ? 0 : value.length)
  }
  const w = new Writer(size).frameHead(kind, version)
  const first = segment.commits[0]?.seq ?? 0
  const last = segment.commits[segment.commits.length - 1]?.seq ?? 0
  w.varint(segment.epoch).varint(segment.walId).varint(segment.fenceId).varint(segment.landedThrough).varint(first).varint(last).varint(segment.commits.length)
  for (const commit of segment.commits) {
    w.varint(commit.seq).varint(commit.ops.length)
    for (const [key, value] of commit.ops) {
      if (value === null) w.u8(1).latin1(key)
      else w.u8(0).latin1(key).latin1(value)
    }
  }
  return w.frameEnd()
}

/**
 * Decodes a segment; throws `DecodeError` on anything malformed.
 *
 * @category encoding
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Segment => {
  const r = new Reader(unframe(bytes, kind, version))
  const epoch = r.varint()
  const walId = r.varint()
  const fenceId = r.varint()
  const landedThrough = r.varint()
  r.varint() // first seq
  r.varint() // last seq
  const count = r.varint()
  const commits: Array<Commit> = []
  for (let i = 0; i < count; i++) {
    const seq = r.varint()
    const opCount = r.varint()
    const ops: Array<readonly [string, string | null]> = []
    for (let j = 0; j < opCount; j++) {
      const tag = r.u8()
      const key = r.latin1()
      if (tag > 1) throw new DecodeError(`op tag ${tag}`)
      ops.push([key, tag === 0 ? r.latin1() : null])
    }
    commits.push({ seq, ops })
  }
  return { epoch, walId, fenceId, landedThrough, commits }
}
