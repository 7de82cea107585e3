#!/usr/bin/env node
/**
 * The `bucketq` command (the package's `bin`): see `cli/commands.ts` for the commands. Runs on
 * Node with the platform services of `@effect/platform-node`; exits with 1 when a command fails,
 * after printing why.
 *
 * @since 0.3.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { main } from "../src/cli/commands.ts"

main.pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
