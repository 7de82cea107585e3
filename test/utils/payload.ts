import { createHash } from "node:crypto"

/** A self-checking payload: 32 bytes of SHA-256, then `size` bytes derived from `n`. */
export const payload = (n: number, size: number): Uint8Array => {
  const body = new Uint8Array(size)
  for (let i = 0; i < size; i += 64) body[i] = (n * 31 + i / 64) & 0xff
  const out = new Uint8Array(32 + size)
  out.set(createHash("sha256").update(body).digest(), 0)
  out.set(body, 32)
  return out
}

/** Whether `bytes` is a complete payload: its hash matches its body. */
export const isCompletePayload = (bytes: Uint8Array): boolean =>
  bytes.length >= 32 &&
  Buffer.from(createHash("sha256").update(bytes.subarray(32)).digest()).equals(Buffer.from(bytes.subarray(0, 32)))
