// Loader and driver for the WASM collapse core (assembly/collapse.ts -> build/collapse.wasm).
// TypeScript only moves bytes: it copies input into the module's staging buffer, calls
// feed(), and forwards what the module emits.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CollapseEngine, CollapseOptions, OutputSink } from './engine.js';
import { resolveLimits } from './limits.js';

interface CollapseExports {
  memory: WebAssembly.Memory;
  init(minPeriodLines: number, minRepetitions: number, maxPeriodItems: number, candidatesPerStart: number,
    segmentBytes: number, segmentLines: number, longLineBytes: number, maxDepth: number, json: number): number;
  inputBuffer(): number;
  inputCapacity(): number;
  feed(length: number): void;
  finish(): void;
}

let compiled: WebAssembly.Module | undefined;

/** Path of the built module; `npm install` builds it from assembly/. */
export function collapseWasmPath(): string {
  return fileURLToPath(new URL('../../../build/collapse.wasm', import.meta.url));
}

function collapseModule(): WebAssembly.Module {
  if (compiled === undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(collapseWasmPath());
    } catch (err) {
      throw new Error(`collapse core not built (${collapseWasmPath()}): run npm install or npm run build`, { cause: err });
    }
    compiled = new WebAssembly.Module(new Uint8Array(bytes));
  }
  return compiled;
}

export class WasmCollapser implements CollapseEngine {
  private readonly core: CollapseExports;
  private readonly staging: number;
  private readonly capacity: number;

  constructor(sink: OutputSink, options: CollapseOptions = {}) {
    const limits = resolveLimits(options.limits);
    let memory: WebAssembly.Memory | undefined;
    const instance = new WebAssembly.Instance(collapseModule(), {
      env: {
        emit: (ptr: number, len: number) => sink(new Uint8Array(memory!.buffer, ptr, len)),
        abort: (_msg: number, _file: number, line: number, column: number) => {
          throw new Error(`collapse core aborted at ${line}:${column}`);
        },
      },
    });
    this.core = instance.exports as unknown as CollapseExports;
    memory = this.core.memory;
    const status = this.core.init(limits.minPeriodLines, limits.minRepetitions, limits.maxPeriodItems,
      limits.candidatesPerStart, limits.segmentBytes, limits.segmentLines, limits.longLineBytes, limits.maxDepth,
      options.json === true ? 1 : 0);
    if (status !== 0) throw new Error(`collapse core could not reserve memory for these limits (status ${status})`);
    this.staging = this.core.inputBuffer();
    this.capacity = this.core.inputCapacity();
  }

  feed(chunk: Uint8Array): void {
    for (let at = 0; at < chunk.length; at += this.capacity) {
      const part = chunk.subarray(at, at + this.capacity);
      new Uint8Array(this.core.memory.buffer, this.staging, part.length).set(part);
      this.core.feed(part.length);
    }
  }

  finish(): void {
    this.core.finish();
  }
}
