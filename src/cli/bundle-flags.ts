// --keep-dumps / --out of `sweep` and `test`: the cell engine's bundle policy from the flags,
// the flags the inner run inside the test host gets (the same absolute --out, so the paths it
// prints are right here, plus --bundle-blocks), and the inner run's side of the transfer:
// each finished cell's bundle printed as blocks (bundle-transfer.ts), then deleted from L1.

import { rmSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { KeepDumps } from '../cell/cell-dump.js';
import type { CellDumpPolicy } from '../sweep/run.js';
import { emitBundle } from './bundle-transfer.js';

export const DEFAULT_OUT = './ktstr-out';

export interface BundleFlags { keepDumps?: KeepDumps; out?: string }

export function dumpPolicy(flags: BundleFlags): CellDumpPolicy {
  return { bundleDir: resolve(flags.out ?? DEFAULT_OUT), keepDumps: flags.keepDumps ?? 'failures' };
}

export function bundleDelegateArgs(flags: BundleFlags): string[] {
  const p = dumpPolicy(flags);
  return ['--keep-dumps', p.keepDumps!, '--out', p.bundleDir!, '--bundle-blocks'];
}

/** Writes all of `text` to stdout now (a pipe may be non-blocking: EAGAIN is retried). */
function writeAll(text: string): void {
  const b = Buffer.from(text, 'utf8');
  for (let done = 0; done < b.length;) {
    try {
      done += writeSync(1, b, done, b.length - done);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
}

/** The inner run's side: the cell's bundle out through stdout, then gone from here. */
export function sendBundle(r: { bundle?: string }): void {
  if (r.bundle === undefined) return;
  emitBundle(r.bundle, writeAll);
  rmSync(r.bundle, { recursive: true, force: true });
}
