// The L1 initramfs: two concatenated cpio (newc) archives, uncompressed (decompressing under
// TCG is slow).
//
//   base     /init, busybox, the L1 kernel modules, node and qemu-system-x86_64 with their
//            shared-library closures, QEMU's x86 firmware, the prebuilt test kernels
//            (../shared/kernels) - cached as base-<key>.cpio
//   project  the project tree without .git at the same absolute path, extra shared
//            directories, and the libraries native addons (*.node) need beyond the base
//
// The image QEMU loads is base + project in one file, image-<project>-<key>.cpio. Keys hash the
// inputs' paths, sizes, modes and mtimes (and the builder version), so an unchanged tree reuses
// the image and any change rebuilds it. Only the newest base and the newest image per project
// are kept.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import {
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CpioWriter, FileSink, type CpioSink } from '../guest/cpio.js';
import { ElfError, sharedLibraryClosure } from '../guest/elf-deps.js';
import { INSTALL_HINT, TestHostError } from './errors.js';
import { L1_PATH } from './env.js';
import { initScript } from './init-script.js';
import { ensureHostKernel, type HostKernel } from './kernel.js';
import { defaultKernelsDir, findOnPath, hostCacheDir } from './paths.js';

/** Bump when the image layout or /init changes in a way the key does not see. */
const BUILDER_VERSION = 'ktstr-host-image-2';
/**
 * The image's length is padded with zeros to a multiple of this. QEMU places the initrd with
 * its end just below the top it allows (the start rounded down to a page): an image whose
 * length is a few bytes short of a page multiple ends within ~550 bytes of that top, and L1
 * then hangs right after "ACPI: Core revision" (QEMU 10 microvm; seen for lengths 3572, 3632
 * and 3756 bytes past a page multiple, never for 64 to 2412). Padded, the end is a whole page
 * below it. The kernel's unpacker skips zeros between and after archives.
 */
export const IMAGE_ALIGN = 4096;
const MAX_PROJECT_BYTES = 4 * 1024 ** 3;
/**
 * Packages that only build or lint the project (TypeScript, AssemblyScript and binaryen,
 * Prettier, ESLint, dependency-cruiser, type declarations): nothing runs them inside L1, so
 * they are always left out of the project tree — about half of node_modules.
 */
export const BUILD_ONLY_PATHS: readonly string[] = [
  'node_modules/typescript',
  'node_modules/assemblyscript',
  'node_modules/binaryen',
  'node_modules/prettier',
  'node_modules/eslint',
  'node_modules/@eslint',
  'node_modules/typescript-eslint',
  'node_modules/@typescript-eslint',
  'node_modules/dependency-cruiser',
  'node_modules/@types',
];
const STALE_TMP_MS = 3600_000;

/** QEMU firmware files (in its data directory) copied for x86 machines. */
const QEMU_FIRMWARE_RE = /^(bios|qboot|kvmvapic|linuxboot|multiboot|pvh|sgabios|vgabios).*\.(bin|rom)$/;

export interface ImageOptions {
  /** Default hostCacheDir(). */
  cacheDir?: string;
  /** Copied to the same absolute path; undefined: no project tree. */
  projectDir?: string;
  /** More host directories copied to the same absolute paths (per-project part). */
  shareDirs?: readonly string[];
  /** Paths inside projectDir left out (relative, e.g. "node_modules/binaryen"); .git always is. */
  exclude?: readonly string[];
  /** Prebuilt kernels directory put in the base; default defaultKernelsDir(); null: none. */
  kernelsDir?: string | null;
  env?: NodeJS.ProcessEnv;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
}

export interface TestHostImage {
  /** The initramfs to give QEMU. */
  path: string;
  kernel: HostKernel;
  /** qemu-system-x86_64 and node as found on the host (same paths inside L1). */
  qemu: string;
  node: string;
  bytes: number;
  baseBytes: number;
  /** True when the whole image came from the cache. */
  cached: boolean;
  baseCached: boolean;
  /** Wall time spent in ensureImage (fingerprinting included). */
  seconds: number;
}

