// A fenced writer stops (test/suites/fencing.ts), on the memory, directory and S3 backends.
import { fencingSuite } from "./suites/fencing.ts"
import { fileSystem, memory, s3 } from "./utils/stores.ts"

fencingSuite(memory)
fencingSuite(fileSystem)
fencingSuite(s3)
