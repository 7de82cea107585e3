/**
 * Store URLs: `file:<directory>` (relative to the working directory unless absolute),
 * `memory:`, and `s3://<bucket>/<prefix>`.
 *
 * @internal
 */
import { Result } from "effect"
import { InvalidStoreUrl } from "../ObjectStoreError.ts"

/** Where a store URL points. */
export type StoreLocation =
  | { readonly _tag: "Memory" }
  | { readonly _tag: "FileSystem"; readonly directory: string }
  | { readonly _tag: "S3"; readonly bucket: string; readonly prefix: string }

const bucketName = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** Parses a store URL. */
export const parseStoreUrl = (url: string): Result.Result<StoreLocation, InvalidStoreUrl> => {
  const invalid = (detail: string) => Result.fail(new InvalidStoreUrl({ url, detail }))
  if (url === "memory:" || url === "memory://") return Result.succeed({ _tag: "Memory" })
  if (url.startsWith("file:")) {
    const rest = url.startsWith("file://") ? url.slice("file://".length) : url.slice("file:".length)
    if (rest === "") return invalid("file: needs a directory, as in file:./.bucketq")
    return Result.succeed({ _tag: "FileSystem", directory: decodeURIComponent(rest) })
  }
  if (url.startsWith("s3://")) {
    const rest = url.slice("s3://".length)
    const slash = rest.indexOf("/")
    const bucket = slash < 0 ? rest : rest.slice(0, slash)
    const prefix = slash < 0 ? "" : rest.slice(slash + 1)
    if (!bucketName.test(bucket)) return invalid(`${JSON.stringify(bucket)} is not a bucket name`)
    return Result.succeed({ _tag: "S3", bucket, prefix })
  }
  return invalid("expected file:<directory>, memory: or s3://<bucket>/<prefix>")
}
