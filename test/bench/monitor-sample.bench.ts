// bench:monitor — what one host-monitor sample costs on a real guest kernel: a failure
// bundle's guest.core (`ktstr-wasm sweep --scheduler ktstr_panic tiny-1llc` leaves one) and
// its vmlinux. Per sample, as a cell's monitor takes it: jiffies, sched_ext state and exit
// info, every CPU's runqueue (the WASM core), and every 10th sample the struct_ops programs'
// run counts. Reported as CPU µs per sample and as a share of one CPU at the default 100 ms
// interval (the goal: under 1 %), beside the runqueue walk alone (the baseline in the run).
//   npm run bench:monitor -- CORE [VMLINUX]

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesSource } from '../../src/elf/file.js';
import { GuestKernel } from '../../src/monitor/guest-kernel.js';
import { loadKernelImage } from '../../src/monitor/kernel-image.js';
import { loadCoreFile } from '../../src/monitor/dump-file.js';
import { RunqueueSampler } from '../../src/monitor/runqueues.js';
import { readJiffies, readScxState } from '../../src/monitor/sched-ext-state.js';
import { inspectGuest } from '../../src/monitor/inspect.js';
import { readSchedDomains } from '../../src/monitor/sched-domains.js';
import { native } from '../../src/kvm/native.js';
import { packageRoot } from '../../src/paths.js';

const core = process.argv[2];
if (core === undefined) {
  process.stderr.write("usage: npm run bench:monitor -- CORE [VMLINUX]  (a failure bundle's guest.core)\n");
  process.exit(2);
}
const vmlinux =
  process.argv[3] ??
  join(
    process.env.KTSTR_KERNELS_DIR ?? join(packageRoot(), '..', 'shared', 'kernels'),
    '6.12.117-sched_ext',
    'vmlinux',
  );
const kernel = loadKernelImage(bytesSource(readFileSync(vmlinux)));
const image = loadCoreFile(core);
const cpu0 = image.dump?.cpus[0];
const guest = GuestKernel.open(image.intro, kernel, {
  vmcoreinfo: image.dump?.vmcoreinfo ?? null,
  ...(cpu0 !== undefined && (cpu0.cr0 & 0x8000_0000n) !== 0n ? { cr3: cpu0.cr3, cr4: cpu0.cr4 } : {}),
});
const sampler = new RunqueueSampler(guest);
const cpuUs = (): number => Number(native().threadCpuTimeNs()) / 1000;

function measure(label: string, n: number, f: (i: number) => void): number {
  for (let i = 0; i < Math.min(200, n); i++) f(i); // warm up
  const t0 = cpuUs();
  for (let i = 0; i < n; i++) f(i);
  const us = (cpuUs() - t0) / n;
  process.stdout.write(
    `${label.padEnd(48)} ${us.toFixed(1).padStart(8)} µs   ${(us / 1000).toFixed(3)} % of a CPU at 100 ms\n`,
  );
  return us;
}

process.stdout.write(
  `bench:monitor on ${core}: ${sampler.cpus} CPUs, sched_ext ${sampler.hasSchedExt ? 'yes' : 'no'}, ${inspectGuest(guest).enumeration.programs.length} struct_ops programs\n`,
);
const walk = measure('runqueue walk (RunqueueSampler.sample)', 5000, () => {
  sampler.sample();
});
const full = measure('full sample (jiffies, sched_ext, runqueues, progs/10)', 5000, (i) => {
  const { hz } = readJiffies(guest);
  readScxState(guest, hz);
  sampler.sample();
  if (i % 10 === 0) inspectGuest(guest);
});
measure('sched domains (once per cell)', 200, () => {
  readSchedDomains(guest);
});
process.stdout.write(`full sample / runqueue walk: ${(full / walk).toFixed(2)}x\n`);
