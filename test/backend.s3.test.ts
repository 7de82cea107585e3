// Every suite written once, run on this backend.
import { cronSchedulesSuite } from "./suites/cronSchedules.ts"
import { jobQueueSuite } from "./suites/jobQueue.ts"
import { kvOnBackend } from "./suites/kvBackend.ts"
import { kvModelSuite } from "./suites/kvModel.ts"
import { objectStoreConformance } from "./suites/objectStoreConformance.ts"
import { queueContractSuite } from "./suites/queueContract.ts"
import { versionedPayloadsSuite } from "./suites/versionedPayloads.ts"
import { queueManagementSuite } from "./suites/queueManagement.ts"
import { workerSuite } from "./suites/worker.ts"
import { standbySuite } from "./suites/standby.ts"
import { readOnlySuite } from "./suites/readOnly.ts"
import { runReaderSuite } from "./suites/runReader.ts"
import { s3 } from "./utils/stores.ts"

objectStoreConformance(s3)
kvOnBackend(s3)
kvModelSuite(s3, { schedules: 30 })
jobQueueSuite(s3)
workerSuite(s3)
versionedPayloadsSuite(s3)
queueManagementSuite(s3)
queueContractSuite(s3)
cronSchedulesSuite(s3)
standbySuite(s3)
readOnlySuite(s3)
runReaderSuite(s3)
