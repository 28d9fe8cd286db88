// The initramfs of a cell: the guest agent's base archive (busybox, Node and the shared
// libraries it needs, the native addon, the agent bundle, the scheduler binary under /sched/
// and /init), then a small second archive holding only the plan. The kernel unpacks
// concatenated archives in order, so the base (~100 MB, mostly Node) is built once per
// scheduler binary (and kept in the cache) and reused by every cell, and only the plan is
// written per cell; the VMM places the two one after another in guest RAM.
// Every file lands at a guest path of its own (/ktstr/..., /sched/...), never at a host path
// that a guest mount (tmpfs on /tmp) could hide; libraries keep their system paths, which is
// where the dynamic loader looks.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { basename, join } from 'node:path';
import { cacheRoot, packageRoot } from '../paths.js';
import { fileURLToPath } from 'node:url';
import { CpioWriter, MemorySink } from './cpio.js';
import { sharedLibraryClosure } from './elf-deps.js';
import { findBusybox } from './shell-initramfs.js';
import { addonCandidates } from '../kvm/native.js';
import { PLAN_PATH, type AgentPlan } from './plan.js';

export const GUEST_NODE = '/ktstr/bin/node';
export const GUEST_ADDON = '/ktstr/native/ktstr_native.node';
export const GUEST_AGENT_SCRIPT = '/ktstr/agent/agent.cjs';
export const GUEST_SCHED_DIR = '/sched';
/** The workload binary of scheduler tests (native/worker/), static. */
export const GUEST_WORKER = '/ktstr/bin/ktstr-worker';
/** Where a test cell's files (the test file's bundle) land. */
export const GUEST_TEST_DIR = '/ktstr/test';
/** /init prints this on the console right before it execs the agent. */
export const AGENT_START_MARKER = 'KTSTR_AGENT_START';

export class AgentImageError extends Error {}

/** The host files the agent image is made of. */
export interface AgentHostFiles {
  node: string;
  addon: string;
  agent: string;
  busybox: string;
  /** ktstr-worker (null when not built: test cells then fail with a clear message). */
  worker: string | null;
}

/** The built ktstr-worker binary (make -C native/worker, run by npm install). */
export function workerBinary(): string | null {
  const p = join(packageRoot(), 'native', 'worker', 'build', 'ktstr-worker');
  return existsSync(p) ? p : null;
}

export function agentHostFiles(): AgentHostFiles {
  const addon = addonCandidates().find((p) => existsSync(p));
  if (addon === undefined) throw new AgentImageError('the native addon is not built (npm install builds it)');
  // written by the build next to the agent's compiled entry (src/build/bundles.ts GUEST_AGENT)
  const agent = fileURLToPath(new URL('./agent/main.bundle.cjs', import.meta.url));
  if (!existsSync(agent))
    throw new AgentImageError(`the guest agent bundle ${agent} is missing (npm run build writes it)`);
  return { node: process.execPath, addon, agent, busybox: findBusybox(), worker: workerBinary() };
}

export function agentInitScript(): string {
  return `#!/bin/busybox sh
B=/bin/busybox
$B mkdir -p /proc /sys /dev /tmp /run
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev 2>/dev/null
$B mount -t tmpfs tmpfs /tmp
$B mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
$B stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo ${AGENT_START_MARKER}
export PATH=/bin HOME=/root KTSTR_NATIVE_ADDON=${GUEST_ADDON}
exec ${GUEST_NODE} --max-old-space-size=96 ${GUEST_AGENT_SCRIPT}
`;
}

/** Scheduler binaries as the cache takes them: one, several (a test's), or none. */
export type SchedulerBinaries = string | readonly string[] | null;
const asList = (s: SchedulerBinaries): string[] =>
  s === null ? [] : typeof s === 'string' ? [s] : [...new Set(s)].sort();

