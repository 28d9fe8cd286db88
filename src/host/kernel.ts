// The L1 kernel: Debian's linux-image-6.12.<N>+deb12-cloud-amd64-unsigned, fetched with
// `apt-get download` into the cache on first use and unpacked with `dpkg-deb -x`; only the
// kernel image, its config and the irqbypass, kvm, kvm-amd and virtio_mmio modules (decompressed) are kept.
//
// Once a kernel is cached it is used without asking apt again (offline runs work); the newest
// cached one wins. KTSTR_HOST_KERNEL_VERSION=6.12.<N>+deb12 asks for a specific version.

import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { TestHostError } from './errors.js';
import { findOnPath } from './paths.js';

const execFileP = promisify(execFile);

/** The modules L1 loads, in load order, with their path inside lib/modules/<release>/. */
export const L1_MODULES: readonly { name: string; tree: string }[] = [
  { name: 'irqbypass', tree: 'kernel/virt/lib/irqbypass.ko' },
  { name: 'kvm', tree: 'kernel/arch/x86/kvm/kvm.ko' },
  { name: 'kvm-amd', tree: 'kernel/arch/x86/kvm/kvm-amd.ko' },
  // the transport of the output port (run.ts): microvm's virtio-mmio slots, described in ACPI
  { name: 'virtio_mmio', tree: 'kernel/drivers/virtio/virtio_mmio.ko' },
];

const PACKAGE_RE = /^linux-image-(6\.12\.(\d+)\+deb12)-cloud-amd64-unsigned$/;

export interface HostKernel {
  /** Debian ABI version, e.g. "6.12.117+deb12". */
  version: string;
  /** `uname -r`, e.g. "6.12.117+deb12-cloud-amd64". */
  release: string;
  /** Cache directory holding it. */
  dir: string;
  vmlinuz: string;
  /**
   * What QEMU boots: the uncompressed vmlinux (PVH entry; saves the ~1 s the kernel spends
   * decompressing itself under TCG) when it could be extracted, else vmlinuz.
   */
  bootImage: string;
  /** Decompressed modules in load order: host file and path inside lib/modules/<release>/. */
  modules: { name: string; file: string; tree: string }[];
}

interface Manifest {
  package: string;
  version: string;
  release: string;
}

function kernelDirName(version: string): string {
  return `kernel-${version}-cloud-amd64`;
}

function patchOf(version: string): number {
  const m = /^6\.12\.(\d+)\+deb12$/.exec(version);
  return m === null ? -1 : Number(m[1]);
}

function loadCached(dir: string): HostKernel | undefined {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) return undefined;
  try {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    const kernel: HostKernel = {
      version: m.version,
      release: m.release,
      dir,
      vmlinuz: join(dir, 'vmlinuz'),
      bootImage: ensureVmlinux(dir) ?? join(dir, 'vmlinuz'),
      modules: L1_MODULES.map((mod) => ({
        name: mod.name,
        file: join(dir, 'modules', `${mod.name}.ko`),
        tree: mod.tree,
      })),
    };
    // the config too (kept since the sweep's mixed cells use this kernel as a stock, non-sched_ext
    // one): a cache entry from before is unpacked again
    if (
      !existsSync(kernel.vmlinuz) ||
      !existsSync(join(dir, 'config')) ||
      kernel.modules.some((mod) => !existsSync(mod.file))
    )
      return undefined;
    return kernel;
  } catch {
    return undefined;
  }
}

