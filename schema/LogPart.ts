/**
 * The directory backend's local log (the KV's WAL there), format version 2: parts of a fixed size
 * made of checksummed frames, and the seal that fixes where an epoch's log ends.
 *
 * A part is created at its full size (`size`, a sparse file) before anything is appended to it,
 * so a part shorter or longer than its header says has been damaged: a crash never changes a
 * part's size. Every frame says where it is and how far the log was durable when it was written:
 *
 * ```
 * frame:  magic "BQLG" | kind u8 | version u8 | 0 u16 | body length u32 | offset u64
 *         | durable part u32 | durable offset u64 | CRC32 of the body u32 | CRC32 of bytes 0..36 u32
 *         | body                                                         (big-endian, 40-byte head)
 * kinds:  1 part header (at offset 0; body: epoch u64 | part u32 | size u64)
 *         2 data (body: one WAL segment)       3 confirm (no body)
 *         4 rotate (no body: the log goes on in the next part, which was durable before it)
 * seal:   "bucketq-seal 2\n" then "<part> <length>\n" per part, then "crc32 <8 hex digits>\n"
 *         (the CRC32 of everything before that line)
 * ```
 *
 * The durable position (`durable part`, `durable offset`) is what tells a torn tail from damage:
 * a frame that does not check at a position some valid frame says was durable is damage inside
 * acknowledged history; past every such claim it is the torn tail of a crash, never acknowledged.
 * A writer whose log goes idle appends a confirm frame, so that its last data frames are claimed
 * too. Because several appends wait for their sync at once, a crash can keep a later frame and
 * lose an earlier one: a valid frame is found past a torn one by searching for the next head
 * whose CRC and offset check.
 *
 * @since 0.1.0
 */
import { crc32 } from "node:zlib"

/** @since 0.1.0 */
export const version = 2

/**
 * What a frame holds.
 *
 * @category models
 * @since 0.1.0
 */
export const FrameKind = { PartHeader: 1, Data: 2, Confirm: 3, Rotate: 4 } as const

/**
 * @category models
 * @since 0.1.0
 */
export type FrameKind = typeof FrameKind[keyof typeof FrameKind]

/**
 * A place in an epoch's log: a byte offset in one of its parts.
 *
 * @category models
 * @since 0.1.0
 */
export interface Position {
  readonly part: number
  readonly offset: number
}

/** Orders positions: by part, then by offset. @since 0.1.0 */
export const comparePositions = (a: Position, b: Position): number => a.part - b.part || a.offset - b.offset

/**
 * A frame that checks.
 *
 * @category models
 * @since 0.1.0
 */
export interface Frame {
  readonly kind: FrameKind
  readonly offset: number
  /** Where the frame ends in its part. */
  readonly end: number
  /** How far the log was durable when the frame was written. */
  readonly durable: Position
  readonly body: Uint8Array
}

/**
 * The part header: which epoch and part the file is, and its size.
 *
 * @category models
 * @since 0.1.0
 */
export interface PartHeader {
  readonly epoch: number
  readonly part: number
  readonly size: number
}

/** Bytes of a frame's head. @since 0.1.0 */
export const headBytes = 40
const partHeaderBody = 20
/** Bytes of a part header frame: where the first appended frame starts. @since 0.1.0 */
export const partHeaderBytes = headBytes + partHeaderBody

const magic = 0x42514c47 // "BQLG"
const magicBytes = Buffer.from([0x42, 0x51, 0x4c, 0x47])
const kinds: ReadonlySet<number> = new Set(Object.values(FrameKind))

// offsets and sizes are safe integers: written as two u32 halves
const setU64 = (view: DataView, at: number, n: number) => {
  view.setUint32(at, Math.floor(n / 0x1_0000_0000))
  view.setUint32(at + 4, n >>> 0)
}
const getU64 = (view: DataView, at: number) => view.getUint32(at) * 0x1_0000_0000 + view.getUint32(at + 4)

/**
 * One frame of `kind` at `offset` of its part, saying the log was durable through `durable`.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeFrame = (kind: FrameKind, offset: number, durable: Position, body: Uint8Array): Uint8Array => {
  const out = new Uint8Array(headBytes + body.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, magic)
  out[4] = kind
  out[5] = version
  view.setUint32(8, body.length)
  setU64(view, 12, offset)
  view.setUint32(20, durable.part)
  setU64(view, 24, durable.offset)
  view.setUint32(32, crc32(body))
  view.setUint32(36, crc32(out.subarray(0, 36)))
  out.set(body, headBytes)
  return out
}

/**
 * The frame that starts at `at` in `bytes`, or undefined if none that checks does: the head's
 * magic, version, kind and CRC, the offset it names (`at`), and the body's length and CRC.
 *
 * @category encoding
 * @since 0.1.0
 */
