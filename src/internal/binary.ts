/**
 * Little binary codecs for the persisted formats: a growable writer and a bounds-checked reader
 * with LEB128 varints, and the frame every Kv object has (magic, kind, version, body, CRC32).
 *
 * @internal
 */
import { crc32 } from "node:zlib"

const frameMagic = [0x42, 0x51, 0x4b, 0x56] as const // "BQKV"

/** Raised by `Reader` on truncated or malformed input; callers turn it into `Corrupt`. */
export class DecodeError extends Error {}

/** @internal */
export class Writer {
  private buffer: Buffer
  private view: DataView
  length = 0

  /** `initial`: the buffer's first size, or a buffer to write into (its old bytes are overwritten). */
  constructor(initial: number | Uint8Array = 256) {
    this.buffer = typeof initial === "number"
      ? Buffer.allocUnsafe(initial)
      : Buffer.from(initial.buffer, initial.byteOffset, initial.byteLength)
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength)
  }

  /** The whole buffer written into (it may have grown past the one given): for a later writer to reuse. */
  get whole(): Uint8Array {
    return this.buffer
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return
    let size = this.buffer.length * 2
    while (size < this.length + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buffer.copy(next, 0, 0, this.length)
    this.buffer = next
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength)
  }

  u8(n: number): this {
    this.reserve(1)
    this.buffer[this.length++] = n
    return this
  }

  u32(n: number): this {
    this.reserve(4)
    this.view.setUint32(this.length, n)
    this.length += 4
    return this
  }

  /** A non-negative safe integer as an unsigned LEB128 varint. */
  varint(n: number): this {
    this.reserve(8)
    while (n >= 0x80) {
      this.buffer[this.length++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    this.buffer[this.length++] = n
    return this
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length)
    this.buffer.set(b, this.length)
    this.length += b.length
    return this
  }

  /** A varint length, then the bytes. */
  sized(b: Uint8Array): this {
    return this.varint(b.length).bytes(b)
  }

  /** A latin1 string (one byte per char code) with its length. */
  latin1(s: string): this {
    this.varint(s.length)
    this.reserve(s.length)
    this.buffer.write(s, this.length, s.length, "latin1")
    this.length += s.length
    return this
  }

  /** Bytes `[start, end)` of `src`, as they are. */
  copy(src: Uint8Array, start: number, end: number): this {
    const n = end - start
    this.reserve(n)
    const buffer = this.buffer
    const at = this.length
    // a run's entry is a hundred bytes or so: a loop beats the subarray and native call of `set`
    if (n <= 256) for (let i = 0; i < n; i++) buffer[at + i] = src[start + i]!
    else buffer.set(src.subarray(start, end), at)
    this.length += n
    return this
  }

  /** The bytes written in `[start, end)` as a latin1 string. */
  latin1At(start: number, end: number): string {
    return this.buffer.toString("latin1", start, end)
  }

  /** A view of the bytes written in `[start, end)`, valid until the next write. */
  written(start: number, end = this.length): Uint8Array {
    return this.buffer.subarray(start, end)
  }

  /** Starts a frame (see `frame`): the magic, kind and version; the body follows. */
  frameHead(kind: number, version: number): this {
    this.reserve(6)
    for (const b of frameMagic) this.buffer[this.length++] = b
    this.buffer[this.length++] = kind
    this.buffer[this.length++] = version
    return this
  }

  /**
   * Ends a frame begun with `frameHead` at offset 0: its CRC32 appended, and the frame returned
   * as a view of this writer's buffer (no copy: the writer must not be used afterwards). What
   * `frame(kind, version, body)` returns, written once instead of copied twice.
   */
  frameEnd(): Uint8Array {
    const crc = crc32(this.buffer.subarray(0, this.length))
    this.u32(crc)
    return this.take()
  }

  /**
   * The bytes written, without a copy when the buffer is this writer's own and at least half
   * used (the writer must not be used afterwards). A small buffer is a slice of Node's shared
   * pool, and a mostly empty one would be held whole by the view: both are copied out.
   */
  take(): Uint8Array {
    const own = this.buffer.byteLength === this.buffer.buffer.byteLength && this.length * 2 >= this.buffer.byteLength
    return own ? new Uint8Array(this.buffer.buffer, this.buffer.byteOffset, this.length) : new Uint8Array(this.buffer.subarray(0, this.length))
  }

  /** The bytes written, as a new array of their own. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.length)
    out.set(this.buffer.subarray(0, this.length))
    return out
  }
}

/** @internal */
export class Reader {
  offset = 0
  private readonly view: DataView
  private text: Buffer | undefined

  constructor(readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.offset = start
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get done(): boolean {
    return this.offset >= this.end
  }

  private need(n: number): void {
    if (this.offset + n > this.end) throw new DecodeError(`truncated: need ${n} bytes at ${this.offset}`)
  }

  u8(): number {
    this.need(1)
    return this.bytes[this.offset++]!
  }

  u32(): number {
    this.need(4)
    const n = this.view.getUint32(this.offset)
    this.offset += 4
    return n
  }

  varint(): number {
    let result = 0
    let scale = 1
    for (let i = 0; i < 8; i++) {
      const byte = this.u8()
      result += (byte & 0x7f) * scale
      if (byte < 0x80) return result
      scale *= 0x80
    }
    throw new DecodeError("varint too long")
  }

  /** Moves past `n` bytes. */
  skip(n: number): this {
    this.need(n)
    this.offset += n
    return this
  }

  bytesOf(n: number): Uint8Array {
    this.need(n)
    const out = this.bytes.subarray(this.offset, this.offset + n)
    this.offset += n
    return out
  }

  sized(): Uint8Array {
    return this.bytesOf(this.varint())
  }

  latin1(): string {
    const n = this.varint()
    this.need(n)
    // one Buffer view of the whole input, made at the first string: a view per string (and a
    // subarray for it) was most of the cost of decoding a block of short keys
    this.text ??= Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
    const s = this.text.toString("latin1", this.offset, this.offset + n)
    this.offset += n
    return s
  }
}

/**
 * Frames a body: `"BQKV" | kind (u8) | version (u8) | body | CRC32 of all before (u32 BE)`.
 */
export const frame = (kind: number, version: number, body: Uint8Array): Uint8Array => {
  const out = new Uint8Array(6 + body.length + 4)
  out.set(frameMagic, 0)
  out[4] = kind
  out[5] = version
  out.set(body, 6)
  new DataView(out.buffer).setUint32(6 + body.length, crc32(out.subarray(0, 6 + body.length)))
  return out
}

/** The body of a framed object after checking magic, kind, version and CRC32. */
export const unframe = (bytes: Uint8Array, kind: number, version: number): Uint8Array => {
  if (bytes.length < 10) throw new DecodeError(`${bytes.length} bytes, shorter than a frame`)
  if (frameMagic.some((b, i) => bytes[i] !== b)) throw new DecodeError("bad magic")
  if (bytes[4] !== kind) throw new DecodeError(`kind ${bytes[4]}, expected ${kind}`)
  if (bytes[5] !== version) throw new DecodeError(`format version ${bytes[5]}, this build reads ${version}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const stored = view.getUint32(bytes.length - 4)
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== stored) throw new DecodeError("CRC32 mismatch")
  return bytes.subarray(6, bytes.length - 4)
}

/** Bytes to a latin1 string (one char per byte), which sorts like the bytes. */
export const toLatin1 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")

/** A latin1 string back to new bytes. */
export const fromLatin1 = (s: string): Uint8Array => {
  const buffer = Buffer.from(s, "latin1")
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

/** Whether two byte arrays hold the same bytes. */
export const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