/** The tools the test host needs on the host, or a TestHostError('missing'). */
export interface HostTools {
  qemu: string;
  busybox: string;
  node: string;
  firmwareDirs: string[];
}

export function findHostTools(env: NodeJS.ProcessEnv = process.env): HostTools {
  const qemu = findOnPath('qemu-system-x86_64', env);
  if (qemu === undefined) {
    throw new TestHostError(
      `qemu-system-x86_64 not found: install it with \`apt-get install qemu-system-x86\` (all the test host needs: \`${INSTALL_HINT}\`)`,
      'missing',
    );
  }
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p)) ?? findOnPath('busybox', env);
  if (busybox === undefined) {
    throw new TestHostError('busybox not found: install it with `apt-get install busybox-static`', 'missing');
  }
  const qemuBin = dirname(realpathSync(qemu));
  const firmwareDirs = [resolve(qemuBin, '..', 'share', 'qemu'), resolve(qemuBin, '..', 'share', 'seabios')].filter(
    (d) => existsSync(d),
  );
  if (!firmwareDirs.some((d) => existsSync(join(d, 'bios-microvm.bin')))) {
    throw new TestHostError(
      `QEMU's microvm firmware (bios-microvm.bin) not found in ${resolve(qemuBin, '..', 'share', 'qemu')}: reinstall qemu-system-x86 / qemu-system-data`,
      'missing',
    );
  }
  return { qemu, busybox, node: process.execPath, firmwareDirs };
}

/** sha256 accumulating "path size mode mtime [link target]" lines. */
class Fingerprint {
  private readonly hash = createHash('sha256');
  bytes = 0;

  line(text: string): void {
    this.hash.update(text + '\n');
  }

  path(p: string): void {
    try {
      const st = lstatSync(p);
      const link = st.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : '';
      this.line(`${p} ${st.size} ${st.mode.toString(8)} ${Math.floor(st.mtimeMs)}${link}`);
      if (st.isFile()) this.bytes += st.size;
    } catch {
      this.line(`${p} missing`);
    }
  }

