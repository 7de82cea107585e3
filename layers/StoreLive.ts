/**
 * Ready-made object stores.
 *
 * @since 0.1.0
 */
import * as ObjectStore from "../src/ObjectStore.ts"

/**
 * The store named by `BUCKETQ_URL` (`file:./.bucketq` by default, `memory:`, or
 * `s3://<bucket>/<prefix>` with `BUCKETQ_S3_ENDPOINT` and the usual `AWS_*` variables); see
 * `ObjectStore.layerConfig`.
 *
 * @category layers
 * @since 0.1.0
 */
export const StoreLive = ObjectStore.layerConfig

/**
 * A new in-memory store, for tests.
 *
 * @category layers
 * @since 0.1.0
 */
export const StoreTest = ObjectStore.layerMemory()
