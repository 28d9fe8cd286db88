// The synchronous file-descriptor path of `ktstr-wasm collapse`: when the log is a regular
// file and stdout a file (or /dev/null), the bytes go read() -> the engine -> write() with no
// stream machinery, no per-chunk buffers and no copies beyond the engine's own. The WASM
// engine is read into directly: each read() lands in its staging area. (Measured on a 100 MB
// log: the stream path spent more system time on fresh 1 MiB read buffers and output copies
// than the collapse itself.)

import { fstatSync, readSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { CollapseEngine, OutputSink } from './engine.js';
import { StatsScanner, type ProgramStats } from './stats.js';

/** An engine that can be read into directly (WasmCollapser). */
export interface StagedInput {
  /** Where the next input bytes go; valid until the next feedStaged() or feed(). */
  stagingArea(): Uint8Array;
  /** Consumes `length` bytes written at the start of stagingArea(). */
  feedStaged(length: number): void;
}

const READ_BYTES = 1 << 20;

function fstatOrNull(fd: number): ReturnType<typeof fstatSync> | null {
  try {
    return fstatSync(fd);
  } catch {
    return null;
  }
}

/** True for a regular file: read() on it never blocks on a producer. */
export function isRegularFile(fd: number): boolean {
  return fstatOrNull(fd)?.isFile() === true;
}

/** True when write() on `fd` completes synchronously and in order with process.stdout: a
 * regular file, or a device that is not a terminal (/dev/null). */
export function isSyncWritable(fd: number): boolean {
  const st = fstatOrNull(fd);
  if (st === null) return false;
  return st.isFile() || (st.isCharacterDevice() && !isatty(fd));
}

/** write() until every byte is out. */
export function writeAllSync(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
}

function hasStagedInput(engine: CollapseEngine): engine is CollapseEngine & StagedInput {
  return typeof (engine as Partial<StagedInput>).stagingArea === 'function';
}

/** Collapses everything read from `inFd` into `outFd` (see the header for when to use it). */
export function collapseFd(inFd: number, outFd: number, makeEngine: (sink: OutputSink) => CollapseEngine): void {
  const engine = makeEngine((bytes) => writeAllSync(outFd, bytes));
  if (hasStagedInput(engine)) {
    for (;;) {
      const area = engine.stagingArea();
      const n = readSync(inFd, area, 0, area.length, null);
      if (n === 0) break;
      engine.feedStaged(n);
    }
  } else {
    // the oracle keeps views of what it is fed: a fresh buffer per read
    for (;;) {
      const buffer = Buffer.allocUnsafe(READ_BYTES);
      const n = readSync(inFd, buffer, 0, READ_BYTES, null);
      if (n === 0) break;
      engine.feed(buffer.subarray(0, n));
    }
  }
  engine.finish();
}

/** The verifier summaries of everything read from `inFd` (one reused buffer). */
export function statsFd(inFd: number): ProgramStats[] {
  const scanner = new StatsScanner();
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  for (;;) {
    const n = readSync(inFd, buffer, 0, READ_BYTES, null);
    if (n === 0) break;
    scanner.feed(buffer.subarray(0, n));
  }
  return scanner.finish();
}