/** The base archive (no trailer-dependent state: a complete cpio) for the scheduler binaries (or none). */
export async function buildAgentBase(
  scheduler: SchedulerBinaries,
  files: AgentHostFiles = agentHostFiles(),
): Promise<Buffer> {
  const schedulers = asList(scheduler);
  const binaries = [files.busybox, files.node, files.addon, ...schedulers];
  const closure = sharedLibraryClosure(binaries);
  if (closure.missing.length > 0) {
    throw new AgentImageError(
      `shared libraries not found: ${closure.missing.map((m) => `${m.name} (needed by ${m.neededBy})`).join(', ')}`,
    );
  }
  const sink = new MemorySink();
  const w = new CpioWriter(sink);
  for (const d of ['/proc', '/sys', '/dev', '/tmp', '/root', '/run', '/ktstr', GUEST_SCHED_DIR]) await w.directory(d);
  await w.hostPath(files.busybox, { as: '/bin/busybox' });
  for (const f of [...closure.interpreters, ...closure.libraries.map((l) => l.path)]) await w.hostPath(f);
  await w.hostPath(files.node, { as: GUEST_NODE });
  await w.hostPath(files.addon, { as: GUEST_ADDON });
  await w.hostPath(files.agent, { as: GUEST_AGENT_SCRIPT });
  if (files.worker !== null) await w.hostPath(files.worker, { as: GUEST_WORKER });
  for (const b of schedulers) await w.hostPath(b, { as: schedulerGuestPath(b) });
  await w.file('/init', agentInitScript(), { mode: 0o755 });
  await w.finish();
  return sink.toBuffer();
}

export function schedulerGuestPath(hostPath: string): string {
  return `${GUEST_SCHED_DIR}/${basename(hostPath)}`;
}

/** A file of a cell's own (a test bundle): its guest path and bytes. */
export interface CellFile {
  guestPath: string;
  data: string | Buffer;
  mode?: number;
  directory?: boolean;
}

/** Writes a cell's files into an archive, each parent directory first (the unpackers need them), once. */
async function writeCellFiles(w: CpioWriter, files: readonly CellFile[], dirs: Set<string>): Promise<void> {
  for (const f of files) {
    const parts = f.guestPath.split('/').filter((x) => x !== '');
    for (let i = 1; i < parts.length + (f.directory ? 1 : 0); i++) {
      const d = `/${parts.slice(0, i).join('/')}`;
      if (!dirs.has(d)) {
        dirs.add(d);
        await w.directory(d);
      }
    }
    if (!f.directory) await w.file(f.guestPath, f.data, { mode: f.mode ?? 0o644 });
  }
}

/** The per-cell archive: the plan, and the cell's own files. */
export async function buildPlanArchive(plan: AgentPlan, files: readonly CellFile[] = []): Promise<Buffer> {
  const sink = new MemorySink();
  const w = new CpioWriter(sink);
  await w.file(PLAN_PATH, JSON.stringify(plan) + '\n', { mode: 0o644 });
  if (files.length > 0) await w.directory(GUEST_TEST_DIR);
  await writeCellFiles(w, files, new Set<string>(['/', GUEST_TEST_DIR]));
  await w.finish();
  return sink.toBuffer();
}

/** A cell's files as one archive (no plan): what the host hands a waiting agent (cell-handoff.ts). */
export async function buildCellArchive(files: readonly CellFile[]): Promise<Buffer> {
  const sink = new MemorySink();
  const w = new CpioWriter(sink);
  await writeCellFiles(w, files, new Set<string>(['/']));
  await w.finish();
  return sink.toBuffer();
}

const baseLibrarySets = new Map<string, ReadonlySet<string>>();
/**
 * The libraries (and loader) the base image holds, remembered by its binaries' paths, sizes
 * and times: finding them parses Node's ELF, tens of ms here and more in the test host, and a
 * test cell asks twice (its scheduler part and its test's).
 */
function baseLibraries(files: AgentHostFiles): ReadonlySet<string> {
  const binaries = [files.busybox, files.node, files.addon];
  const key = binaries
    .map((b) => {
      const st = statSync(b);
      return `${b}:${st.size}:${st.mtimeMs}`;
    })
    .join('|');
  let set = baseLibrarySets.get(key);
  if (set === undefined) {
    const base = sharedLibraryClosure(binaries);
    set = new Set([...base.interpreters, ...base.libraries.map((l) => l.path)]);
    baseLibrarySets.clear();
    baseLibrarySets.set(key, set);
  }
  return set;
}

