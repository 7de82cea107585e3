// Checksummed payload objects (test/suites/payloadObjects.ts), on the memory, directory and S3 backends.
import { payloadObjectSuite } from "./suites/payloadObjects.ts"
import { fileSystem, memory, s3 } from "./utils/stores.ts"

payloadObjectSuite(memory)
payloadObjectSuite(fileSystem)
payloadObjectSuite(s3)
