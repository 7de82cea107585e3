// Hostile values for the validation tests: for each kind of option, values that break its rule
// (NaN, infinities, negatives, fractions, out-of-range numbers, invalid dates, durations that do
// not parse, wrong types), a fixed pool plus values drawn from the project's seeded PRNG.
import { Duration, Effect } from "effect"
import type { Prng } from "../../src/internal/prng.ts"

/** What an option takes; the garbage of each kind breaks exactly that. */
export type Kind =
  | { readonly _tag: "count"; readonly min: number; readonly max: number }
  | { readonly _tag: "priority" }
  | { readonly _tag: "duration"; readonly positive?: boolean; readonly infinite?: boolean }
  | { readonly _tag: "instant" }
  | { readonly _tag: "fraction" }
  | { readonly _tag: "dedupKey" }
  | { readonly _tag: "text" }
  | { readonly _tag: "headers" }
  | { readonly _tag: "record" }
  | { readonly _tag: "function" }
  | { readonly _tag: "effect" }
  | { readonly _tag: "schema" }
  | { readonly _tag: "boolean" }
  | { readonly _tag: "queueName" }
  | { readonly _tag: "jobId" }
  | { readonly _tag: "array" }
  | { readonly _tag: "permits" }
  | { readonly _tag: "backoff" }
  | { readonly _tag: "path" }
  | { readonly _tag: "bucket" }
  | { readonly _tag: "prefix" }
  | { readonly _tag: "url" }
  | { readonly _tag: "region" }
  | { readonly _tag: "credentials" }
  | { readonly _tag: "isolation" }

const wrongTypes: ReadonlyArray<unknown> = [null, true, Symbol("s"), () => 1, 10n, new Date(Number.NaN)]
const notNumbers: ReadonlyArray<unknown> = [...wrongTypes, "5", "x", {}, [], [1]]
const nonFinite: ReadonlyArray<unknown> = [Number.NaN, Infinity, -Infinity]

const countPool = (min: number, max: number): ReadonlyArray<unknown> => [
  ...notNumbers,
  ...nonFinite,
  min - 1,
  max + 1,
  min + 0.5,
  -1.5,
  2 ** 53,
  1e300,
  -1e300,
  Number.MAX_VALUE,
  ...(min > 0 ? [0, -0] : [])
]

const durationPool = (positive: boolean, infinite: boolean): ReadonlyArray<unknown> => [
  Number.NaN,
  -1,
  -0.5,
  -Infinity,
  "-Infinity",
  "-5 seconds",
  Duration.negativeInfinity,
  Duration.millis(-5),
  "soon",
  "5 fortnights",
  "1e3 seconds",
  "",
  " 5 seconds",
  "5 seconds ",
  "NaN seconds",
  "5seconds",
  { seconds: Number.NaN },
  { secs: 5 },
  { seconds: "5" },
  { minutes: Infinity },
  [Number.NaN, 0],
  [1],
  [1, 2, 3],
  [Infinity, 0],
  1e300,
  1e15 + 1,
  "1000000000000000000 millis",
  "99999999999 weeks",
  10n ** 30n,
  -5n,
  Duration.millis(1e16),
  null,
  true,
  Symbol("d"),
  () => 5,
  new Date(0),
  ...(infinite ? [] : [Infinity, "Infinity", Duration.infinity]),
  ...(positive ? [0, -0, "0 millis", Duration.zero, 0n, [0, 0], {}] : [])
]

const instantPool: ReadonlyArray<unknown> = [
  new Date("not a date"),
  new Date(Number.NaN),
  Number.NaN,
  Infinity,
  -Infinity,
  8.64e15 + 1,
  -8.64e15 - 1,
  1e300,
  "tomorrow",
  "2024-01-01",
  null,
  {},
  true,
  10n,
  Symbol("t")
]

