// Kept guest RAM. A cell's finished VM gives its RAM here instead of back to the host
// (`keepGuestMemory`), and the next restore of the same RAM size in this thread of the process
// takes it (`takeKeptGuestMemory`) and makes it equal to the snapshot page by page, writing
// only the pages that differ (snapshot/ram-file.ts refreshRamFile). Most of them do not: a
// restore of the same snapshot finds the kernel's text, the agent's files and most of its
// data as the last guest left them. In the emulated test host that matters twice: QEMU TCG
// drops the code it translated from a page when the page is written, so a copy into fresh
// memory (the host hands back the last guest's pages) pays for dropping it and the restored
// guest pays for translating its code again; a page left as it was costs neither. At most
// MAX_KEPT memories are kept, each for IDLE_MS unused; then, when the thread's next VM gets
// fresh RAM instead (a cold boot, another RAM size), or on `releaseKeptGuestMemory`,
// their pages go back to the host (MADV_DONTNEED) and the memory object to the garbage collector.

import { native } from '../kvm/native.js';
import type { GuestMemory } from './memory.js';

const IDLE_MS = 30_000;
const MAX_KEPT = 1;

interface Kept {
  memory: GuestMemory;
  timer: NodeJS.Timeout;
}

const kept: Kept[] = [];

/** Gives `memory`'s pages back to the host now (later reads see zeros). Best effort. */
export function releaseGuestMemory(memory: GuestMemory): void {
  const n = native();
  for (const r of memory.regions) {
    try {
      n.madvise(memory.buffer, r.offset, r.size, n.constants.MADV_DONTNEED);
    } catch {
      /* kept until GC */
    }
  }
}

function drop(entry: Kept): void {
  const i = kept.indexOf(entry);
  if (i >= 0) kept.splice(i, 1);
  clearTimeout(entry.timer);
  releaseGuestMemory(entry.memory);
}

/**
 * Keeps a finished VM's RAM for this thread's next restore (the oldest kept one is released
 * when MAX_KEPT are kept). Call only when nothing reads or writes `memory` any more.
 */
export function keepGuestMemory(memory: GuestMemory): void {
  if (kept.some((k) => k.memory === memory)) return;
  const entry: Kept = { memory, timer: setTimeout(() => drop(entry), IDLE_MS) };
  entry.timer.unref();
  kept.push(entry);
  while (kept.length > MAX_KEPT) drop(kept[0]);
}

/** A kept memory of exactly `ramBytes` of guest RAM (its contents: a finished guest's), or undefined. */
export function takeKeptGuestMemory(ramBytes: number): GuestMemory | undefined {
  const i = kept.findIndex((k) => k.memory.ramBytes === ramBytes);
  if (i < 0) return undefined;
  const [entry] = kept.splice(i, 1);
  clearTimeout(entry.timer);
  return entry.memory;
}

/** How many memories are kept (tests, benchmarks). */
export function keptGuestMemories(): number {
  return kept.length;
}

/** Releases every kept memory now (before measuring RSS; at the end of a run). */
export function releaseKeptGuestMemory(): void {
  for (const k of [...kept]) drop(k);
}
