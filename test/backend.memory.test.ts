// Every suite written once, run on this backend.
import { cronSchedulesSuite } from "./suites/cronSchedules.ts"
import { jobQueueSuite } from "./suites/jobQueue.ts"
import { kvOnBackend } from "./suites/kvBackend.ts"
import { objectStoreConformance } from "./suites/objectStoreConformance.ts"
import { queueContractSuite } from "./suites/queueContract.ts"
import { versionedPayloadsSuite } from "./suites/versionedPayloads.ts"
import { queueManagementSuite } from "./suites/queueManagement.ts"
import { workerSuite } from "./suites/worker.ts"
import { standbySuite } from "./suites/standby.ts"
import { readOnlySuite } from "./suites/readOnly.ts"
import { runReaderSuite } from "./suites/runReader.ts"
import { memory } from "./utils/stores.ts"

objectStoreConformance(memory)
kvOnBackend(memory)
// the KV model (suites/kvModel.ts) runs its 1,000 memory schedules in Kv.model.test.ts
jobQueueSuite(memory)
workerSuite(memory)
versionedPayloadsSuite(memory)
queueManagementSuite(memory)
queueContractSuite(memory)
cronSchedulesSuite(memory)
standbySuite(memory)
readOnlySuite(memory)
runReaderSuite(memory)
