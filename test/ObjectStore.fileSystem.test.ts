import { objectStoreConformance } from "./suites/objectStoreConformance.ts"
import { fileSystem } from "./utils/stores.ts"

objectStoreConformance(fileSystem)
