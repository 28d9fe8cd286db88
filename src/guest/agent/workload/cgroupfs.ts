// The test's cgroups in the guest's cgroup v2 tree: /sys/fs/cgroup/ktstr/<name>, created with
// the cpu and cpuset controllers enabled on the way down, their controls written, their
// effective CPU sets read back, and removed leaves first. Every path stays below ROOT.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupSpec } from '../../../test-api/cgroup.js';
import { parseCpuList } from '../probe.js';

export const CGROUP_MOUNT = '/sys/fs/cgroup';
export const ROOT = `${CGROUP_MOUNT}/ktstr`;

export class CgroupError extends Error {}

function write(path: string, value: string, what: string): void {
  try {
    writeFileSync(path, value);
  } catch (e) {
    throw new CgroupError(
      `${what}: writing "${value.trim()}" to ${path} failed: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

export function cgroupPath(name: string): string {
  if (name.split('/').some((p) => p === '' || p === '.' || p === '..'))
    throw new CgroupError(`bad cgroup name "${name}"`);
  return join(ROOT, name);
}

/** Enables +cpu +cpuset for the children of `dir` (the controllers the tests use). */
function enableControllers(dir: string): void {
  const available = readFileSync(join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  const want = ['cpu', 'cpuset'].filter((c) => available.includes(c));
  if (want.length > 0) write(join(dir, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '), `cgroup ${dir}`);
}

/** Mounts cgroup2 if needed and creates ROOT with the controllers on. */
export function prepareRoot(): void {
  if (!existsSync(join(CGROUP_MOUNT, 'cgroup.controllers')))
    throw new CgroupError(`no cgroup v2 at ${CGROUP_MOUNT} (the guest kernel needs CONFIG_CGROUPS)`);
  enableControllers(CGROUP_MOUNT);
  mkdirSync(ROOT, { recursive: true });
  enableControllers(ROOT);
}

/** Creates the cgroups (parents before children, as toSpecs orders them) and writes their controls. */
export function createCgroups(specs: CgroupSpec[]): void {
  const parents = new Set(specs.map((s) => s.name.split('/').slice(0, -1).join('/')).filter((p) => p !== ''));
  for (const s of specs) {
    const dir = cgroupPath(s.name);
    if (existsSync(dir)) throw new CgroupError(`cgroup ${s.name} exists already (declared in two runs at once?)`);
    if (parents.has(s.name) && s.workers.some((w) => w.count > 0)) {
      throw new CgroupError(
        `cgroup ${s.name} has children and workers: cgroup v2 puts processes only in leaves (move its workers into a child)`,
      );
    }
    mkdirSync(dir);
    if (parents.has(s.name)) enableControllers(dir);
    if (s.cpuset !== null) write(join(dir, 'cpuset.cpus'), s.cpuset.join(','), `cgroup ${s.name} cpuset`);
    if (s.weight !== null) write(join(dir, 'cpu.weight'), String(s.weight), `cgroup ${s.name} weight`);
    if (s.max !== null) write(join(dir, 'cpu.max'), `${s.max.quotaUs} ${s.max.periodUs}`, `cgroup ${s.name} max`);
  }
}

export function setCpuset(name: string, cpus: number[]): void {
  write(join(cgroupPath(name), 'cpuset.cpus'), cpus.join(','), `cgroup ${name} cpuset`);
}

export function setWeight(name: string, weight: number): void {
  write(join(cgroupPath(name), 'cpu.weight'), String(weight), `cgroup ${name} weight`);
}

/** The CPUs the cgroup may use now (cpuset.cpus.effective); all online CPUs when unreadable. */
export function effectiveCpus(name: string, online: number[]): number[] {
  try {
    const text = readFileSync(join(cgroupPath(name), 'cpuset.cpus.effective'), 'utf8');
    const cpus = parseCpuList(text);
    return cpus.length > 0 ? cpus : online;
  } catch {
    return online;
  }
}

export function moveProcess(name: string, pid: number): void {
  write(join(cgroupPath(name), 'cgroup.procs'), String(pid), `move pid ${pid} to ${name}`);
}

/** Removes a cgroup and its descendants (they must be empty of processes); bounded depth. */
export function removeCgroup(name: string): void {
  const rm = (dir: string, depth: number): void => {
    if (depth > 16 || !existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(join(dir, e.name), depth + 1);
    try {
      rmdirSync(dir);
    } catch (e) {
      throw new CgroupError(`cannot remove cgroup ${dir}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  rm(cgroupPath(name), 0);
}

/** Removes everything below ROOT (after a run); errors are ignored (processes still exiting). */
export function removeAll(): void {
  if (!existsSync(ROOT)) return;
  for (const e of readdirSync(ROOT, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    try {
      removeCgroup(e.name);
    } catch {
      /* reported by the next run's createCgroups */
    }
  }
}
