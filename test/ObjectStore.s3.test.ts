import { objectStoreConformance } from "./suites/objectStoreConformance.ts"
import { s3 } from "./utils/stores.ts"

objectStoreConformance(s3)
