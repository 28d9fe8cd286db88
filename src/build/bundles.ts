// The one-file bundles the build links (esm-link.ts) from the compiled modules in dist/, each
// next to its entry so import.meta.url-relative paths keep working: the vCPU worker (a thread
// per vCPU: it starts faster from one script than from fourteen modules) and the CLI (every
// command: ~95 modules, loaded in one piece; a command's code still runs only when it is
// chosen), and the guest agent (Node in every cell's VM). bin/ktstr-wasm uses the CLI bundle while it is newer than the compiled modules.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { linkEsm, type LinkedBundle } from './esm-link.js';

/** dist/src of this build (this file is dist/src/build/bundles.js). */
const distSrc = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface BundleSpec {
  name: string;
  /** The compiled entry module the bundle is linked from. */
  entry: string;
  /** Where the build writes it. */
  bundle: string;
}

export const VCPU_WORKER: BundleSpec = { name: 'vcpu-worker', entry: join(distSrc, 'vmm', 'vcpu-worker.js'), bundle: join(distSrc, 'vmm', 'vcpu-worker.bundle.cjs') };
export const CLI: BundleSpec = { name: 'cli', entry: join(distSrc, 'cli', 'main.js'), bundle: join(distSrc, 'cli', 'main.bundle.cjs') };
/** The guest agent: copied into every cell's initramfs and run by Node in the guest as one script. */
export const GUEST_AGENT: BundleSpec = { name: 'guest-agent', entry: join(distSrc, 'guest', 'agent', 'main.js'), bundle: join(distSrc, 'guest', 'agent', 'main.bundle.cjs') };
export const BUNDLES: readonly BundleSpec[] = [VCPU_WORKER, CLI, GUEST_AGENT];

/** Links `spec.entry` into the text of its bundle (or of `outFile`, for a copy elsewhere). */
export function linkBundle(spec: BundleSpec, outFile = spec.bundle): LinkedBundle {
  return linkEsm({ entry: spec.entry, outFile, displayRoot: dirname(distSrc), readFile: (p) => readFileSync(p, 'utf8') });
}
