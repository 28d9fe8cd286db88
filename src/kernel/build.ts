// `kernel build`: one sched_ext kernel from source into the cache. Steps: take the cache lock;
// unpack the source (tarball) or build out of tree (O=, source tree); `make defconfig`; merge
// ktstr.kconfig; `make olddefconfig`; check that every fragment option survived (fail listing
// the dropped ones); `make -jN bzImage` with a progress display; keep bzImage, vmlinux with
// the DWARF stripped (objcopy --strip-debug keeps .symtab, .BTF and the headers), the .config
// and the fragment; build tools/sched_ext and scx-ktstr into schedulers/; write
// metadata.json and rename the staging directory into place. Anything that fails or is
// interrupted removes the staging and work directories and leaves no entry.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { buildScxKtstr, SCX_KTSTR_BINARY } from './scx-ktstr.js';
import {
  KernelCache,
  WORK_PREFIX,
  type CacheEntry,
  type CacheLock,
  type FileFacts,
  type KernelMetadata,
} from './cache.js';
import { describeDropped, droppedOptions, mergeKconfig, parseKconfig } from './kconfig.js';
import { sanitizeLabel } from './label.js';
import { BuildProgress, formatDuration, type ProgressSink } from './progress.js';
import { sourceInfo, type SourceSpec } from './source.js';
import { KtstrError } from '../errors.js';

export class KernelBuildError extends KtstrError {}

export interface KernelBuildOptions {
  source: SourceSpec;
  /** Cache label; default <version>-sched_ext. */
  label?: string;
  /** Config fragment path; default ktstr.kconfig of the package. */
  fragment?: string;
  /** make -j; default the host's CPU count. */
  jobs?: number;
  /** Build tools/sched_ext and scx-ktstr (default true). */
  schedulers?: boolean;
  /** Replace an existing entry of the same label. */
  force?: boolean;
  cache?: KernelCache;
  /** Progress and step messages. */
  out: ProgressSink;
  /** Aborts the build (SIGINT/SIGTERM of the CLI): running commands get SIGTERM. */
  signal?: AbortSignal;
  /** Called after each step (tests use it to interrupt at a known point). */
  onStep?: (step: string) => void;
  /** Stop after checking the merged config (no bzImage, no entry). */
  configOnly?: boolean;
}

export interface KernelBuildResult {
  entry?: CacheEntry;
  /** The checked .config text (configOnly). */
  config?: string;
  seconds: number;
}

export function defaultFragmentPath(): string {
  return join(packageRoot(), 'ktstr.kconfig');
}

interface RunOptions {
  cwd: string;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** Runs a command in its own process group; rejects with the output tail on failure. */
function run(cmd: string, args: string[], o: RunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new KernelBuildError('interrupted'));
      return;
    }
    const child = spawn(cmd, args, {
      cwd: o.cwd,
      env: o.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const tail: string[] = [];
    let stdout = '';
    let partial = { out: '', err: '' };
    const feed = (which: 'out' | 'err', d: Buffer): void => {
      const text = partial[which] + d.toString('utf8');
      const lines = text.split('\n');
      partial = { ...partial, [which]: lines.pop() ?? '' };
      for (const l of lines) {
        if (which === 'out' && stdout.length < 1 << 20) stdout += l + '\n';
        tail.push(l);
        if (tail.length > 80) tail.shift();
        o.onLine?.(l);
      }
    };
    child.stdout.on('data', (d: Buffer) => feed('out', d));
    child.stderr.on('data', (d: Buffer) => feed('err', d));
    const kill = (): void => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* gone */
      }
    };
    o.signal?.addEventListener('abort', kill, { once: true });
    child.once('error', (e) => {
      o.signal?.removeEventListener('abort', kill);
      reject(new KernelBuildError(`${cmd}: ${e.message}`));
    });
    child.once('close', (code, sig) => {
      o.signal?.removeEventListener('abort', kill);
      for (const w of ['out', 'err'] as const)
        if (partial[w] !== '') {
          tail.push(partial[w]);
          if (w === 'out') stdout += partial[w];
        }
      if (o.signal?.aborted) reject(new KernelBuildError('interrupted'));
      else if (code === 0) resolve(stdout);
      else
        reject(
          new KernelBuildError(
            `${cmd} ${args.join(' ')} failed (${sig ?? `exit ${code}`}) in ${o.cwd}\n${tail.slice(-40).join('\n')}`,
          ),
        );
    });
  });
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function facts(path: string): Promise<FileFacts> {
  return { bytes: statSync(path).size, sha256: await sha256File(path) };
}

