// The test host's defaults (L1 memory, vCPUs, timeout), apart from run.ts so that the CLI
// can show them in its option help without loading the test host itself.

import { cpus } from 'node:os';

export const DEFAULT_MEMORY_MIB = 3072;
export const DEFAULT_TIMEOUT_MS = 900_000;

/**
 * Default L1 vCPUs: half the host's CPUs, 1 to 4. Each vCPU is a host thread under MTTCG; on
 * a 2-CPU host a second vCPU made boot ~1.4 s slower and the KVM suite ~25% slower (measured).
 */
export function defaultCpus(): number {
  return Math.max(1, Math.min(4, Math.floor(cpus().length / 2)));
}
