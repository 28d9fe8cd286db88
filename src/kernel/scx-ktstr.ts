// Builds scx-ktstr, the project's fixture scheduler (scx-ktstr/: BPF C, a C loader, a
// Makefile), against one kernel's vmlinux BTF, and says where a built copy lives: in a kernel
// cache entry (schedulers/scx_ktstr) or, for the tests, under build/scx-ktstr/<label>/.
// It lives with the kernel code because a kernel build (build.ts) builds it into the entry;
// src/scheduler (the registry) sits above src/kernel and may import it from here.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';

export const SCX_KTSTR_BINARY = 'scx_ktstr';

/** The scheduler's source folder in the package. */
export function scxKtstrSourceDir(): string {
  return join(packageRoot(), 'scx-ktstr');
}

/** Where the tests build scx-ktstr for the kernel labelled `label`. */
export function scxKtstrTestBuildDir(label: string): string {
  return join(packageRoot(), 'build', 'scx-ktstr', label);
}

export interface BuildScxKtstrOptions {
  /** The kernel's vmlinux (its .BTF section is all the build reads). */
  vmlinux: string;
  /** Output directory: vmlinux.h, the BPF object, the skeleton and the scx_ktstr binary. */
  outDir: string;
  /** make's output (both streams), as it comes. */
  onOutput?: (chunk: Buffer) => void;
  clang?: string;
}

export class SchedulerBuildError extends Error {}

/** Runs `make -C scx-ktstr VMLINUX=... O=...`; resolves to the binary's path. */
export function buildScxKtstr(o: BuildScxKtstrOptions): Promise<string> {
  if (!existsSync(o.vmlinux))
    return Promise.reject(
      new SchedulerBuildError(`${o.vmlinux}: no such file (scx-ktstr needs the kernel's vmlinux for its BTF)`),
    );
  mkdirSync(o.outDir, { recursive: true });
  const args = ['-C', scxKtstrSourceDir(), `VMLINUX=${o.vmlinux}`, `O=${o.outDir}`];
  if (o.clang) args.push(`CLANG=${o.clang}`);
  return new Promise((resolve, reject) => {
    const child = spawn('make', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const take = (d: Buffer): void => {
      tail = (tail + d.toString('utf8')).slice(-4000);
      o.onOutput?.(d);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('error', (e) => reject(new SchedulerBuildError(`make: ${e.message} (apt-get install make)`)));
    child.once('close', (code) => {
      const bin = join(o.outDir, SCX_KTSTR_BINARY);
      if (code === 0 && existsSync(bin)) resolve(bin);
      else
        reject(
          new SchedulerBuildError(
            `building scx-ktstr failed (make exit ${code}); needs clang-16, llvm-16, bpftool, libbpf-dev, libelf-dev, zlib1g-dev\n${tail}`,
          ),
        );
    });
  });
}
