// Randomized model schedules with crashes on the memory backend (TestClock: a seed replays its
// schedule exactly). CI runs KV_SCHEDULES of them (default 1,000) from KV_SEED (default 0);
// `npm run test:soak` runs many more. The directory and S3 backends run the same suite in
// test/backend.*.test.ts, fewer schedules.
import { kvModelSuite } from "./suites/kvModel.ts"
import { memory } from "./utils/stores.ts"

kvModelSuite(memory, { schedules: Number(process.env.KV_SCHEDULES ?? 1000), base: Number(process.env.KV_SEED ?? 0) })
