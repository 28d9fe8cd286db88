// L1's TSC rate, fixed on its command line so the kernel does not depend on calibrating it
// against the emulated PIT. Under TCG the guest TSC is the host's TSC (QEMU reads it with
// rdtsc when icount is off). On a loaded host the PIT windows stretch, the TSC calibration
// fails, and L1 then waits forever for a timer tick nobody set up (seen: a loop on jiffies in
// early boot with every interrupt source masked). `tsc_early_khz=` skips that calibration.

import { native } from '../kvm/native.js';

/**
 * This host's TSC rate in kHz, measured against CLOCK_MONOTONIC over a few short busy windows
 * (median), or undefined where the binding has no TSC (not x86-64) or the rate is implausible.
 */
export function measureHostTscKhz(windowMs = 20, samples = 3): number | undefined {
  const n = native();
  const rates: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = process.hrtime.bigint();
    const c0 = n.rdtsc();
    const end = t0 + BigInt(windowMs) * 1_000_000n;
    let t1 = t0;
    while (t1 < end) t1 = process.hrtime.bigint();
    const c1 = n.rdtsc();
    if (c0 === 0n || c1 <= c0) return undefined;
    rates.push(Number(((c1 - c0) * 1_000_000n) / (t1 - t0)));
  }
  rates.sort((a, b) => a - b);
  const khz = rates[Math.floor(rates.length / 2)];
  return khz >= 100_000 && khz <= 20_000_000 ? khz : undefined; // 100 MHz .. 20 GHz
}

/** The L1 command-line words that fix its TSC rate (none when it cannot be measured). */
export function l1ClockCmdline(tscKhz: number | null = measureHostTscKhz() ?? null): string[] {
  return tscKhz === null ? [] : [`tsc_early_khz=${tscKhz}`];
}