  /** Every path under `dir` (sorted), pruning excluded ones. */
  tree(dir: string, exclude?: (p: string) => boolean): void {
    this.path(dir);
    let names: string[];
    try {
      if (!lstatSync(dir).isDirectory()) return;
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(dir, name);
      if (exclude?.(p) === true) continue;
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (st.isDirectory()) this.tree(p, exclude);
      else this.path(p);
    }
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Symlinks of a merged-/usr root (/bin -> usr/bin ...) reproduced in the image. */
const ROOT_LINKS = ['/bin', '/sbin', '/lib', '/lib64'];

interface BasePlan {
  key: string;
  tools: HostTools;
  kernel: HostKernel;
  kernelsDir: string | undefined;
  closure: string[];
  firmware: string[];
  init: string;
  modules: string[];
}

function planBase(tools: HostTools, kernel: HostKernel, kernelsDir: string | undefined): BasePlan {
  let closure: string[];
  try {
    const c = sharedLibraryClosure([tools.busybox, tools.node, tools.qemu]);
    if (c.missing.length > 0) {
      throw new TestHostError(
        `shared libraries not found: ${c.missing.map((m) => `${m.name} (needed by ${m.neededBy})`).join(', ')}`,
      );
    }
    closure = c.files;
  } catch (err) {
    if (err instanceof ElfError) throw new TestHostError(err.message, 'failed', { cause: err });
    throw err;
  }
  const firmware: string[] = [];
  for (const dir of tools.firmwareDirs) {
    for (const name of readdirSync(dir).sort()) {
      if (QEMU_FIRMWARE_RE.test(name) && statSync(join(dir, name), { throwIfNoEntry: false })?.isFile() === true) {
        firmware.push(join(dir, name));
      }
    }
  }
  const modules = kernel.modules.map((m) => `/usr/lib/modules/${kernel.release}/${m.tree}`);
  const extraPath = [dirname(tools.node), dirname(tools.qemu)].filter((d) => !L1_PATH.split(':').includes(d));
  const init = initScript({ modules, path: [L1_PATH, ...new Set(extraPath)].join(':') });
  const fp = new Fingerprint();
  fp.line(BUILDER_VERSION);
  fp.line(init);
  fp.line(`kernel ${kernel.version}`);
  for (const m of kernel.modules) fp.path(m.file);
  for (const p of ROOT_LINKS) fp.path(p);
  for (const p of closure) fp.path(realpathSync(p));
  for (const p of closure) fp.line(p);
  for (const p of firmware) fp.path(p);
  if (kernelsDir !== undefined) fp.tree(kernelsDir);
  return {
    key: fp.digest().slice(0, 20),
    tools,
    kernel,
    kernelsDir,
    closure,
    firmware,
    init,
    modules,
  };
}

const ETC_FILES: Record<string, string> = {
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  '/etc/group': 'root:x:0:\nnogroup:x:65534:\n',
  '/etc/hosts': '127.0.0.1\tlocalhost ktstr-host\n::1\tlocalhost ip6-localhost ip6-loopback\n',
  '/etc/hostname': 'ktstr-host\n',
  '/etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
};

class AbortableSink implements CpioSink {
  constructor(
    private readonly inner: CpioSink,
    private readonly signal: AbortSignal | undefined,
  ) {}

  write(chunk: Uint8Array): Promise<void> | void {
    if (this.signal?.aborted === true) throw new TestHostError('image build aborted', 'aborted');
    return this.inner.write(chunk);
  }
}

async function writeBase(plan: BasePlan, target: string, signal: AbortSignal | undefined): Promise<string[]> {
  const handle = await open(target, 'w');
  try {
    const sink = new FileSink(handle);
    const w = new CpioWriter(new AbortableSink(sink, signal));
    for (const p of ROOT_LINKS) {
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (st?.isSymbolicLink() === true) {
        const target = readlinkSync(p);
        await w.symlink(p, target);
        // the target directory must exist too (busybox --install puts links there)
        await w.directory(resolve(dirname(p), target), { mode: 0o755 });
      }
    }
    for (const [p, mode] of [
      ['/proc', 0o555],
      ['/sys', 0o555],
      ['/dev', 0o755],
      ['/tmp', 0o1777],
      ['/run', 0o755],
      ['/root', 0o700],
      ['/etc', 0o755],
      ['/mnt', 0o755],
      ['/home', 0o755],
      ['/var/tmp', 0o1777],
    ] as const) {
      await w.directory(p, { mode });
    }
    await w.charDevice('/dev/console', 5, 1, { mode: 0o600 });
    await w.charDevice('/dev/null', 1, 3, { mode: 0o666 });
    for (const [p, text] of Object.entries(ETC_FILES)) await w.file(p, text);
    await w.hostPath(plan.tools.busybox);
    if (realpathSync(plan.tools.busybox) !== (existsSync('/bin/busybox') ? realpathSync('/bin/busybox') : '')) {
      await w.hostFile('/bin/busybox', plan.tools.busybox);
    }
    await w.file('/init', plan.init, { mode: 0o755 });
    for (let i = 0; i < plan.modules.length; i++) {
      await w.hostFile(plan.modules[i]!, plan.kernel.modules[i]!.file, { mode: 0o644 });
    }
    for (const p of plan.closure) await w.hostPath(p);
    for (const p of plan.firmware) await w.hostPath(p);
    if (plan.kernelsDir !== undefined) await w.hostTree(plan.kernelsDir);
    await w.finish();
    await sink.flush();
    return w.paths();
  } finally {
    await handle.close();
  }
}

interface ProjectPlan {
  key: string;
  id: string;
  projectDir: string | undefined;
  shareDirs: string[];
  exclude: string[];
  bytes: number;
}

function planProject(
  baseKey: string,
  projectDir: string | undefined,
  shareDirs: readonly string[],
  excluded: readonly string[],
): ProjectPlan {
  const fp = new Fingerprint();
  fp.line(BUILDER_VERSION);
  fp.line(baseKey);
  fp.line(JSON.stringify(excluded));
  const exclude = projectDir === undefined ? undefined : projectExclude(projectDir, excluded);
  if (projectDir !== undefined) fp.tree(projectDir, exclude);
  for (const d of shareDirs) fp.tree(d);
  if (fp.bytes > MAX_PROJECT_BYTES) {
    throw new TestHostError(
      `the project tree ${projectDir ?? ''} holds ${(fp.bytes / 1024 ** 3).toFixed(1)} GiB: too large to copy into the test host (limit 4 GiB)`,
    );
  }
  const id = createHash('sha256')
    .update(JSON.stringify([projectDir, shareDirs]))
    .digest('hex')
    .slice(0, 12);
  return {
    key: fp.digest().slice(0, 20),
    id,
    projectDir,
    shareDirs: [...shareDirs],
    exclude: [...excluded],
    bytes: fp.bytes,
  };
}

function projectExclude(projectDir: string, excluded: readonly string[]): (p: string) => boolean {
  const paths = new Set([join(projectDir, '.git'), ...excluded.map((e) => resolve(projectDir, e))]);
  return (p) => paths.has(p);
}

async function appendProject(
  plan: ProjectPlan,
  target: string,
  position: number,
  basePaths: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const handle = await open(target, 'r+');
  try {
    const sink = new FileSink(handle, position);
    const w = new CpioWriter(new AbortableSink(sink, signal), { firstInode: 5_000_000 });
    const addons: string[] = [];
    const onFile = (p: string): void => {
      if (p.endsWith('.node')) addons.push(p);
    };
    if (plan.projectDir !== undefined) {
      const exclude = projectExclude(plan.projectDir, plan.exclude);
      await w.hostTree(plan.projectDir, { exclude: (p) => exclude(p), onFile });
    }
    for (const d of plan.shareDirs) await w.hostTree(d, { onFile });
    for (const addon of addons) {
      let libs: string[];
      try {
        libs = sharedLibraryClosure([addon]).libraries.map((l) => l.path);
      } catch {
        continue; // not an ELF object after all
      }
      // the base holds every library at its real path
      for (const lib of libs) if (!basePaths.has(realpathSync(lib))) await w.hostPath(lib);
    }
    await w.finish();
    await sink.flush();
  } finally {
    await handle.close();
  }
}

async function removeStale(cacheDir: string, keep: (name: string) => boolean): Promise<void> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return;
  }
  for (const name of names) {
    const p = join(cacheDir, name);
    if (name.startsWith('.tmp-')) {
      const st = await stat(p).catch(() => undefined);
      if (st !== undefined && Date.now() - st.mtimeMs > STALE_TMP_MS) await rm(p, { recursive: true, force: true });
      continue;
    }
    if ((name.startsWith('base-') || name.startsWith('image-')) && !keep(name)) await unlink(p).catch(() => {});
  }
}

