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
import { fileSystem } from "./utils/stores.ts"

objectStoreConformance(fileSystem)
kvOnBackend(fileSystem)
kvModelSuite(fileSystem, { schedules: 40 }) // twice: WAL objects, WAL in the local log
jobQueueSuite(fileSystem)
workerSuite(fileSystem)
versionedPayloadsSuite(fileSystem)
queueManagementSuite(fileSystem)
queueContractSuite(fileSystem)
cronSchedulesSuite(fileSystem)
standbySuite(fileSystem)
readOnlySuite(fileSystem)
runReaderSuite(fileSystem)
