/**
 * The job queue on the store named by the environment: `BUCKETQ_URL` = `file:./.bucketq` (the
 * default), `s3://bucket/prefix` (with `BUCKETQ_S3_ENDPOINT` and the usual `AWS_*` variables) or
 * `memory:`. See `ObjectStore.layerConfig`.
 *
 * @since 0.1.0
 */
import { Layer } from "effect"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"

/**
 * @category layers
 * @since 0.1.0
 */
export const QueueLive = JobQueue.layer().pipe(Layer.provide(Kv.layer()), Layer.provide(ObjectStore.layerConfig))
