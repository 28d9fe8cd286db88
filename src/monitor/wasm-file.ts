// Node-only: compiles build/introspect.wasm (or the unshared build) from the package and makes
// an Introspector over a memory. Browsers do the same with fetch() + Introspector.create().

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Introspector, introspectWasmName } from './introspector.js';

const compiled = new Map<string, WebAssembly.Module>();

export function introspectWasmPath(name = 'introspect.wasm'): string {
  return fileURLToPath(new URL(`../../../build/${name}`, import.meta.url));
}

export function introspectModule(name: string): WebAssembly.Module {
  let m = compiled.get(name);
  if (m === undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(introspectWasmPath(name));
    } catch (err) {
      throw new Error(`introspection core not built (${introspectWasmPath(name)}): run npm run build`, { cause: err });
    }
    m = new WebAssembly.Module(new Uint8Array(bytes));
    compiled.set(name, m);
  }
  return m;
}

/** An Introspector over `memory` with the matching module build. */
export function nodeIntrospector(memory: WebAssembly.Memory): Introspector {
  return new Introspector(introspectModule(introspectWasmName(memory)), memory);
}
