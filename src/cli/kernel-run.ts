// What `ktstr-wasm kernel build|list|remove|resolve` do: build a kernel into the cache
// (installing missing Debian packages when allowed), list and remove cache entries, and
// resolve a --kernel spec (src/kernel). Loaded by kernel-command.ts only when a subcommand runs.

import { defaultSnapshotDir } from '../cell/cell-start.js';
import { SnapshotStore } from '../vmm/snapshot/store.js';
import { spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline/promises';
import { buildKernel } from '../kernel/build.js';
import { KernelCache } from '../kernel/cache.js';
import { LabelError, sanitizeLabel } from '../kernel/label.js';
import { knownKernels, resolveKernel, type ResolvedKernel } from '../kernel/resolve.js';
import { aptInstallCommand, missingPackages, sourceSpec } from '../kernel/source.js';
import { formatDuration } from '../kernel/progress.js';
import { paint } from './colour.js';
import { KtstrError, UsageError } from './errors.js';

export interface BuildFlags {
  source?: string;
  version: string;
  label?: string;
  fragment?: string;
  jobs?: number;
  schedulers: boolean;
  force?: boolean;
  yes?: boolean;
  configOnly?: boolean;
}

/** `kernel list` and `kernel resolve`. */
export interface JsonFlag {
  json?: boolean;
}

/** Installs the missing build packages: asks on a terminal, installs with --yes, else says what to run. */
async function ensurePackages(packages: string[], missing: string[], yes: boolean): Promise<void> {
  if (packages.length === 0) return;
  const cmd = aptInstallCommand(packages);
  const text = cmd.join(' ');
  process.stderr.write(`missing for the build: ${missing.join(', ')}\n`);
  if (!yes) {
    if (!process.stdin.isTTY || !process.stderr.isTTY) {
      throw new KtstrError(`install them first: ${text}\n(or run kernel build with --yes to let it run apt-get)`);
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = (await rl.question(`run \`${text}\` now? [y/N] `)).trim().toLowerCase();
    rl.close();
    if (answer !== 'y' && answer !== 'yes') throw new KtstrError(`not installed; to build, run first: ${text}`);
  }
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit' });
  if (r.status !== 0)
    throw new KtstrError(`${text} failed (exit ${r.status ?? r.signal}); run it yourself and try again`);
}

const INTERRUPTED = 'kernel build interrupted; nothing was added to the cache';

export async function runBuild(flags: BuildFlags): Promise<void> {
  const spec = sourceSpec(flags.source, flags.version); // a bad --source or --version: SourceError, a usage error
  try {
    if (flags.label !== undefined) sanitizeLabel(flags.label);
  } catch (e) {
    // a label that cannot be made from --label; during the build it is a failure
    if (e instanceof LabelError) throw new UsageError(e.message);
    throw e;
  }
  const need = missingPackages(spec, flags.schedulers && !flags.configOnly);
  await ensurePackages(need.packages, need.missing, flags.yes === true);
  const abort = new AbortController();
  const onSignal = (): void => {
    process.stderr.write('\ninterrupted: cleaning up\n');
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const stderr = process.stderr;
  try {
    const r = await buildKernel({
      source: spec,
      label: flags.label,
      fragment: flags.fragment,
      jobs: flags.jobs,
      schedulers: flags.schedulers,
      force: flags.force,
      configOnly: flags.configOnly,
      signal: abort.signal,
      out: { write: (s) => stderr.write(s), isTTY: stderr.isTTY, columns: stderr.columns },
    });
    if (r.entry) {
      const m = r.entry.metadata;
      process.stdout.write(
        `${paint(process.stdout).green('built')} ${m.label} (${m.version}) in ${formatDuration(r.seconds * 1000)}: ${r.entry.dir}\n`,
      );
      for (const [f, facts] of Object.entries(m.files))
        process.stdout.write(
          `  ${f.padEnd(8)} ${(facts.bytes / 1024 ** 2).toFixed(1).padStart(6)} MiB  sha256 ${facts.sha256}\n`,
        );
      if (m.schedulers.length > 0) process.stdout.write(`  schedulers: ${m.schedulers.join(', ')}\n`);
    } else {
      process.stdout.write(
        `config checked in ${formatDuration(r.seconds * 1000)}: every ktstr.kconfig option is in the final .config\n`,
      );
    }
  } catch (e) {
    if (abort.signal.aborted) throw new KtstrError(INTERRUPTED, 'failed', { cause: e });
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (abort.signal.aborted) throw new KtstrError(INTERRUPTED);
}

/** The machine snapshots of a kernel label (cells' snapshots, src/cell/cell-start.ts). */
function snapshotsOf(store: SnapshotStore, label: string): ReturnType<SnapshotStore['list']> {
  return store.list().filter((e) => e.key?.kernel === label);
}

function kernelJson(k: ResolvedKernel): Record<string, unknown> {
  return {
    label: k.label,
    origin: k.origin,
    version: k.version ?? null,
    bzImage: k.bzImage,
    vmlinux: k.vmlinux ?? null,
    config: k.config ?? null,
    schedulersDir: k.schedulersDir ?? null,
    dir: k.dir ?? null,
  };
}

export function runList(flags: JsonFlag): void {
  const cache = new KernelCache();
  const byLabel = new Map(cache.list().map((e) => [e.label, e.metadata]));
  const kernels = knownKernels({ cache });
  const store = new SnapshotStore(defaultSnapshotDir());
  if (flags.json) {
    const rows = kernels.map((k) => {
      const m = k.origin === 'cache' ? byLabel.get(k.label) : undefined;
      return {
        ...kernelJson(k),
        builtAt: m?.builtAt ?? null,
        configHash: m?.configHash ?? null,
        source: m?.source ?? null,
        schedulers: m?.schedulers ?? null,
        snapshots: snapshotsOf(store, k.label).map((e) => ({
          id: e.id,
          topology: e.key?.topology ?? null,
          memoryMiB: e.key?.memoryMiB ?? null,
          // saved with a test's scheduler attached (src/cell/cell-start.ts), else at the agent's ready
          point: typeof e.key?.attached === 'string' ? 'attached' : 'ready',
          diskBytes: e.diskBytes,
        })),
      };
    });
    process.stdout.write(
      JSON.stringify({ cacheDir: cache.root, snapshotDir: store.root, kernels: rows }, null, 2) + '\n',
    );
    return;
  }
  if (kernels.length === 0) {
    process.stdout.write(`no kernels (cache: ${cache.root}); build one with: ktstr-wasm kernel build\n`);
    return;
  }
  const rows = kernels.map((k) => {
    const m = k.origin === 'cache' ? byLabel.get(k.label) : undefined;
    const snaps = snapshotsOf(store, k.label);
    const disk = snaps.reduce((a, e) => a + e.diskBytes, 0);
    return [
      k.label,
      k.version ?? '?',
      k.origin,
      m ? m.builtAt.replace(/\.\d+Z$/, 'Z') : '-',
      m ? m.configHash.slice(0, 12) : '-',
      snaps.length === 0 ? '-' : `${snaps.length} (${(disk / 2 ** 20).toFixed(0)} MiB)`,
      k.dir ?? k.bzImage,
    ];
  });
  const head = ['LABEL', 'VERSION', 'ORIGIN', 'BUILT', 'CONFIG', 'SNAPSHOTS', 'PATH'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ') + '\n';
  process.stdout.write(paint(process.stdout).bold(line(head)));
  for (const r of rows) process.stdout.write(line(r));
}

export function runRemove(label: string): void {
  const cache = new KernelCache();
  if (cache.get(label) === undefined) {
    const labels = cache.list().map((e) => e.label);
    // like an unknown --kernel: a usage error
    throw new UsageError(`no cached kernel '${label}'; cached: ${labels.length ? labels.join(', ') : 'none'}`);
  }
  const lock = cache.lock();
  try {
    lock.remove(label);
  } finally {
    lock.release();
  }
  const store = new SnapshotStore(defaultSnapshotDir());
  const snaps = snapshotsOf(store, label);
  for (const e of snaps) store.removeEntry(e.id);
  process.stdout.write(`removed ${label}${snaps.length > 0 ? ` and its ${snaps.length} snapshot(s)` : ''}\n`);
}

export function runResolve(spec: string | undefined, flags: JsonFlag): void {
  const k = resolveKernel(spec); // a spec that names nothing: KernelNotFoundError, a usage error as in every command
  if (flags.json) process.stdout.write(JSON.stringify({ ...kernelJson(k), via: k.via }, null, 2) + '\n');
  else
    process.stdout.write(`${k.label} (${k.origin}, via ${k.via}${k.version ? ', ' + k.version : ''}): ${k.bzImage}\n`);
}
