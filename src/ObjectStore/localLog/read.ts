/**
 * Reading an epoch's local log after its writer stopped or was fenced (pure functions over the
 * parts' bytes): which frames are the log, and whether anything inside acknowledged history was
 * damaged. The format and why it can tell a torn tail from damage: `schema/LogPart.ts`.
 *
 * - Unsealed (the first reader after the writer): the log is every part's frames in order, each
 *   part up to its first frame that does not check; a part that does not end with a rotate frame
 *   ends the log. Anything that does not check at a position a valid frame (anywhere, found by
 *   searching past the damage) says was durable is `LogCorrupt`: never a shorter history.
 * - Sealed: each part's frames must check up to the length the seal gives.
 * - Either way a part's header must check and name the part, and the part must have the size
 *   its header gives; the parts present must follow on without a gap (GC deletes only the oldest).
 *
 * @internal
 */
import * as LogPart from "../../../schema/LogPart.ts"

/** A part's frames or the seal do not check where acknowledged history must be. */
export class LogCorrupt extends Error {
  readonly _tag = "LogCorrupt"
  constructor(
    /** The file, relative to the store's root. */
    readonly file: string,
    /** The byte offset in it where the damage was found. */
    readonly offset: number,
    readonly detail: string
  ) {
    super(`${file} at byte ${offset}: ${detail}`)
  }
}

/** One part as read. */
export interface ParsedPart {
  readonly part: number
  readonly file: string
  /** The frames that check one after the other from the header on. */
  readonly frames: ReadonlyArray<LogPart.Frame>
  /** Where those frames end. */
  readonly end: number
  /** The furthest durable position any frame that checks says, those past `end` included. */
  readonly maxClaim: LogPart.Position | undefined
}

/** The records of a part that the log holds, and where they end (what a seal records). */
export interface TakenPart {
  readonly part: number
  readonly records: ReadonlyArray<Uint8Array>
  readonly end: number
}

const maxPosition = (a: LogPart.Position | undefined, b: LogPart.Position) =>
  a === undefined || LogPart.comparePositions(b, a) > 0 ? b : a

const describe = (p: LogPart.Position) => `part ${p.part} byte ${p.offset}`

/** Parses a part's bytes, checking its header; `LogCorrupt` if the header or the size is wrong. */
export const parsePart = (
  file: string,
  bytes: Uint8Array,
  expected: { readonly epoch: number; readonly part: number }
): ParsedPart | LogCorrupt => {
  const header = LogPart.readPartHeader(bytes)
  if (header === undefined) return new LogCorrupt(file, 0, "the part header does not check")
  if (header.epoch !== expected.epoch || header.part !== expected.part) {
    return new LogCorrupt(file, 0, `the header names epoch ${header.epoch} part ${header.part}`)
  }
  if (header.size !== bytes.length) {
    return new LogCorrupt(file, Math.min(header.size, bytes.length), `the part is ${bytes.length} bytes, its header says ${header.size}`)
  }
  const frames: Array<LogPart.Frame> = []
  let maxClaim: LogPart.Position | undefined
  let at = LogPart.partHeaderBytes
  for (let frame = LogPart.readFrame(bytes, at); frame !== undefined; frame = LogPart.readFrame(bytes, at)) {
    frames.push(frame)
    maxClaim = maxPosition(maxClaim, frame.durable)
    at = frame.end
  }
  // past the first frame that does not check: what a crash kept of later appends, or damage
  for (let frame = LogPart.findNextFrame(bytes, at + 1); frame !== undefined;) {
    maxClaim = maxPosition(maxClaim, frame.durable)
    frame = LogPart.readFrame(bytes, frame.end) ?? LogPart.findNextFrame(bytes, frame.end + 1)
  }
  return { part: expected.part, file, frames, end: at, maxClaim }
}

const endsWithRotate = (p: ParsedPart) => p.frames[p.frames.length - 1]?.kind === LogPart.FrameKind.Rotate

const dataUpTo = (p: ParsedPart, end: number) =>
  p.frames.filter((f) => f.kind === LogPart.FrameKind.Data && f.end <= end).map((f) => f.body)

/** The parts present must be consecutive: GC removes the oldest only. */
const checkNoGap = (parts: ReadonlyArray<ParsedPart>): LogCorrupt | undefined => {
  for (let i = 1; i < parts.length; i++) {
    if (parts[i]!.part !== parts[i - 1]!.part + 1) {
      return new LogCorrupt(parts[i - 1]!.file, parts[i - 1]!.end, `part ${parts[i - 1]!.part + 1} is missing, though part ${parts[i]!.part} exists`)
    }
  }
  return undefined
}

/**
 * The log of an epoch nobody sealed: its parts (ascending) up to the first that does not end
 * with a rotate frame; `LogCorrupt` if a frame says the log was durable at a position where it
 * does not check, or a rotate frame's next part is missing.
 */
export const resolveUnsealed = (parts: ReadonlyArray<ParsedPart>): Array<TakenPart> | LogCorrupt => {
  const gap = checkNoGap(parts)
  if (gap !== undefined) return gap
  let maxClaim: LogPart.Position | undefined
  for (const p of parts) if (p.maxClaim !== undefined) maxClaim = maxPosition(maxClaim, p.maxClaim)
  const last = parts[parts.length - 1]
  if (last !== undefined && endsWithRotate(last)) {
    return new LogCorrupt(last.file, last.end, `part ${last.part + 1} is missing, though this part's rotate frame says the log goes on there`)
  }
  for (const p of parts) {
    const claimed = maxClaim !== undefined && (p.part < maxClaim.part ? !endsWithRotate(p) : p.part === maxClaim.part && p.end < maxClaim.offset)
    if (claimed) {
      return new LogCorrupt(p.file, p.end, `frames do not check from here, though a later frame says the log was durable through ${describe(maxClaim!)}`)
    }
  }
  const taken: Array<TakenPart> = []
  let ended = false
  for (const p of parts) {
    taken.push(ended ? { part: p.part, records: [], end: LogPart.partHeaderBytes } : { part: p.part, records: dataUpTo(p, p.end), end: p.end })
    ended ||= !endsWithRotate(p)
  }
  return taken
}

/** The log of a sealed epoch: every sealed part present must check up to its sealed length. */
export const resolveSealed = (
  parts: ReadonlyArray<ParsedPart>,
  seal: LogPart.Seal,
  sealFile: string
): Array<TakenPart> | LogCorrupt => {
  const sealed = parts.filter((p) => seal.has(p.part)) // parts created after the seal were never acknowledged
  const gap = checkNoGap(sealed)
  if (gap !== undefined) return gap
  const present = new Set(sealed.map((p) => p.part))
  const first = sealed[0]?.part ?? Number.POSITIVE_INFINITY
  for (const [part, length] of seal) {
    if (part > first && !present.has(part) && length > LogPart.partHeaderBytes) {
      return new LogCorrupt(sealFile, 0, `part ${part}, sealed with ${length} bytes of frames, is missing`)
    }
  }
  const taken: Array<TakenPart> = []
  for (const p of sealed) {
    const length = seal.get(p.part)!
    const boundary = length === LogPart.partHeaderBytes || p.frames.some((f) => f.end === length)
    if (!boundary) return new LogCorrupt(p.file, Math.min(p.end, length), `sealed at ${length} bytes, valid frames end at ${p.end}`)
    taken.push({ part: p.part, records: dataUpTo(p, length), end: length })
  }
  return taken
}
