/**
 * The job queue for tests: an in-memory store, fast background intervals, all time from the
 * `Clock` (so `TestClock` drives leases, backoff and scheduling).
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
export const QueueTest: Layer.Layer<JobQueue.JobQueue, JobQueue.QueueError | Kv.OpenError> = JobQueue.layer({
  reaperInterval: "1 second",
  schedulerInterval: "100 millis"
}).pipe(Layer.provide(Kv.layer()), Layer.provide(ObjectStore.layerMemory()))
