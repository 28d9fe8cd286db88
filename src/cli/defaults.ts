// Defaults the CLI shows in option help, kept here so that defining the commands loads no
// implementation module. They mirror the implementations' own defaults (src/host/run.ts,
// src/kernel/source.ts); test/cli-lazy.test.ts fails when the two drift apart.

import { cpus } from 'node:os';

/** `host run --memory`: L1 memory in MiB. */
export const HOST_MEMORY_MIB = 3072;

/** `host run --timeout`: seconds before L1 is killed. */
export const HOST_TIMEOUT_SECONDS = 900;

/** `host run --cpus`: half the host's CPUs, 1 to 4 (the test host's reasoning: src/host/run.ts). */
export function hostDefaultCpus(): number {
  return Math.max(1, Math.min(4, Math.floor(cpus().length / 2)));
}

/** `kernel build --version`: the Debian linux-source series built by default. */
export const KERNEL_SERIES = '6.12';
