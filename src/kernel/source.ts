// Where a kernel build's source comes from: a tree (--source DIR), a tarball (--source
// FILE.tar.xz), or by default Debian's linux-source-<version> package
// (/usr/src/linux-source-<version>.tar.xz). Also the build prerequisites: which host tools
// and headers are missing and which Debian packages provide them.

import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findOnPath } from '../paths.js';
import type { KernelSourceInfo } from './cache.js';

import { DEFAULT_KERNEL_SERIES } from './defaults.js';
import { UsageError } from '../errors.js';
export { DEFAULT_KERNEL_SERIES };

export type SourceSpec =
  | { kind: 'tree'; path: string }
  | { kind: 'tarball'; path: string }
  | { kind: 'debian-package'; package: string; tarball: string; series: string };

export class SourceError extends UsageError {}

/** The Debian package and tarball for a series ("6.12" -> linux-source-6.12). */
export function debianSource(series: string): SourceSpec {
  if (!/^\d+\.\d+$/.test(series)) throw new SourceError(`--version takes a kernel series like 6.12, not '${series}'`);
  return {
    kind: 'debian-package',
    package: `linux-source-${series}`,
    tarball: `/usr/src/linux-source-${series}.tar.xz`,
    series,
  };
}

/** --source DIR|TARBALL, or the Debian package of `series`. */
export function sourceSpec(source: string | undefined, series = DEFAULT_KERNEL_SERIES): SourceSpec {
  if (source === undefined) return debianSource(series);
  const path = resolve(source);
  let st;
  try {
    st = statSync(path);
  } catch {
    st = undefined;
  }
  if (st === undefined) throw new SourceError(`${source}: no such file or directory`);
  if (st.isDirectory()) {
    if (!existsSync(join(path, 'Makefile')) || !existsSync(join(path, 'Kconfig'))) {
      throw new SourceError(`${source}: not a kernel source tree (no top-level Makefile and Kconfig)`);
    }
    return { kind: 'tree', path };
  }
  if (!/\.tar(\.(xz|gz|bz2|zst))?$|\.tgz$/.test(path))
    throw new SourceError(`${source}: expected a kernel tree or a .tar[.xz|.gz|.bz2|.zst] tarball`);
  return { kind: 'tarball', path };
}

/** The installed version of a Debian package, or undefined. */
export function debianPackageVersion(pkg: string): string | undefined {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status} ${Version}', pkg], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const m = /^install ok installed (\S+)/.exec(r.stdout);
  return m?.[1];
}

export function sourceInfo(s: SourceSpec): KernelSourceInfo {
  if (s.kind === 'debian-package')
    return { kind: s.kind, path: s.tarball, package: s.package, packageVersion: debianPackageVersion(s.package) };
  return { kind: s.kind, path: s.path };
}

interface Requirement {
  what: string;
  package: string;
  present: () => boolean;
}

const tool = (name: string, pkg: string): Requirement => ({
  what: name,
  package: pkg,
  present: () => findOnPath(name) !== undefined,
});
const header = (path: string, pkg: string): Requirement => ({
  what: path,
  package: pkg,
  present: () => existsSync(path),
});

/** What a kernel build needs (kernel proper), with the Debian package providing each. */
export const KERNEL_BUILD_REQUIREMENTS: Requirement[] = [
  tool('make', 'make'),
  tool('gcc', 'gcc'),
  tool('flex', 'flex'),
  tool('bison', 'bison'),
  tool('bc', 'bc'),
  tool('perl', 'perl'),
  tool('pahole', 'dwarves'),
  tool('objcopy', 'binutils'),
  tool('xz', 'xz-utils'),
  header('/usr/include/libelf.h', 'libelf-dev'),
  header('/usr/include/openssl/ssl.h', 'libssl-dev'),
];

/** What the schedulers (tools/sched_ext and scx-ktstr) need in addition. */
export const SCHEDULER_BUILD_REQUIREMENTS: Requirement[] = [
  tool('clang-16', 'clang-16'),
  tool('llvm-strip-16', 'llvm-16'),
  tool('bpftool', 'bpftool'),
  header('/usr/include/bpf/libbpf.h', 'libbpf-dev'),
  header('/usr/include/zlib.h', 'zlib1g-dev'),
];

/** Debian packages to install before building: missing tools and headers, and the source package. */
export function missingPackages(s: SourceSpec, withSchedulers: boolean): { packages: string[]; missing: string[] } {
  const reqs = [...KERNEL_BUILD_REQUIREMENTS, ...(withSchedulers ? SCHEDULER_BUILD_REQUIREMENTS : [])];
  const missing: string[] = [];
  const packages = new Set<string>();
  for (const r of reqs) {
    if (!r.present()) {
      missing.push(r.what);
      packages.add(r.package);
    }
  }
  if (s.kind === 'debian-package' && !existsSync(s.tarball)) {
    missing.push(s.tarball);
    packages.add(s.package);
  }
  return { packages: [...packages].sort(), missing };
}

/** The command that installs `packages` (with sudo when not root). */
export function aptInstallCommand(packages: string[]): string[] {
  const base = ['apt-get', 'install', '-y', '--no-install-recommends', ...packages];
  return process.getuid?.() === 0 ? base : ['sudo', ...base];
}