export const readFrame = (bytes: Uint8Array, at: number): Frame | undefined => {
  if (at + headBytes > bytes.length) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, headBytes)
  if (view.getUint32(0) !== magic || bytes[at + 5] !== version || !kinds.has(bytes[at + 4]!)) return undefined
  if (crc32(bytes.subarray(at, at + 36)) !== view.getUint32(36)) return undefined
  if (getU64(view, 12) !== at) return undefined
  const end = at + headBytes + view.getUint32(8)
  if (end > bytes.length) return undefined
  const body = bytes.subarray(at + headBytes, end)
  if (crc32(body) !== view.getUint32(32)) return undefined
  return {
    kind: bytes[at + 4] as FrameKind,
    offset: at,
    end,
    durable: { part: view.getUint32(20), offset: getU64(view, 24) },
    body
  }
}

/**
 * The next frame that checks after `from` (searching byte by byte for a head), or undefined.
 * Used only past a frame that does not check, to find what a crash or damage left after it.
 *
 * @category encoding
 * @since 0.1.0
 */
export const findNextFrame = (bytes: Uint8Array, from: number): Frame | undefined => {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let at = buffer.indexOf(magicBytes, from); at >= 0; at = buffer.indexOf(magicBytes, at + 1)) {
    const frame = readFrame(bytes, at)
    if (frame !== undefined) return frame
  }
  return undefined
}

/**
 * The header frame of a part (at offset 0).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodePartHeader = (header: PartHeader): Uint8Array => {
  const body = new Uint8Array(partHeaderBody)
  const view = new DataView(body.buffer)
  setU64(view, 0, header.epoch)
  view.setUint32(8, header.part)
  setU64(view, 12, header.size)
  return encodeFrame(FrameKind.PartHeader, 0, { part: 0, offset: 0 }, body)
}

/**
 * The header of a part's bytes, or undefined if its first frame is not a header that checks.
 *
 * @category encoding
 * @since 0.1.0
 */
export const readPartHeader = (bytes: Uint8Array): PartHeader | undefined => {
  const frame = readFrame(bytes, 0)
  if (frame === undefined || frame.kind !== FrameKind.PartHeader || frame.body.length !== partHeaderBody) return undefined
  const view = new DataView(frame.body.buffer, frame.body.byteOffset, partHeaderBody)
  return { epoch: getU64(view, 0), part: view.getUint32(8), size: getU64(view, 12) }
}

/**
 * A seal: the length of the valid frames of every part the epoch had when it was sealed.
 *
 * @category models
 * @since 0.1.0
 */
export type Seal = ReadonlyMap<number, number>

const sealTitle = `bucketq-seal ${version}\n`

/**
 * @category encoding
 * @since 0.1.0
 */
export const encodeSeal = (seal: Seal): Uint8Array => {
  const text = sealTitle + [...seal].map(([part, length]) => `${part} ${length}\n`).join("")
  const bytes = Buffer.from(text, "latin1")
  return Buffer.concat([bytes, Buffer.from(`crc32 ${crc32(bytes).toString(16).padStart(8, "0")}\n`, "latin1")])
}

/**
 * Decodes a seal; a string saying what is wrong if it does not check.
 *
 * @category encoding
 * @since 0.1.0
 */
export const decodeSeal = (bytes: Uint8Array): Seal | string => {
  const text = Buffer.from(bytes).toString("latin1")
  const crcAt = text.lastIndexOf("crc32 ")
  if (crcAt < 0 || !text.endsWith("\n")) return "no checksum line"
  const stored = text.slice(crcAt + 6, -1)
  if (!/^[0-9a-f]{8}$/.test(stored) || parseInt(stored, 16) !== crc32(bytes.subarray(0, crcAt))) return "checksum mismatch"
  if (!text.startsWith(sealTitle)) return "not a version 2 seal"
  const seal = new Map<number, number>()
  for (const line of text.slice(sealTitle.length, crcAt).split("\n").filter((l) => l !== "")) {
    const match = /^(\d+) (\d+)$/.exec(line)
    if (match === null) return `malformed line ${JSON.stringify(line)}`
    seal.set(Number(match[1]), Number(match[2]))
  }
  return seal
}