/** The single top directory a tarball unpacked into. */
function unpackedTree(dir: string): string {
  const tops = readdirSync(dir).filter((n) => !n.startsWith('.'));
  const tree = tops
    .map((n) => join(dir, n))
    .find((p) => existsSync(join(p, 'Makefile')) && existsSync(join(p, 'Kconfig')));
  if (tree === undefined)
    throw new KernelBuildError(`the tarball holds no kernel tree (top entries: ${tops.slice(0, 5).join(', ')})`);
  return tree;
}

/** The step estimate for the progress display: the last build of the same version. */
function stepEstimate(cache: KernelCache, version: string): number | undefined {
  const same = cache.list().filter((e) => e.metadata.version === version && e.metadata.buildSteps);
  return same.length > 0 ? same[same.length - 1].metadata.buildSteps : undefined;
}

export async function buildKernel(o: KernelBuildOptions): Promise<KernelBuildResult> {
  const started = Date.now();
  const cache = o.cache ?? new KernelCache();
  const jobs = o.jobs ?? availableParallelism();
  const withSchedulers = o.schedulers ?? true;
  const fragmentPath = o.fragment ?? defaultFragmentPath();
  const fragmentText = readFileSync(fragmentPath, 'utf8');
  const fragment = parseKconfig(fragmentText, fragmentPath);
  const say = (s: string): void => o.out.write(s + '\n');
  const step = (name: string): void => o.onStep?.(name);

  const lock: CacheLock = cache.lock();
  const work = join(cache.root, `${WORK_PREFIX}${process.pid}-${Date.now().toString(36)}`);
  let staging: string | undefined;
  try {
    mkdirSync(work);
    // 1. the tree
    let tree: string;
    let objDir: string;
    if (o.source.kind === 'tree') {
      tree = o.source.path;
      objDir = join(work, 'obj');
      mkdirSync(objDir);
    } else {
      const tarball = o.source.kind === 'tarball' ? o.source.path : o.source.tarball;
      if (!existsSync(tarball)) throw new KernelBuildError(`${tarball}: not found`);
      say(`unpacking ${tarball} ...`);
      const t0 = Date.now();
      await run('tar', ['-xf', tarball, '-C', work], { cwd: work, signal: o.signal });
      tree = unpackedTree(work);
      objDir = tree;
      say(`unpacked in ${formatDuration(Date.now() - t0)}`);
    }
    step('unpacked');
    const outOfTree = objDir !== tree;
    const make = (args: string[], extra: Partial<RunOptions> = {}): Promise<string> =>
      run('make', [...(outOfTree ? [`O=${objDir}`] : []), ...args], { cwd: tree, signal: o.signal, ...extra });

    const version = (await make(['-s', 'kernelversion'])).trim().split('\n').pop() ?? '';
    if (!/^\d+\.\d+/.test(version)) throw new KernelBuildError(`make kernelversion said '${version}'`);
    const label = sanitizeLabel(o.label ?? `${version}-sched_ext`);
    if (cache.get(label) !== undefined && !o.force && !o.configOnly) {
      throw new KernelBuildError(
        `the cache already has ${label}: use it (--kernel ${label}), remove it (ktstr-wasm kernel remove ${label}) or rebuild with --force`,
      );
    }
    say(`kernel ${version} -> ${label} (make -j${jobs})`);

    // 2. config: minimal base + fragment, then Kconfig's own resolution, then the check
    await make(['defconfig']);
    const configPath = join(objDir, '.config');
    writeFileSync(configPath, mergeKconfig(readFileSync(configPath, 'utf8'), fragment));
    await make(['olddefconfig']);
    const finalConfig = readFileSync(configPath, 'utf8');
    const dropped = droppedOptions(fragment, parseKconfig(finalConfig, '.config'));
    if (dropped.length > 0) {
      throw new KernelBuildError(
        `Kconfig dropped ${dropped.length} option(s) of ${fragmentPath} (unmet dependencies or unknown in ${version}):\n${describeDropped(dropped)}`,
      );
    }
    say(`config: all ${fragment.size} fragment options present`);
    step('configured');
    if (o.configOnly) return { config: finalConfig, seconds: (Date.now() - started) / 1000 };

    // 3. the kernel
    const progress = new BuildProgress(o.out, 'bzImage', stepEstimate(cache, version));
    try {
      await make([`-j${jobs}`, 'bzImage'], { onLine: (l) => progress.line(l) });
      progress.finish(true);
    } catch (e) {
      progress.finish(false);
      throw e;
    }
    step('built');
    staging = lock.stage(label);
    copyFileSync(join(objDir, 'arch', 'x86', 'boot', 'bzImage'), join(staging, 'bzImage'));
    await run('objcopy', ['--strip-debug', join(objDir, 'vmlinux'), join(staging, 'vmlinux')], {
      cwd: work,
      signal: o.signal,
    });
    copyFileSync(configPath, join(staging, 'config'));
    writeFileSync(join(staging, 'fragment.config'), fragmentText);

    // 4. schedulers
    const schedulers: string[] = [];
    if (withSchedulers) {
      const schedDir = join(staging, 'schedulers');
      mkdirSync(schedDir);
      say('building tools/sched_ext ...');
      const scxOut = outOfTree ? join(work, 'sched_ext') : undefined;
      await run(
        'make',
        [
          '-C',
          join(tree, 'tools', 'sched_ext'),
          `-j${jobs}`,
          'CC=gcc',
          'CLANG=clang-16',
          'LLVM_STRIP=llvm-strip-16',
          ...(scxOut ? [`O=${scxOut}`] : []),
          `VMLINUX_BTF=${join(objDir, 'vmlinux')}`,
        ],
        { cwd: tree, signal: o.signal },
      );
      const binDir = scxOut ? join(scxOut, 'build', 'bin') : join(tree, 'tools', 'sched_ext', 'build', 'bin');
      for (const name of existsSync(binDir) ? readdirSync(binDir).sort() : []) {
        if (!name.startsWith('scx_')) continue;
        copyFileSync(join(binDir, name), join(schedDir, name));
        schedulers.push(name);
      }
      if (schedulers.length === 0) throw new KernelBuildError(`tools/sched_ext built no scx_* binaries in ${binDir}`);
      say(`tools/sched_ext: ${schedulers.join(', ')}`);
      say('building scx-ktstr ...');
      const bin = await buildScxKtstr({ vmlinux: join(staging, 'vmlinux'), outDir: join(work, 'scx-ktstr') });
      copyFileSync(bin, join(schedDir, SCX_KTSTR_BINARY));
      schedulers.push(SCX_KTSTR_BINARY);
    }
    step('schedulers');

    // 5. metadata, then the rename that makes the entry exist
    const files: Record<string, FileFacts> = {};
    for (const f of ['bzImage', 'vmlinux', 'config']) files[f] = await facts(join(staging, f));
    const metadata: KernelMetadata = {
      label,
      version,
      configHash: files.config.sha256,
      fragmentHash: createHash('sha256').update(fragmentText).digest('hex'),
      source: sourceInfo(o.source),
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
      files,
      schedulers,
      buildSteps: progress.steps,
      builtBy: `ktstr-wasm ${JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version as string}`,
    };
    step('committing');
    const entry = lock.commit(staging, metadata, { replace: o.force });
    staging = undefined;
    return { entry, seconds: (Date.now() - started) / 1000 };
  } finally {
    if (staging !== undefined) lock.discard(staging);
    rmSync(work, { recursive: true, force: true });
    lock.release();
  }
}