/** The newest complete cached kernel (or the one KTSTR_HOST_KERNEL_VERSION names), if any. */
export function cachedHostKernel(cacheDir: string, env: NodeJS.ProcessEnv = process.env): HostKernel | undefined {
  const wanted = env.KTSTR_HOST_KERNEL_VERSION;
  if (wanted !== undefined && wanted !== '') return loadCached(join(cacheDir, kernelDirName(wanted)));
  let best: HostKernel | undefined;
  let names: string[];
  try {
    names = readdirSync(cacheDir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    if (!name.startsWith('kernel-')) continue;
    const k = loadCached(join(cacheDir, name));
    if (k !== undefined && (best === undefined || patchOf(k.version) > patchOf(best.version))) best = k;
  }
  return best;
}

/**
 * Extracts the ELF vmlinux from a bzImage's payload (setup header fields payload_offset /
 * payload_length) when it is gzip (zlib) or zstd/xz (with the zstd / xz commands), and keeps it
 * only if it has a PVH entry note (Xen ELF note 18, XEN_ELFNOTE_PHYS32_ENTRY), which QEMU's
 * microvm needs to boot an ELF kernel. Returns its path, or undefined (then vmlinuz is booted).
 * Tried once per cached kernel: a "vmlinux.none" marker records a failure.
 */
function ensureVmlinux(dir: string): string | undefined {
  const out = join(dir, 'vmlinux');
  const none = join(dir, 'vmlinux.none');
  if (existsSync(out)) return out;
  if (existsSync(none)) return undefined;
  let elf: Buffer | undefined;
  try {
    elf = decompressPayload(readFileSync(join(dir, 'vmlinuz')));
  } catch {
    elf = undefined;
  }
  if (elf === undefined || !hasPvhNote(elf)) {
    try {
      writeFileSync(none, 'no usable PVH vmlinux in vmlinuz\n');
    } catch {
      /* read-only cache */
    }
    return undefined;
  }
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, elf);
    renameSync(tmp, out);
    return out;
  } catch {
    rmSync(tmp, { force: true });
    return undefined;
  }
}

function decompressPayload(bz: Buffer): Buffer | undefined {
  if (bz.length < 0x260 || bz.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const setupSects = bz[0x1f1] === 0 ? 4 : bz[0x1f1]!;
  const start = (setupSects + 1) * 512 + bz.readUInt32LE(0x248);
  const length = bz.readUInt32LE(0x24c);
  const payload = bz.subarray(start, start + length);
  const tool = (cmd: string, data: Buffer): Buffer | undefined => {
    const r = spawnSync(cmd, ['-d', '-c', '-q'], { input: data, maxBuffer: 1 << 30 });
    return r.status === 0 && r.stdout.length > 0 ? r.stdout : undefined;
  };
  if (payload[0] === 0x1f && payload[1] === 0x8b) return gunzipSync(payload);
  if (payload.readUInt32LE(0) === 0xfd2fb528) {
    // the kernel's zstd payload ends with the 4-byte uncompressed size, which zstd rejects
    return tool('zstd', payload.subarray(0, payload.length - 4));
  }
  if (payload[0] === 0xfd && payload.toString('latin1', 1, 6) === '7zXZ\0') return tool('xz', payload);
  return undefined;
}

/** True when `elf` (ELF64 LE) has a PT_NOTE with a "Xen" note of type 18 (PVH entry). */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (o + 56 > elf.length || elf.readUInt32LE(o) !== 4) continue; // PT_NOTE
    const off = Number(elf.readBigUInt64LE(o + 8));
    const end = Math.min(elf.length, off + Number(elf.readBigUInt64LE(o + 32)));
    let n = off;
    while (n + 12 <= end) {
      const namesz = elf.readUInt32LE(n);
      const descsz = elf.readUInt32LE(n + 4);
      const type = elf.readUInt32LE(n + 8);
      const name = elf.toString('latin1', n + 12, n + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === 18) return true;
      n += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
    }
  }
  return false;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { cwd, maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C' } });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const detail = (e.stderr ?? '')
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('W: '))
      .slice(-3)
      .join('; ');
    throw new TestHostError(`${cmd} ${args.join(' ')} failed${detail !== '' ? `: ${detail}` : ''}`, 'failed', {
      cause: err,
    });
  }
}