/**
 * Scheduler binaries as a cell's files (at schedulerGuestPath), with the shared libraries they
 * need that the base image (busybox, Node, the addon) does not already hold.
 */
export function schedulerCellFiles(binaries: readonly string[], files: AgentHostFiles = agentHostFiles()): CellFile[] {
  const list = asList(binaries);
  if (list.length === 0) return [];
  const closure = sharedLibraryClosure(list);
  if (closure.missing.length > 0) {
    throw new AgentImageError(
      `shared libraries not found: ${closure.missing.map((m) => `${m.name} (needed by ${m.neededBy})`).join(', ')}`,
    );
  }
  const inBase = baseLibraries(files);
  const libraries = [...closure.interpreters, ...closure.libraries.map((l) => l.path)].filter((f) => !inBase.has(f));
  return [
    ...list.map((b) => ({ guestPath: schedulerGuestPath(b), data: readFileSync(b), mode: 0o755 })),
    ...libraries.map((f) => ({ guestPath: f, data: readFileSync(f), mode: 0o755 })),
  ];
}

/**
 * Base archives by scheduler binary, as files in the cache (`<cache>/agent/<key>.cpio`), so a
 * sweep builds each once for all its cells and threads, and the next sweep not at all; the VMM
 * reads the file straight into guest RAM. The key covers each input's path, size and mtime, so
 * a rebuilt binary, agent or Node makes a new entry. Written atomically (a temporary name,
 * then a rename: concurrent builders cannot tear it); at most KEEP entries are kept.
 */
export class AgentImageCache {
  private readonly pending = new Map<string, Promise<string>>();
  static readonly KEEP = 6;

  constructor(
    private readonly files: AgentHostFiles = agentHostFiles(),
    private readonly dir = join(cacheRoot(), 'agent'),
  ) {}

  /** The base archive's key: its inputs' paths, sizes and times (a snapshot of a base VM carries it too). */
  baseKey(scheduler: SchedulerBinaries): string {
    const stamp = (p: string | null): string => {
      if (p === null) return '-';
      const st = statSync(p);
      return `${p}:${st.size}:${st.mtimeMs}`;
    };
    const inputs = [
      asList(scheduler).map(stamp).join(',') || '-',
      ...Object.values(this.files).map(stamp),
      agentInitScript(),
    ];
    return createHash('sha256').update(inputs.join('|')).digest('hex').slice(0, 24);
  }

  /** The base archive's path, built when missing. */
  base(scheduler: SchedulerBinaries): Promise<string> {
    const key = this.baseKey(scheduler);
    const path = join(this.dir, `${key}.cpio`);
    if (existsSync(path)) return Promise.resolve(path);
    let entry = this.pending.get(key);
    if (entry === undefined) {
      entry = (async () => {
        const bytes = await buildAgentBase(scheduler, this.files);
        mkdirSync(this.dir, { recursive: true });
        const tmp = `${path}.${process.pid}.${threadId}.tmp`;
        try {
          writeFileSync(tmp, bytes);
          renameSync(tmp, path);
        } finally {
          rmSync(tmp, { force: true });
        }
        this.prune(path);
        return path;
      })();
      entry.finally(() => this.pending.delete(key)).catch(() => {});
      this.pending.set(key, entry);
    }
    return entry;
  }

  /** Drops the oldest entries beyond KEEP (never `keep`). */
  private prune(keep: string): void {
    try {
      const entries = readdirSync(this.dir)
        .filter((n) => n.endsWith('.cpio'))
        .map((n) => join(this.dir, n))
        .map((p) => ({ p, t: statSync(p).mtimeMs }))
        .sort((a, b) => b.t - a.t);
      for (const e of entries.slice(AgentImageCache.KEEP)) if (e.p !== keep) rmSync(e.p, { force: true });
    } catch {
      /* another process pruned first */
    }
  }

  /** The cell's initrd: the base archive (a file) and the plan archive (bytes), for bootVm. */
  async initrd(
    scheduler: SchedulerBinaries,
    plan: AgentPlan,
    files: readonly CellFile[] = [],
  ): Promise<[string, Buffer]> {
    const [base, planArchive] = await Promise.all([this.base(scheduler), buildPlanArchive(plan, files)]);
    return [base, planArchive];
  }
}
