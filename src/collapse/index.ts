// Public API of the verifier-log collapser (`ktstr-wasm/collapse`).

import type { CollapseEngine, CollapseOptions, OutputSink } from './engine.js';
import { OracleCollapser } from './oracle.js';
import { WasmCollapser } from './wasm.js';

export type { CollapseEngine, CollapseOptions, OutputSink } from './engine.js';
export { DEFAULT_LIMITS, type CollapseLimits } from './limits.js';
export { lineKey, normaliseLog, splitLogLines } from './line-key.js';
export { expandCollapsed, ExpandError } from './expand.js';
export { collapseStream, collapseBytes, type EngineFactory } from './stream.js';
export { OracleCollapser } from './oracle.js';
export { collapseFd, statsFd, isRegularFile, isSyncWritable, type StagedInput } from './fd-io.js';
export { WasmCollapser } from './wasm.js';

export type EngineName = 'wasm' | 'ts';

/** A collapser on the named engine: 'wasm' (the fast core) or 'ts' (the readable oracle). */
export function createCollapser(engine: EngineName, sink: OutputSink, options: CollapseOptions = {}): CollapseEngine {
  return engine === 'ts' ? new OracleCollapser(sink, options) : new WasmCollapser(sink, options);
}
