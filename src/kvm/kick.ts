// Interrupting a thread that is blocked in KVM_RUN. KVM returns to userspace (EINTR,
// exit reason KVM_EXIT_INTR) when a signal is pending for the vCPU thread, so the VMM
// installs a no-op handler for one real-time signal (without SA_RESTART, so the ioctl is not
// restarted), the vCPU thread unblocks it and publishes its thread id, and another thread
// sends it with tgkill. A kick that lands just before the thread enters KVM_RUN is lost, so
// callers pair it with a stop flag checked before each KVM_RUN and repeat the kick until
// the vCPU thread acknowledges.

import { native } from './native.js';

/**
 * Offset of the kick signal above SIGRTMIN (glibc has already reserved the real-time signals
 * below SIGRTMIN; the offset keeps clear of libraries that take SIGRTMIN itself).
 */
export const KICK_SIGNAL_OFFSET = 3;

/** The kick signal number (SIGRTMIN + 3: 37 with glibc). */
export function kickSignal(): number {
  return native().constants.SIGRTMIN + KICK_SIGNAL_OFFSET;
}

let installed = false;

/** Installs the process-wide no-op handler for the kick signal (once; any thread may call it). */
export function installKickHandler(): number {
  const sig = kickSignal();
  if (!installed) {
    native().setNoopSignalHandler(sig);
    installed = true;
  }
  return sig;
}

/** Called on the vCPU thread before it runs: unblocks the kick signal and returns the thread id. */
export function prepareVcpuThread(): number {
  const n = native();
  installKickHandler();
  n.unblockSignal(kickSignal());
  return n.gettid();
}

/** Sends the kick signal to a vCPU thread. False when that thread no longer exists. */
export function kick(tid: number): boolean {
  try {
    native().tgkill(tid, kickSignal());
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'ESRCH') return false;
    throw e;
  }
}
