// Loads the thin syscall binding (native/, built by node-gyp at `npm install`) with a typed
// interface. The binding does syscalls only; everything KVM-specific is in src/kvm.
// It is context-aware, so this module can be imported from worker threads too.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Constants the binding takes from the C headers of the machine it was built on. */
export interface NativeConstants {
  readonly O_RDONLY: number;
  readonly O_WRONLY: number;
  readonly O_RDWR: number;
  readonly O_CLOEXEC: number;
  readonly O_NONBLOCK: number;
  readonly PROT_NONE: number;
  readonly PROT_READ: number;
  readonly PROT_WRITE: number;
  readonly MAP_SHARED: number;
  readonly MAP_PRIVATE: number;
  readonly MAP_ANONYMOUS: number;
  readonly MADV_HUGEPAGE: number;
  readonly MADV_DONTNEED: number;
  readonly EFD_CLOEXEC: number;
  readonly EFD_NONBLOCK: number;
  readonly EFD_SEMAPHORE: number;
  readonly SIGRTMIN: number;
  readonly SIGRTMAX: number;
  readonly PAGE_SIZE: number;
  /** 0: the default (fair) policy. */
  readonly SCHED_OTHER: number;
  /** 7: sched_ext's policy; sched_setattr takes it only on a kernel with sched_ext (EINVAL elsewhere). */
  readonly SCHED_EXT: number;
}

/** What ioctl accepts as its third argument: a number or bigint is passed as is, a view as its data pointer. */
export type IoctlArg = number | bigint | ArrayBufferView;

/** The binding's exports (native/src/binding.cc). Failing calls throw an {@link ErrnoError}. */
export interface NativeBinding {
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): void;
  /**
   * ioctl(2), issued again when a signal interrupts it (EINTR; e.g. KVM_CREATE_VM under a
   * profiler's SIGPROF). A view must be at least as long as an _IOC-encoded request's size
   * (RangeError otherwise).
   */
  ioctl(fd: number, request: number, arg?: IoctlArg): number;
  /** ioctl(2) that reports EINTR (an ErrnoError) instead: KVM_RUN, which a kick must end. */
  ioctlInterruptible(fd: number, request: number, arg?: IoctlArg): number;
  /** mmap(2) as an ArrayBuffer that owns the mapping (unmapped when collected or by munmap). */
  mmap(fd: number, length: number, prot: number, flags: number, offset: number): ArrayBuffer;
  /** Unmaps a buffer from mmap at once and detaches it (byteLength 0). A detached buffer is ignored. */
  munmap(buffer: ArrayBuffer): void;
  /** Address of the backing store of a SharedArrayBuffer (e.g. shared WebAssembly memory) or ArrayBuffer. */
  sharedBufferAddress(buffer: SharedArrayBuffer | ArrayBuffer): bigint;
  eventfd(initval: number, flags: number): number;
  /** madvise(2) on [offset, offset + length) of a buffer's backing store (start rounded down to a page). */
  madvise(buffer: SharedArrayBuffer | ArrayBuffer, offset: number, length: number, advice: number): void;
  /** The calling CPU's time-stamp counter (x86-64; 0n elsewhere). */
  rdtsc(): bigint;
  /** Kernel thread id of the calling thread. */
  gettid(): number;
  /** Sends a signal to one thread of this process. */
  tgkill(tid: number, signal: number): void;
  /** Process-wide no-op handler without SA_RESTART: a blocking syscall on the receiving thread returns EINTR. */
  setNoopSignalHandler(signal: number): void;
  /** Removes a signal from the calling thread's signal mask. */
  unblockSignal(signal: number): void;
  /** sched_setattr(2) of thread `tid` (0: the caller) to `policy` (7 = SCHED_EXT on sched_ext kernels) and `nice`. */
  schedSetattr(tid: number, policy: number, nice?: number): void;
  /** The scheduling policy of thread `tid` (sched_getattr(2)). */
  schedGetPolicy(tid: number): number;
  schedSetaffinity(tid: number, cpus: number[]): void;
  schedGetaffinity(tid: number): number[];
  /** CPU time of the calling thread, ns (CLOCK_THREAD_CPUTIME_ID). */
  threadCpuTimeNs(): bigint;
  /** bpf(2): `attr`'s data pointer and byte length; returns the syscall's result (an fd for some commands). */
  bpf(cmd: number, attr: ArrayBufferView): number;
  /** clock_settime(CLOCK_REALTIME) to `ms` since the epoch (whole ms). */
  setRealtimeMs(ms: number): void;
  readonly constants: NativeConstants;
}

/** A failed syscall: `code` is the errno name ('EINVAL'), `errno` the positive number. */
export interface ErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

/** True when `e` is an error from the binding (optionally with the given errno name). */
export function isErrnoError(e: unknown, code?: string): e is ErrnoError {
  return (
    e instanceof Error &&
    typeof (e as Partial<ErrnoError>).code === 'string' &&
    typeof (e as Partial<ErrnoError>).syscall === 'string' &&
    (code === undefined || (e as ErrnoError).code === code)
  );
}

export const ADDON_NAME = 'ktstr_native.node';

/** Where the built addon is looked for: $KTSTR_NATIVE_ADDON, else native/build/{Release,Debug} above this file. */
export function addonCandidates(): string[] {
  const fromEnv = process.env.KTSTR_NATIVE_ADDON;
  if (fromEnv) return [fromEnv];
  const out: string[] = [];
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    out.push(join(dir, 'native', 'build', 'Release', ADDON_NAME), join(dir, 'native', 'build', 'Debug', ADDON_NAME));
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return out;
}

let cached: NativeBinding | undefined;

/** The binding, loaded once per thread. Throws a clear error when it has not been built. */
export function native(): NativeBinding {
  if (cached !== undefined) return cached;
  const candidates = addonCandidates();
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) {
    throw new Error(
      `ktstr-wasm native binding is not built (looked for ${candidates.slice(0, 2).join(', ')}, ...). ` +
        'Build it with `npm install` (runs `node-gyp rebuild -C native`; needs g++, make, python3 and the Node headers), ' +
        'or point KTSTR_NATIVE_ADDON at a built ktstr_native.node.',
    );
  }
  const require = createRequire(import.meta.url);
  try {
    cached = require(path) as NativeBinding;
  } catch (e) {
    throw new Error(
      `ktstr-wasm native binding ${path} failed to load (rebuild it with \`npm rebuild\`): ${(e as Error).message}`,
    );
  }
  return cached;
}
