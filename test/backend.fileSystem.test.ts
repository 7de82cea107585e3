// Every suite written once, run on this backend.
import { cronSchedulesSuite } from "./suites/cronSchedules.ts"
import { jobQueueSuite } from "./suites/jobQueue.ts"
import { kvOnBackend } from "./suites/kvBackend.ts"
import { objectStoreConformance } from "./suites/objectStoreConformance.ts"
import { workerSuite } from "./suites/worker.ts"
import { fileSystem } from "./utils/stores.ts"

objectStoreConformance(fileSystem)
kvOnBackend(fileSystem)
jobQueueSuite(fileSystem)
workerSuite(fileSystem)
cronSchedulesSuite(fileSystem)
