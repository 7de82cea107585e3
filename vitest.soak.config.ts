import { defineConfig } from "vitest/config"

// The soak run: long randomized schedules, no S3 server needed.
export default defineConfig({
  test: { include: ["test/soak/**/*.soak.ts"], testTimeout: 0, hookTimeout: 60_000 }
})
