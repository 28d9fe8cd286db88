// KVM guest-loop calibration bench: instructions/s of the 64-bit guest loop
// (src/doctor/calibration.ts, on the VMM's Machine) for growing N, median of 3 runs each. N grows by 10x up to 10^8
// while the next size is projected to take under 5 s a run (so an emulating /dev/kvm such as
// PVM stops early).
// Pass N values as arguments to choose them. Prints a table; asserts nothing.

import { existsSync } from 'node:fs';
import { runGuestLoop } from '../../src/doctor/calibration.js';

const REPEATS = 3;
const MAX_PROJECTED_SECONDS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const vendor =
  ['kvm_intel', 'kvm_amd', 'kvm_pvm'].filter((m) => existsSync(`/sys/module/${m}`)).join(', ') || 'unknown';
console.log(`/dev/kvm: ${existsSync('/dev/kvm') ? 'present' : 'absent'}; vendor module: ${vendor}\n`);

const fixed = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
const sizes = fixed.length > 0 ? fixed : [1e4, 1e5, 1e6, 1e7, 1e8];

const header = ['N', 'instructions', 'ms (median)', 'M instr/s (median)', 'M instr/s (best)', 'exit'];
const rows: string[][] = [];
for (const n of sizes) {
  const seconds: number[] = [];
  const rates: number[] = [];
  let instructions = 0;
  let exit = '';
  for (let i = 0; i < REPEATS; i++) {
    const r = await runGuestLoop({ iterations: n, timeoutMs: 120_000 });
    seconds.push(r.seconds);
    rates.push(r.instructionsPerSecond);
    instructions = r.instructions;
    exit = r.exit.kind;
  }
  rows.push([
    String(n),
    String(instructions),
    (median(seconds) * 1e3).toFixed(2),
    (median(rates) / 1e6).toFixed(2),
    (Math.max(...rates) / 1e6).toFixed(2),
    exit,
  ]);
  if (fixed.length === 0 && median(seconds) * 10 > MAX_PROJECTED_SECONDS) break;
}

const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]): string =>
  cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
console.log(line(header));
console.log(width.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
