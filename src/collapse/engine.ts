// The interface both collapse engines (WASM core and TypeScript oracle) implement.

import type { CollapseLimits } from './limits.js';

export type OutputSink = (bytes: Uint8Array) => void;

export interface CollapseOptions {
  /** Emit the collapsed structure as JSON instead of the collapsed text. */
  json?: boolean;
  /** Override limits (tests use small ones to reach segment edges). */
  limits?: Partial<CollapseLimits>;
}

/** A streaming collapser: feed input bytes in any chunking, then finish(); output goes to the sink. */
export interface CollapseEngine {
  feed(chunk: Uint8Array): void;
  finish(): void;
}
