// Payload binaries for a run inside the emulated test host, whose userland has only what the
// test host image carries: each test's payload binary and its shared libraries are copied
// into one directory (bin/, lib/) that is shared into the test host, where the inner run
// finds them (`--payload-stage`). Removed afterwards.

import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { sharedLibraryClosure } from '../guest/elf-deps.js';
import type { TestCell } from './matrix.js';

export interface PayloadStage {
  dir: string;
  cleanup(): void;
}

/** The environment variable naming a stage for runs that get no --payload-stage (npm test's KVM suite). */
export const PAYLOAD_STAGE_ENV = 'KTSTR_PAYLOAD_STAGE';

/** Stages every payload of the cells; null when none has one. */
export function stagePayloads(cells: readonly TestCell[]): PayloadStage | null {
  return stageBinaries(cells.map((c) => c.payload?.binary).filter((b): b is string => b !== undefined));
}

/** Stages host binaries (paths) with their libraries; null for none. */
export function stageBinaries(paths: readonly string[]): PayloadStage | null {
  const binaries = [...new Set(paths)];
  if (binaries.length === 0) return null;
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-payload-'));
  try {
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'lib'));
    for (const b of binaries) {
      copyFileSync(b, join(dir, 'bin', basename(b)));
      for (const l of sharedLibraryClosure([b]).libraries) copyFileSync(l.path, join(dir, 'lib', basename(l.path)));
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
