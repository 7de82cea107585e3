import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["./test/utils/s3GlobalSetup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: one worker per core keeps crash and S3 tests from starving each other.
    maxWorkers: 2
  }
})
