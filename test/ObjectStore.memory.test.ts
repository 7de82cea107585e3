import { objectStoreConformance } from "./suites/objectStoreConformance.ts"
import { memory } from "./utils/stores.ts"

objectStoreConformance(memory)
