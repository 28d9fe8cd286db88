// Loader and driver for the WASM collapse core (assembly/collapse.ts -> build/collapse.wasm).
// TypeScript only moves bytes: it copies input into the module's staging buffer, calls
// feed(), and forwards what the module emits.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CollapseEngine, CollapseOptions, OutputSink } from './engine.js';
import type { StagedInput } from './fd-io.js';
import { resolveLimits } from './limits.js';

interface CollapseExports {
  memory: WebAssembly.Memory;
  init(
    minPeriodLines: number,
    minRepetitions: number,
    maxPeriodItems: number,
    candidatesPerStart: number,
    segmentBytes: number,
    segmentLines: number,
    longLineBytes: number,
    maxDepth: number,
    json: number,
    minReferenceLines: number,
  ): number;
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
      throw new Error(`collapse core not built (${collapseWasmPath()}): run npm install or npm run build`, {
        cause: err,
      });
    }
    compiled = new WebAssembly.Module(new Uint8Array(bytes));
  }
  return compiled;
}

/** An instance with its host-side sink; idle instances are pooled because creating one
 * costs more (reserving its memory) than collapsing a small log. */
interface CoreInstance {
  core: CollapseExports;
  sink: OutputSink | null;
}

const idle: CoreInstance[] = [];
const MAX_IDLE = 2;

function newCoreInstance(): CoreInstance {
  const slot: CoreInstance = { core: undefined as unknown as CollapseExports, sink: null };
  const instance = new WebAssembly.Instance(collapseModule(), {
    env: {
      emit: (ptr: number, len: number) => slot.sink?.(new Uint8Array(slot.core.memory.buffer, ptr, len)),
      abort: (_msg: number, _file: number, line: number, column: number) => {
        throw new Error(`collapse core aborted at ${line}:${column}`);
      },
    },
  });
  slot.core = instance.exports as unknown as CollapseExports;
  return slot;
}

export class WasmCollapser implements CollapseEngine, StagedInput {
  private slot: CoreInstance | null;
  private readonly staging: number;
  private readonly capacity: number;

  constructor(sink: OutputSink, options: CollapseOptions = {}) {
    const limits = resolveLimits(options.limits);
    const slot = idle.pop() ?? newCoreInstance();
    slot.sink = sink;
    const core = slot.core;
    const status = core.init(
      limits.minPeriodLines,
      limits.minRepetitions,
      limits.maxPeriodItems,
      limits.candidatesPerStart,
      limits.segmentBytes,
      limits.segmentLines,
      limits.longLineBytes,
      limits.maxDepth,
      options.json === true ? 1 : 0,
      limits.minReferenceLines,
    );
    if (status !== 0) throw new Error(`collapse core could not reserve memory for these limits (status ${status})`);
    this.slot = slot;
    this.staging = core.inputBuffer();
    this.capacity = core.inputCapacity();
  }

  private get core(): CollapseExports {
    if (this.slot === null) throw new Error('collapser already finished');
    return this.slot.core;
  }

  /** The staging area as a view (src/collapse/fd-io.ts reads into it); valid until the next feed. */
  stagingArea(): Uint8Array {
    return new Uint8Array(this.core.memory.buffer, this.staging, this.capacity);
  }

  /** Consumes `length` bytes written at the start of stagingArea(). */
  feedStaged(length: number): void {
    if (length < 0 || length > this.capacity)
      throw new RangeError(`staged length ${length} out of 0..${this.capacity}`);
    this.core.feed(length);
  }

  feed(chunk: Uint8Array): void {
    const core = this.core;
    for (let at = 0; at < chunk.length; at += this.capacity) {
      const part = chunk.subarray(at, at + this.capacity);
      new Uint8Array(core.memory.buffer, this.staging, part.length).set(part);
      core.feed(part.length);
    }
  }

  /** Ends the input. The instance goes back to the pool only after a clean finish: one
   * that threw part-way is dropped with its state. */
  finish(): void {
    const slot = this.slot;
    this.core.finish();
    this.slot = null;
    if (slot !== null) {
      slot.sink = null;
      if (idle.length < MAX_IDLE) idle.push(slot);
    }
  }
}
