// Writing to stdout: backpressure-aware writes, and a quiet exit when the reader goes away
// (`ktstr-wasm collapse big.log | head` ends with status 0 and no message).

import type { Writable } from 'node:stream';
import { errorCode } from './errors.js';

/** Writes `chunk`, waiting for 'drain' when the stream asks us to. */
export function write(out: Writable, chunk: Uint8Array | string): Promise<void> | undefined {
  if (out.write(chunk)) return undefined;
  return new Promise((resolve, reject) => {
    const onDrain = (): void => { out.off('error', onError); resolve(); };
    const onError = (err: Error): void => { out.off('drain', onDrain); reject(err); };
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}

/** True for the error a write gets when the reading end of the pipe has closed. */
export function isBrokenPipe(err: unknown): boolean {
  return errorCode(err) === 'EPIPE';
}

/** Makes EPIPE on `out` end the process at once with status 0; other errors go to `onError`. */
export function exitQuietlyOnBrokenPipe(out: Writable, onError: (err: Error) => void): void {
  out.on('error', (err: Error) => {
    if (isBrokenPipe(err)) process.exit(0);
    onError(err);
  });
}