const pools = {
  priority: [...notNumbers, ...nonFinite, -1, 2 ** 32, 2 ** 60, 1.5, 0.001, -0.5, "urgent", "HIGH", "", "1000", 1e300],
  instant: instantPool,
  fraction: [...notNumbers, ...nonFinite, -0.01, 1.01, 2, -1, 1e300],
  dedupKey: [42, null, {}, [], true, "", "x".repeat(1025), "é".repeat(513), "\uD800", "a\uDC00b", Symbol("k")],
  text: [42, null, {}, [], true, undefined, Symbol("e"), 10n, () => "x"],
  headers: [null, 42, "x", [], true, { a: 1 }, { a: null }, { a: {} }, { a: undefined }, { a: "ok", b: 2 }],
  record: [42, "x", true, [], null, Symbol("o"), 10n],
  function: [42, "f", {}, null, true, []],
  effect: [42, "x", {}, null, Promise.resolve(), () => Effect.void],
  schema: [42, "x", {}, null, true, { ast: 1 }],
  boolean: ["true", 1, 0, null, {}, "false"],
  isolation: ["repeatable read", "SNAPSHOT", "", 42, null, {}, true],
  queueName: [
    "",
    "../../etc",
    "..",
    ".",
    "a//b",
    "/a",
    "a/",
    "a/./b",
    "a/../b",
    "x".repeat(129),
    "with space",
    "ctl\u0001",
    "é",
    "emoji😀",
    "a\\b",
    "a*b",
    42,
    null,
    {},
    undefined
  ],
  jobId: [123, "bad id!", "", "x".repeat(129), "a/b", "a.b", null, {}, true, "é"],
  array: ["x", {}, null, 42, new Set([1]), true],
  permits: ["x", {}, [{}], [null], [42], [{ order: "1", withPermit: () => 1 }], 42],
  backoff: [42, "exponential", {}, null, { _tag: "Exponential", base: "soon", max: 1, jitter: 0 }, { _tag: "Fixed", delay: Number.NaN }, {
    _tag: "Linear",
    step: -1
  }, { _tag: "Custom", delay: 5 }, { _tag: "Nope" }],
  path: ["", 42, null, "a\u0000b", {}],
  bucket: ["", "a/b", "with space", "x".repeat(256), 42, null, "ünï"],
  prefix: ["/", "a//b", "../x", "a/./b", "ctl\u0001", 42, null, "a/../b"],
  url: ["not a url", "ftp://example.com", 42, "", null, "http//x"],
  region: ["", "us east", 42, null, "x".repeat(65), "eu/west"],
  credentials: [null, "x", 42, {}, { accessKeyId: "" }, { accessKeyId: "k", secretAccessKey: "plain" }, {
    accessKeyId: "k",
    secretAccessKey: 5
  }]
} as const

/** The fixed hostile values of `kind`. */
export const poolOf = (kind: Kind): ReadonlyArray<unknown> => {
  switch (kind._tag) {
    case "count":
      return countPool(kind.min, kind.max)
    case "duration":
      return durationPool(kind.positive === true, kind.infinite === true)
    default:
      return pools[kind._tag]
  }
}

const junkWords = ["seconds", "fortnights", "ms", "sec", "hours", "", "Infinity", "NaN"]

/** A hostile value of `kind` drawn from `prng`: either from the pool or generated. */
export const draw = (kind: Kind, prng: Prng): unknown => {
  const pool = poolOf(kind)
  if (prng.next() < 0.6) return pool[prng.int(0, pool.length)]
  const sign = prng.next() < 0.5 ? -1 : 1
  switch (kind._tag) {
    case "count": {
      const choice = prng.int(0, 3)
      if (choice === 0) return kind.min + prng.int(0, 1000) + prng.next() * 0.98 + 0.01 // a fraction
      if (choice === 1) return kind.max + 1 + prng.int(0, 2 ** 30) // above the range
      return kind.min - 1 - prng.int(0, 2 ** 30) // below it
    }
    case "priority":
      return prng.next() < 0.5 ? -1 - prng.int(0, 2 ** 30) : 2 ** 32 + prng.int(0, 2 ** 30)
    case "duration": {
      const choice = prng.int(0, 3)
      if (choice === 0) return -(prng.next() * 1e9 + 1) // negative millis
      if (choice === 1) return `${(prng.next() * 100).toFixed(2)}${prng.next() < 0.5 ? "" : "  "}${junkWords[prng.int(0, junkWords.length)]}x`
      return 1e15 * (1 + prng.next() * 1000) + 1 // over the maximum
    }
    case "instant":
      return sign * (8.64e15 + 1 + prng.next() * 1e20)
    case "fraction":
      return prng.next() < 0.5 ? -prng.next() - 0.001 : 1.001 + prng.next() * 10
    case "queueName": {
      const bad = " !\"#$%&'()*+,;<=>?@[\\]^`{|}~é\u0000\u007f"
      return `q${bad[prng.int(0, bad.length)]}${prng.int(0, 1000)}`
    }
    default:
      return pool[prng.int(0, pool.length)]
  }
}