/** The newest linux-image-6.12.*+deb12-cloud-amd64-unsigned apt knows; runs apt-get update once if none. */
async function newestAvailableVersion(onProgress: (m: string) => void): Promise<string> {
  const search = async (): Promise<string[]> => {
    const out = await run('apt-cache', [
      'search',
      '--names-only',
      '^linux-image-6\\.12\\.[0-9]+\\+deb12-cloud-amd64-unsigned$',
    ]);
    return out
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .map((n) => PACKAGE_RE.exec(n)?.[1])
      .filter((v): v is string => v !== undefined);
  };
  let versions = await search();
  if (versions.length === 0 && process.getuid?.() === 0) {
    onProgress('apt package lists are empty; running apt-get update');
    await run('apt-get', ['update', '-qq']);
    versions = await search();
  }
  if (versions.length === 0) {
    throw new TestHostError(
      'no linux-image-6.12.*+deb12-cloud-amd64-unsigned package is known to apt: run `apt-get update` ' +
        '(needs Debian 12 bookworm or bookworm-security sources)',
      'missing',
    );
  }
  versions.sort((a, b) => patchOf(b) - patchOf(a));
  return versions[0]!;
}

/**
 * The L1 kernel, downloaded and unpacked into `cacheDir` when not cached yet.
 * Needs apt-get, dpkg-deb and xz for the first download.
 */
export async function ensureHostKernel(
  cacheDir: string,
  onProgress: (m: string) => void = () => {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<HostKernel> {
  const cached = cachedHostKernel(cacheDir, env);
  if (cached !== undefined) return cached;
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'xz']) {
    if (findOnPath(tool, env) === undefined) {
      throw new TestHostError(
        `${tool} not found: the test host downloads its kernel with apt-get (Debian) and unpacks it with dpkg-deb and xz` +
          (tool === 'xz' ? ' (apt-get install xz-utils)' : ''),
        'missing',
      );
    }
  }
  const wanted = env.KTSTR_HOST_KERNEL_VERSION;
  const version = wanted !== undefined && wanted !== '' ? wanted : await newestAvailableVersion(onProgress);
  const pkg = `linux-image-${version}-cloud-amd64-unsigned`;
  await mkdir(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `.tmp-kernel-${process.pid}-${Date.now().toString(36)}`);
  const final = join(cacheDir, kernelDirName(version));
  try {
    await mkdir(join(tmp, 'deb'), { recursive: true });
    onProgress(`downloading ${pkg} (apt-get download)`);
    // APT::Sandbox::User=root: as root, apt would otherwise try to download as _apt, which
    // cannot write into the cache directory
    const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
    await run('apt-get', [...sandbox, '-q', 'download', pkg], join(tmp, 'deb'));
    const debs = (await readdir(join(tmp, 'deb'))).filter((n) => n.endsWith('.deb'));
    if (debs.length !== 1) throw new TestHostError(`apt-get download ${pkg} left ${debs.length} .deb files`);
    await run('dpkg-deb', ['-x', join(tmp, 'deb', debs[0]!), join(tmp, 'x')]);
    const release = `${version}-cloud-amd64`;
    const out = join(tmp, 'kernel');
    await mkdir(join(out, 'modules'), { recursive: true });
    await copyFile(join(tmp, 'x', 'boot', `vmlinuz-${release}`), join(out, 'vmlinuz'));
    await copyFile(join(tmp, 'x', 'boot', `config-${release}`), join(out, 'config'));
    for (const mod of L1_MODULES) {
      const xzPath = join(tmp, 'x', 'lib', 'modules', release, `${mod.tree}.xz`);
      const plain = join(tmp, 'x', 'lib', 'modules', release, mod.tree);
      if (existsSync(xzPath)) await run('xz', ['-d', '-k', xzPath]);
      if (!existsSync(plain)) throw new TestHostError(`${pkg} has no ${mod.tree}(.xz)`);
      await copyFile(plain, join(out, 'modules', `${mod.name}.ko`));
    }
    const manifest: Manifest = { package: pkg, version, release };
    await writeFile(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await rm(final, { recursive: true, force: true });
    await rename(out, final);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const kernel = loadCached(final);
  if (kernel === undefined) throw new TestHostError(`unpacked kernel in ${final} is incomplete`);
  return kernel;
}
