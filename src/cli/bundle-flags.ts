// --keep-dumps / --out of `sweep` and `test`: the cell engine's bundle policy from the flags,
// the flags the inner run inside the test host gets (the same absolute --out, so the paths it
// prints are right here, plus --bundle-blocks), and the inner run's side of the transfer:
// each finished cell's bundle written as blocks (bundle-transfer.ts) to the test host's
// virtio serial port (KTSTR_HOST_PORT: ~150 MB/s measured) or, without one, to stdout (L1's
// serial console: ~0.15 MB/s of core data measured), then deleted from L1.

import { openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { KeepDumps } from '../cell/cell-dump.js';
import type { CellDumpPolicy } from '../sweep/run.js';
import { emitBundle } from './bundle-transfer.js';

export const DEFAULT_OUT = './ktstr-out';

export interface BundleFlags {
  keepDumps?: KeepDumps;
  out?: string;
}

export function dumpPolicy(flags: BundleFlags): CellDumpPolicy {
  return { bundleDir: resolve(flags.out ?? DEFAULT_OUT), keepDumps: flags.keepDumps ?? 'failures' };
}

export function bundleDelegateArgs(flags: BundleFlags): string[] {
  const p = dumpPolicy(flags);
  return ['--keep-dumps', p.keepDumps!, '--out', p.bundleDir!, '--bundle-blocks'];
}

/** The device of the test host's output port (KTSTR_HOST_PORT names it), or null. */
export function hostPortDevice(env: NodeJS.ProcessEnv = process.env): string | null {
  const name = env.KTSTR_HOST_PORT;
  if (name === undefined || name === '') return null;
  try {
    for (const d of readdirSync('/sys/class/virtio-ports')) {
      if (readFileSync(`/sys/class/virtio-ports/${d}/name`, 'utf8').trim() === name) return `/dev/${d}`;
    }
  } catch {
    /* no virtio ports */
  }
  return null;
}

let out: number | undefined;

/** Writes all of `text` to the port (or stdout) now; a non-blocking pipe's EAGAIN is retried. */
function writeAll(text: string): void {
  if (out === undefined) {
    const dev = hostPortDevice();
    out = dev === null ? 1 : openSync(dev, 'w');
  }
  const b = Buffer.from(text, 'utf8');
  for (let done = 0; done < b.length;) {
    try {
      done += writeSync(out, b, done, b.length - done);
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
