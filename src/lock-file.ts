// The lock file both caches use (the kernel cache, the snapshot store): created with O_EXCL and
// holding its owner's pid, so one process (or thread) at a time holds it; a lock whose owner is
// gone -- killed mid-build or mid-save -- is stale and broken by the next taker. What waiting
// for a live owner means is the caller's: the kernel cache refuses, the snapshot store waits.

import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

/** Whether process `pid` exists. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type LockAttempt = { taken: true; release: () => void } | { taken: false; owner: number };

/**
 * One try at the lock file `path` (its directory must exist): taken, or held by a live process
 * (possibly this one: another thread, or a second take). A stale lock is removed and tried again.
 */
export function tryLockFile(path: string): LockAttempt {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return { taken: true, release: () => rmSync(path, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner: number;
    try {
      owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch {
      continue; // released in between
    }
    // a lock just created may not hold its pid yet: read again before calling it stale
    if (Number.isNaN(owner)) continue;
    if (pidAlive(owner)) return { taken: false, owner };
    rmSync(path, { force: true }); // stale
  }
  throw new Error(`cannot take the lock ${path}: it keeps changing hands`);
}
