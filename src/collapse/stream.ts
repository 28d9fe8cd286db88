// Streams bytes from a readable source through a collapse engine into a writable sink,
// holding only what the engine holds (chunks are written out, with backpressure, as soon
// as the engine releases them).

import type { Readable, Writable } from 'node:stream';
import type { CollapseEngine, OutputSink } from './engine.js';

export type EngineFactory = (sink: OutputSink) => CollapseEngine;

/** Resolves on the stream's next 'drain' (rejects on 'error'): backpressure for writers. */
export function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      out.off('error', onError);
      resolve();
    };
    const onError = (err: Error): void => {
      out.off('drain', onDrain);
      reject(err);
    };
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}

function writeAll(out: Writable, chunks: Uint8Array[]): Promise<void> | undefined {
  let ok = true;
  for (const chunk of chunks) ok = out.write(chunk);
  chunks.length = 0;
  return ok ? undefined : drained(out);
}

/** Collapses everything from `input` into `output`; resolves when all output is handed over. */
export async function collapseStream(input: Readable, output: Writable, makeEngine: EngineFactory): Promise<void> {
  const pending: Uint8Array[] = [];
  // engines reuse their output buffers, so keep a copy until it is written
  const engine = makeEngine((bytes) => {
    pending.push(Uint8Array.prototype.slice.call(bytes));
  });
  for await (const chunk of input) {
    engine.feed(chunk as Uint8Array);
    const wait = writeAll(output, pending);
    if (wait) await wait;
  }
  engine.finish();
  const wait = writeAll(output, pending);
  if (wait) await wait;
}

/** Collapses a whole in-memory input; returns the output bytes. */
export function collapseBytes(input: Uint8Array, makeEngine: EngineFactory, chunkSize = 1 << 20): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const engine = makeEngine((bytes) => {
    parts.push(bytes.slice());
    total += bytes.length;
  });
  for (let at = 0; at < input.length; at += chunkSize) engine.feed(input.subarray(at, at + chunkSize));
  engine.finish();
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
