// Kernel resolution, used by every command's --kernel: the spec may be a bzImage (or vmlinux)
// path, a kernel directory (a cache entry or prebuilt one: bzImage, vmlinux, config,
// schedulers/), a built source tree, a cache label or a version ("6.12" -> the newest 6.12.x
// known). Without a spec: KTSTR_KERNEL (same forms), then auto-discovery: the cache (newest
// build first), then the prebuilt kernels (../shared/kernels or $KTSTR_KERNELS_DIR). A spec
// that names nothing is an error that lists what exists.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KernelCache, readMetadata } from './cache.js';
import { defaultKernelsDir } from './discover.js';
import { configKernelVersion } from './kconfig.js';
import {
  compareVersions,
  formatVersion,
  parseVersion,
  sanitizeLabel,
  versionHasPrefix,
  versionOfLabel,
  type Version,
} from './label.js';
import { UsageError } from '../errors.js';

export interface ResolvedKernel {
  label: string;
  bzImage: string;
  /** Stripped (or full) vmlinux with .symtab and .BTF, when known. */
  vmlinux?: string;
  config?: string;
  /** Directory of scheduler binaries built against this kernel. */
  schedulersDir?: string;
  /** Kernel version (6.12.117) when known. */
  version?: string;
  origin: 'path' | 'tree' | 'cache' | 'shared';
  /** The directory the kernel came from (entry dir or tree). */
  dir?: string;
  /** What selected it: the spec, KTSTR_KERNEL or auto-discovery. */
  via: 'spec' | 'KTSTR_KERNEL' | 'auto';
}

export class KernelNotFoundError extends UsageError {}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  cache?: KernelCache;
  /** Prebuilt kernels directory; default defaultKernelsDir(env). null: none. */
  sharedDir?: string | null;
}

function statOf(p: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined; // absent, or a path through a non-directory
  }
}
const isFile = (p: string): boolean => statOf(p)?.isFile() === true;
const isDir = (p: string): boolean => statOf(p)?.isDirectory() === true;

function versionFromConfig(config: string | undefined): string | undefined {
  if (config === undefined || !isFile(config)) return undefined;
  try {
    return configKernelVersion(readFileSync(config, 'latin1').slice(0, 2000));
  } catch {
    return undefined;
  }
}

/** A kernel directory (cache entry or prebuilt): bzImage plus optional vmlinux, config, schedulers/. */
function fromKernelDir(
  dir: string,
  label: string,
  origin: ResolvedKernel['origin'],
  via: ResolvedKernel['via'],
): ResolvedKernel | undefined {
  const bzImage = join(dir, 'bzImage');
  if (!isFile(bzImage)) return undefined;
  const vmlinux = join(dir, 'vmlinux');
  const config = join(dir, 'config');
  const schedulers = join(dir, 'schedulers');
  const meta = readMetadata(dir);
  const version =
    meta?.version ??
    versionFromConfig(config) ??
    (() => {
      const v = versionOfLabel(label);
      return v && formatVersion(v);
    })();
  return {
    label,
    bzImage,
    origin,
    via,
    dir,
    version,
    vmlinux: isFile(vmlinux) ? vmlinux : undefined,
    config: isFile(config) ? config : undefined,
    schedulersDir: isDir(schedulers) ? schedulers : undefined,
  };
}

/** A kernel source tree: top Makefile + Kconfig; usable once arch/x86/boot/bzImage exists. */
function fromSourceTree(dir: string, via: ResolvedKernel['via']): ResolvedKernel {
  const bzImage = join(dir, 'arch', 'x86', 'boot', 'bzImage');
  if (!isFile(bzImage)) {
    throw new KernelNotFoundError(
      `${dir} is a kernel source tree without arch/x86/boot/bzImage: build it first (ktstr-wasm kernel build --source ${dir})`,
    );
  }
  const vmlinux = join(dir, 'vmlinux');
  const config = join(dir, '.config');
  const schedulers = join(dir, 'tools', 'sched_ext', 'build', 'bin');
  const version = versionFromConfig(config);
  return {
    label: sanitizeLabel(`${version ?? 'tree'}-${dir.split('/').filter(Boolean).pop() ?? 'tree'}`),
    bzImage,
    origin: 'tree',
    via,
    dir,
    version,
    vmlinux: isFile(vmlinux) ? vmlinux : undefined,
    config: isFile(config) ? config : undefined,
    schedulersDir: isDir(schedulers) ? schedulers : undefined,
  };
}

function isSourceTree(dir: string): boolean {
  return isFile(join(dir, 'Makefile')) && isFile(join(dir, 'Kconfig')) && isDir(join(dir, 'kernel'));
}

