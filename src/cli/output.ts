// Writing to stdout: backpressure-aware writes, and a quiet exit when the reader goes away
// (`ktstr-wasm collapse big.log | head` ends with status 0 and no message).

import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { errorCode, EXIT_OK, KtstrError } from './errors.js';

/** Writes `chunk`, waiting for 'drain' when the stream asks us to (rejects on 'error' meanwhile). */
export function write(out: Writable, chunk: Uint8Array | string): Promise<void> | undefined {
  return out.write(chunk) ? undefined : once(out, 'drain').then(() => undefined);
}

/** True for the error a write gets when the reading end of the pipe has closed. */
export function isBrokenPipe(err: unknown): boolean {
  return errorCode(err) === 'EPIPE';
}

/** Makes EPIPE on `out` end the process at once with status 0; other errors go to `onError`. */
export function exitQuietlyOnBrokenPipe(out: Writable, onError: (err: Error) => void): void {
  out.on('error', (err: Error) => {
    if (isBrokenPipe(err)) process.exit(EXIT_OK);
    onError(err);
  });
}

/** Writes a file atomically (temporary name, then rename): an interrupted write leaves nothing. */
export function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new KtstrError(`cannot write ${path}: ${(e as Error).message}`);
  }
}
