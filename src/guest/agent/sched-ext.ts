// The guest kernel's sched_ext state as sysfs shows it (/sys/kernel/sched_ext).

import { existsSync, readFileSync } from 'node:fs';

export const SCHED_EXT_DIR = '/sys/kernel/sched_ext';

export function schedExtAvailable(): boolean {
  return existsSync(`${SCHED_EXT_DIR}/state`);
}

function readTrimmed(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** `enabled`, `disabled`, `enabling`, `disabling` (empty when unreadable). */
export function schedExtState(): string {
  return readTrimmed(`${SCHED_EXT_DIR}/state`);
}

/** The name of the attached scheduler's ops (empty when none). */
export function schedExtOps(): string {
  return readTrimmed(`${SCHED_EXT_DIR}/root/ops`);
}

/** How many times a scheduler was enabled since boot (enable_seq, 6.12+); -1 when the kernel lacks it. */
export function schedExtEnableSeq(): number {
  const text = readTrimmed(`${SCHED_EXT_DIR}/enable_seq`);
  return /^\d+$/.test(text) ? Number(text) : -1;
}