/** Every known kernel in auto-discovery order: cache entries (newest first), then prebuilt ones (by label). */
export function knownKernels(o: ResolveOptions = {}): ResolvedKernel[] {
  const env = o.env ?? process.env;
  const cache = o.cache ?? new KernelCache(undefined);
  const out: ResolvedKernel[] = [];
  const cached = cache.list().sort((a, b) => b.metadata.builtAt.localeCompare(a.metadata.builtAt));
  for (const e of cached) {
    const k = fromKernelDir(e.dir, e.label, 'cache', 'auto');
    if (k) out.push(k);
  }
  const shared = o.sharedDir === null ? undefined : (o.sharedDir ?? defaultKernelsDir(env));
  if (shared !== undefined && isDir(shared)) {
    for (const name of readdirSync(shared).sort()) {
      if (name.startsWith('.')) continue;
      const k = fromKernelDir(join(shared, name), name, 'shared', 'auto');
      if (k) out.push(k);
    }
  }
  return out;
}

function describeKnown(known: ResolvedKernel[]): string {
  if (known.length === 0)
    return 'no kernels are known: build one with `ktstr-wasm kernel build` or point KTSTR_KERNEL at a bzImage';
  return `known kernels: ${known.map((k) => `${k.label} (${k.origin}${k.version ? ', ' + k.version : ''})`).join(', ')}`;
}

function newest(kernels: ResolvedKernel[]): ResolvedKernel | undefined {
  // stable: among equal versions the earlier (cache before shared, newer build first) wins
  let best: ResolvedKernel | undefined;
  let bestV: Version | undefined;
  for (const k of kernels) {
    const v = k.version === undefined ? undefined : parseVersion(k.version);
    if (v === undefined) continue;
    if (bestV === undefined || compareVersions(v, bestV) > 0) {
      best = k;
      bestV = v;
    }
  }
  return best;
}

/** Resolves one spec (see the file header). Throws KernelNotFoundError listing the known kernels. */
export function resolveKernelSpec(spec: string, via: ResolvedKernel['via'], o: ResolveOptions = {}): ResolvedKernel {
  const s = spec.trim();
  if (s === '') throw new KernelNotFoundError('empty kernel spec');
  const looksLikePath = s.includes('/') || s.startsWith('.');
  const path = resolve(s);
  if (existsSync(path) && (looksLikePath || isFile(path) || isDir(path))) {
    if (isFile(path))
      return { label: sanitizeLabel(path.split('/').slice(-2).join('-')), bzImage: path, origin: 'path', via };
    if (isDir(path)) {
      const asEntry = fromKernelDir(
        path,
        sanitizeLabel(path.split('/').filter(Boolean).pop() ?? 'kernel'),
        'path',
        via,
      );
      if (asEntry) return asEntry;
      if (isSourceTree(path)) return fromSourceTree(path, via);
      throw new KernelNotFoundError(`${path}: neither a kernel directory (with bzImage) nor a kernel source tree`);
    }
  }
  const known = knownKernels(o);
  if (looksLikePath) throw new KernelNotFoundError(`${s}: no such file or directory; ${describeKnown(known)}`);
  let label: string | undefined;
  try {
    label = sanitizeLabel(s);
  } catch {
    /* not a label */
  }
  const byLabel = known.find((k) => k.label === s || k.label === label);
  if (byLabel) return { ...byLabel, via };
  const version = parseVersion(s);
  if (version !== undefined) {
    const matching = known.filter((k) => {
      const v = k.version === undefined ? undefined : parseVersion(k.version);
      return v !== undefined && versionHasPrefix(v, version);
    });
    const best = newest(matching);
    if (best) return { ...best, via };
    throw new KernelNotFoundError(`no kernel with version ${s}; ${describeKnown(known)}`);
  }
  throw new KernelNotFoundError(`unknown kernel '${s}' (not a path, cache label or version); ${describeKnown(known)}`);
}

/**
 * The kernel for a command: `spec` when given, else $KTSTR_KERNEL, else the first
 * auto-discovered one (cache, then prebuilt).
 */
export function resolveKernel(spec?: string, o: ResolveOptions = {}): ResolvedKernel {
  const env = o.env ?? process.env;
  if (spec !== undefined && spec !== '') return resolveKernelSpec(spec, 'spec', o);
  const fromEnv = env.KTSTR_KERNEL;
  if (fromEnv !== undefined && fromEnv !== '') {
    try {
      return resolveKernelSpec(fromEnv, 'KTSTR_KERNEL', o);
    } catch (e) {
      if (e instanceof KernelNotFoundError) throw new KernelNotFoundError(`KTSTR_KERNEL=${fromEnv}: ${e.message}`);
      throw e;
    }
  }
  const first = knownKernels(o)[0];
  if (first === undefined) throw new KernelNotFoundError(describeKnown([]));
  return first;
}

/**
 * The image to boot: the kernel's vmlinux when it came from a kernel directory, cache entry
 * or source tree and has one (the VMM loads it directly and the guest skips the bzImage's
 * decompressor: ~0.4 s of every boot in the emulated test host; the guest then runs without
 * KASLR), else the bzImage. A path names exactly the file to boot.
 */
export function bootImage(k: ResolvedKernel): string {
  // a file spec carries no vmlinux: it boots as named
  if (k.vmlinux !== undefined && isFile(k.vmlinux)) return k.vmlinux;
  return k.bzImage;
}
