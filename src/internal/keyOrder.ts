/**
 * Key order of object stores: UTF-8 byte order, which is Unicode code point order. JavaScript's
 * `<` compares UTF-16 code units and puts astral characters (surrogate pairs) before U+E000 to
 * U+FFFF; remapping code units fixes that without encoding.
 *
 * @internal
 */
const weight = (unit: number): number => (unit < 0xd800 ? unit : unit >= 0xe000 ? unit - 0x800 : unit + 0x2000)

/** @internal */
export const compareKeys = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return weight(x) - weight(y)
  }
  return a.length - b.length
}