function tmpName(cacheDir: string, what: string): string {
  return join(cacheDir, `.tmp-${what}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * The nearest ancestor of `cwd` (or `cwd`) holding package.json or .git; otherwise `cwd` itself,
 * unless that is / or the home directory (then no project tree is copied).
 */
export function findProjectDir(cwd: string): string | undefined {
  let dir = resolve(cwd);
  for (;;) {
    if (existsSync(join(dir, 'package.json')) || existsSync(join(dir, '.git'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  const c = resolve(cwd);
  return c === '/' || c === homedir() ? undefined : c;
}

/** Builds the L1 initramfs, or finds it in the cache. */
export async function ensureImage(options: ImageOptions = {}): Promise<TestHostImage> {
  const started = performance.now();
  const env = options.env ?? process.env;
  const progress = options.onProgress ?? (() => {});
  const cacheDir = options.cacheDir ?? hostCacheDir(env);
  const tools = findHostTools(env);
  const kernel = await ensureHostKernel(cacheDir, progress, env);
  const kernelsDir = options.kernelsDir === null ? undefined : (options.kernelsDir ?? defaultKernelsDir(env));
  const projectDir = options.projectDir === undefined ? undefined : resolve(options.projectDir);
  const shareDirs = (options.shareDirs ?? [])
    .map((d) => resolve(d))
    .filter((d) => d !== kernelsDir && d !== projectDir);

  const base = planBase(tools, kernel, kernelsDir);
  const project = planProject(base.key, projectDir, shareDirs, [...BUILD_ONLY_PATHS, ...(options.exclude ?? [])]);
  const basePath = join(cacheDir, `base-${base.key}.cpio`);
  const baseManifest = join(cacheDir, `base-${base.key}.json`);
  const imagePath = join(cacheDir, `image-${project.id}-${project.key}.cpio`);
  await mkdir(cacheDir, { recursive: true });

  const result = (cached: boolean, baseCached: boolean, bytes: number, baseBytes: number): TestHostImage => ({
    path: imagePath,
    kernel,
    qemu: tools.qemu,
    node: tools.node,
    bytes,
    baseBytes,
    cached,
    baseCached,
    seconds: (performance.now() - started) / 1000,
  });

  const existing = await stat(imagePath).catch(() => undefined);
  const baseSt = await stat(basePath).catch(() => undefined);
  if (existing !== undefined) {
    // the image is self-contained (its key covers the base's)
    const now = new Date();
    await utimes(imagePath, now, now).catch(() => {});
    return result(true, baseSt !== undefined, existing.size, baseSt?.size ?? 0);
  }

  let baseCached = baseSt !== undefined && existsSync(baseManifest);
  let basePaths: string[];
  if (baseCached) {
    basePaths = JSON.parse(await readFile(baseManifest, 'utf8')) as string[];
  } else {
    progress(
      `building the test host base image (busybox, node, qemu, kvm modules${kernelsDir !== undefined ? `, ${kernelsDir}` : ''})`,
    );
    const tmp = tmpName(cacheDir, 'base');
    try {
      basePaths = await writeBase(base, tmp, options.signal);
      await writeFile(`${tmp}.json`, JSON.stringify(basePaths));
      await rename(`${tmp}.json`, baseManifest);
      await rename(tmp, basePath);
    } finally {
      await rm(tmp, { force: true });
      await rm(`${tmp}.json`, { force: true });
    }
    baseCached = false;
  }
  const baseBytes = (await stat(basePath)).size;

  if (projectDir !== undefined) progress(`copying ${projectDir} into the test host image`);
  const tmp = tmpName(cacheDir, 'image');
  try {
    await copyFile(basePath, tmp);
    await appendProject(project, tmp, baseBytes, new Set(basePaths), options.signal);
    const length = (await stat(tmp)).size;
    await truncate(tmp, Math.ceil(length / IMAGE_ALIGN) * IMAGE_ALIGN);
    await rename(tmp, imagePath);
  } finally {
    await rm(tmp, { force: true });
  }
  const bytes = (await stat(imagePath)).size;
  const baseName = `base-${base.key}`;
  const imagePrefix = `image-${project.id}-`;
  const imageName = `image-${project.id}-${project.key}.cpio`;
  await removeStale(
    cacheDir,
    (name) =>
      name.startsWith(baseName) || (name.startsWith('image-') && (!name.startsWith(imagePrefix) || name === imageName)),
  );
  await removeOldImages(cacheDir, imageName);
  return result(false, baseCached, bytes, baseBytes);
}

/** Images of other projects (other checkouts) kept at most: each is a few hundred MB. */
export const OTHER_IMAGES_KEPT = 2;

/**
 * Images of other projects go when unused for two weeks, and beyond the OTHER_IMAGES_KEPT
 * most recently used (a clone per CI run or branch would otherwise pile up gigabytes).
 */
export async function removeOldImages(cacheDir: string, current: string, now = Date.now()): Promise<void> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  const others: Array<{ name: string; used: number }> = [];
  for (const name of names) {
    if (!name.startsWith('image-') || name === current) continue;
    const st = await stat(join(cacheDir, name)).catch(() => undefined);
    if (st !== undefined) others.push({ name, used: st.mtimeMs });
  }
  others.sort((a, b) => b.used - a.used);
  for (const [i, o] of others.entries()) {
    if (i >= OTHER_IMAGES_KEPT || now - o.used > 14 * 86400_000) await unlink(join(cacheDir, o.name)).catch(() => {});
  }
}
