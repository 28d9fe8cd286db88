// The kernel cache: $XDG_CACHE_HOME/ktstr-wasm/kernels/<label>/ holds bzImage, vmlinux
// (stripped: symbols, BTF, ELF headers, no DWARF), config, metadata.json and schedulers/.
// An entry appears only whole: it is written in a staging directory beside it and renamed
// into place after metadata.json (the last file) is written, so a build that dies leaves no
// entry, only a staging directory that the next locker removes. One lock file (O_EXCL,
// holding the owner's pid) keeps two builders apart; a lock whose pid is gone is stale.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { cacheRoot } from '../paths.js';
import { pidAlive, tryLockFile } from '../lock-file.js';
import { isSanitizedLabel } from './label.js';
import { KtstrError } from '../errors.js';

export const METADATA_FILE = 'metadata.json';
const LOCK_FILE = '.lock';
const STAGING_PREFIX = '.staging-';
const TRASH_PREFIX = '.trash-';
/** Work trees of builds in progress (build.ts names them .build-<pid>-...). */
export const WORK_PREFIX = '.build-';

export interface FileFacts {
  bytes: number;
  sha256: string;
}

export interface KernelSourceInfo {
  kind: 'debian-package' | 'tarball' | 'tree';
  /** The tarball or tree used. */
  path: string;
  /** Debian package name and version, for kind debian-package. */
  package?: string;
  packageVersion?: string;
}

export interface KernelMetadata {
  label: string;
  /** `make kernelversion` of the tree, e.g. 6.12.117. */
  version: string;
  /** sha256 of the final .config. */
  configHash: string;
  /** sha256 of the fragment merged onto the base. */
  fragmentHash: string;
  source: KernelSourceInfo;
  /** ISO 8601, when the build finished. */
  builtAt: string;
  buildSeconds: number;
  /** bzImage, vmlinux, config -> size and hash. */
  files: Record<string, FileFacts>;
  /** Binary names in schedulers/. */
  schedulers: string[];
  /** Compile steps make reported (the next build's progress estimate). */
  buildSteps?: number;
  builtBy: string;
}

export interface CacheEntry {
  label: string;
  dir: string;
  metadata: KernelMetadata;
}

export class CacheError extends KtstrError {}
export class CacheLockedError extends CacheError {
  constructor(
    message: string,
    readonly ownerPid: number,
  ) {
    super(message);
  }
}

/** Reads and checks metadata.json; undefined when absent or unusable. */
export function readMetadata(dir: string): KernelMetadata | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(dir, METADATA_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Partial<KernelMetadata>;
  if (
    typeof m.label !== 'string' ||
    typeof m.version !== 'string' ||
    typeof m.configHash !== 'string' ||
    typeof m.builtAt !== 'string' ||
    typeof m.source !== 'object' ||
    m.source === null
  )
    return undefined;
  return { files: {}, schedulers: [], fragmentHash: '', buildSeconds: 0, builtBy: '', ...m } as KernelMetadata;
}

export class KernelCache {
  readonly root: string;

  constructor(root?: string) {
    this.root = root ?? defaultKernelCacheDir();
  }

  /** Complete entries (those with a valid metadata.json and a bzImage), by label. */
  list(): CacheEntry[] {
    if (!existsSync(this.root)) return [];
    const out: CacheEntry[] = [];
    for (const name of readdirSync(this.root).sort()) {
      if (name.startsWith('.')) continue;
      const dir = join(this.root, name);
      if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
      const metadata = readMetadata(dir);
      if (metadata === undefined || !existsSync(join(dir, 'bzImage'))) continue;
      out.push({ label: name, dir, metadata });
    }
    return out;
  }

  get(label: string): CacheEntry | undefined {
    if (!isSanitizedLabel(label)) return undefined;
    return this.list().find((e) => e.label === label);
  }

  /**
   * Takes the cache lock (stale locks of dead processes are broken, and their staging
   * directories removed). Throws CacheLockedError when a live process holds it.
   */
  lock(): CacheLock {
    mkdirSync(this.root, { recursive: true });
    const path = join(this.root, LOCK_FILE);
    const lock = tryLockFile(path);
    if (!lock.taken) {
      if (lock.owner === process.pid) throw new CacheError('this process already holds the kernel cache lock');
      throw new CacheLockedError(
        `the kernel cache ${this.root} is locked by process ${lock.owner} (a build in progress); wait for it or stop it`,
        lock.owner,
      );
    }
    this.sweep();
    return new CacheLock(this, lock.release);
  }

  /** Removes staging, trash and work directories left by processes that are gone. */
  private sweep(): void {
    for (const name of readdirSync(this.root)) {
      if (![STAGING_PREFIX, TRASH_PREFIX, WORK_PREFIX].some((p) => name.startsWith(p))) continue;
      const pid = Number.parseInt(name.split('-')[1] ?? '', 10);
      if (!pidAlive(pid) || pid === process.pid) rmSync(join(this.root, name), { recursive: true, force: true });
    }
  }
}

/** $XDG_CACHE_HOME/ktstr-wasm/kernels (or ~/.cache/ktstr-wasm/kernels). */
export function defaultKernelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'kernels');
}

/** A held cache lock: staging, committing and removing entries. */
export class CacheLock {
  private held = true;

  constructor(
    readonly cache: KernelCache,
    private readonly unlock: () => void,
  ) {}

  private check(): void {
    if (!this.held) throw new CacheError('the kernel cache lock was released');
  }

  /** A fresh staging directory (inside the cache root, so the final rename is atomic). */
  stage(label: string): string {
    this.check();
    if (!isSanitizedLabel(label)) throw new CacheError(`'${label}' is not a sanitised label`);
    const dir = join(this.cache.root, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}-${label}`);
    mkdirSync(dir);
    return dir;
  }

  /**
   * Writes metadata.json into the staging directory and renames it to <root>/<label>. An
   * existing entry is replaced only with `replace`.
   */
  commit(staging: string, metadata: KernelMetadata, o: { replace?: boolean } = {}): CacheEntry {
    this.check();
    const target = join(this.cache.root, metadata.label);
    if (!isSanitizedLabel(metadata.label)) throw new CacheError(`'${metadata.label}' is not a sanitised label`);
    if (!existsSync(join(staging, 'bzImage'))) throw new CacheError(`${staging}: no bzImage to commit`);
    writeFileSync(join(staging, METADATA_FILE), JSON.stringify(metadata, null, 2) + '\n');
    if (existsSync(target)) {
      if (!o.replace)
        throw new CacheError(`the cache already has ${metadata.label} (remove it first, or build with --force)`);
      const trash = join(this.cache.root, `${TRASH_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
      renameSync(target, trash);
      renameSync(staging, target);
      rmSync(trash, { recursive: true, force: true });
    } else {
      renameSync(staging, target);
    }
    return { label: metadata.label, dir: target, metadata };
  }

  /** Removes the entry `label`; false when there is none. */
  remove(label: string): boolean {
    this.check();
    if (!isSanitizedLabel(label)) return false;
    const dir = join(this.cache.root, label);
    if (!existsSync(dir)) return false;
    const trash = join(this.cache.root, `${TRASH_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
    renameSync(dir, trash);
    rmSync(trash, { recursive: true, force: true });
    return true;
  }

  discard(staging: string): void {
    rmSync(staging, { recursive: true, force: true });
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.unlock();
  }
}
