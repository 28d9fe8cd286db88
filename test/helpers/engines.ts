// Both collapse engines behind one helper, so every property test runs against each.
// The wasm engine needs build/collapse.wasm; when it is missing its tests fail (by design:
// the module is part of the package).

import { existsSync } from 'node:fs';
import {
  collapseBytes,
  createCollapser,
  type CollapseLimits,
  type EngineName,
  type OutputSink,
} from '../../src/collapse/index.js';
import { collapseWasmPath } from '../../src/collapse/wasm.js';

export const ENGINES: readonly EngineName[] = ['wasm', 'ts'];

export interface RunOptions {
  json?: boolean;
  limits?: Partial<CollapseLimits>;
  /** Feed the input in chunks of this many bytes (default: 1 MiB). */
  chunkSize?: number;
}

/** Small limits that make segment carry, period caps and long lines happen on small inputs. */
export const SMALL_LIMITS: Partial<CollapseLimits> = Object.freeze({
  segmentBytes: 4096,
  segmentLines: 64,
  maxPeriodItems: 16,
  longLineBytes: 1024,
  candidatesPerStart: 4,
});

export function wasmBuilt(): boolean {
  return existsSync(collapseWasmPath());
}

/** Collapses `input` on `engine`; returns the output bytes. */
export function collapse(engine: EngineName, input: Uint8Array, options: RunOptions = {}): Buffer {
  const make = (sink: OutputSink) => createCollapser(engine, sink, { json: options.json, limits: options.limits });
  const out = collapseBytes(input, make, options.chunkSize ?? 1 << 20);
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}

/** Collapses and decodes as latin1 (one char per byte: exact for any input). */
export function collapseText(engine: EngineName, input: Uint8Array | string, options: RunOptions = {}): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  return collapse(engine, bytes, options).toString('latin1');
}

/** Feeds `input` in the given chunk sizes (cycled), for chunking-independence checks. */
export function collapseChunked(
  engine: EngineName,
  input: Uint8Array,
  sizes: readonly number[],
  options: RunOptions = {},
): Buffer {
  const parts: Buffer[] = [];
  const engineInstance = createCollapser(engine, (b) => parts.push(Buffer.from(b)), {
    json: options.json,
    limits: options.limits,
  });
  let at = 0;
  let k = 0;
  while (at < input.length) {
    const size = sizes[k++ % sizes.length];
    engineInstance.feed(input.subarray(at, at + size));
    at += size;
  }
  engineInstance.finish();
  return Buffer.concat(parts);
}
