/**
 * The job queue on the store named by the environment: `BUCKETQ_URL` = `file:./.bucketq` (the
 * default), `s3://bucket/prefix` (with `BUCKETQ_S3_ENDPOINT` and the usual `AWS_*` variables) or
 * `memory:`. See `ObjectStore.layerConfig`. The writer writes its writer record at open and
 * heartbeats it (see `WriterRecord`); `QueueLive.standby` is a standby writer for the same store.
 *
 * @since 0.1.0
 */
import { Layer } from "effect"
import * as JobQueue from "../src/JobQueue.ts"
import * as Kv from "../src/Kv.ts"
import * as ObjectStore from "../src/ObjectStore.ts"

/**
 * A standby writer for the store named by the environment: waits until the writer's heartbeat in
 * the bucket has not changed for `takeoverAfter` (default 15 seconds), then opens the store,
 * fencing the old writer, and serves the queue. See `JobQueue.layerStandby` for the details, and
 * for what a standby that loses a race with another one does.
 *
 * @category layers
 * @since 0.2.0
 */
const standby = (options?: JobQueue.StandbyOptions) =>
  JobQueue.layerStandby(options).pipe(Layer.provide(ObjectStore.layerConfig))

/**
 * The queue's writer over the store named by `BUCKETQ_URL`, heartbeating its writer record;
 * `QueueLive.standby({ takeoverAfter })` is a standby writer for the same store.
 *
 * @category layers
 * @since 0.1.0
 */
export const QueueLive = Object.assign(
  JobQueue.layer().pipe(Layer.provide(Kv.layer()), Layer.provide(ObjectStore.layerConfig)),
  { standby }
)
