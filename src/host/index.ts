// The emulated KVM test host ("L1"): a QEMU TCG virtual machine with an emulated AMD SVM CPU,
// so /dev/kvm works inside it where the host has no usable KVM (PVM, containers, CI runners
// without nested virtualisation). runInTestHost() runs one command inside and returns its exit
// status; testHostAvailable() says whether that can work here.

export {
  runInTestHost,
  testHostAvailable,
  qemuArgs,
  defaultCpus,
  L1_CMDLINE,
  DEFAULT_MEMORY_MIB,
  DEFAULT_TIMEOUT_MS,
  TIMEOUT_EXIT_CODE,
  type RunInTestHostOptions,
  type TestHostResult,
  type TestHostAvailability,
} from './run.js';
export {
  ensureImage,
  findHostTools,
  findProjectDir,
  type ImageOptions,
  type TestHostImage,
  type HostTools,
} from './image.js';
export { ensureHostKernel, cachedHostKernel, type HostKernel } from './kernel.js';
export { guestEnvironment, DEFAULT_KEPT_ENV } from './env.js';
export { TestHostError, INSTALL_HINT, type TestHostErrorKind } from './errors.js';
export { cacheRoot, hostCacheDir, defaultKernelsDir } from './paths.js';
