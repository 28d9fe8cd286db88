// The vCPU thread of the calibration loop (guest-loop.ts): maps kvm_run, calls KVM_RUN
// until the guest halts (or something else ends the run), handles port I/O exits in JS
// through the kvm_run page, and posts a WorkerReport. It does not own the vCPU fd: the
// creating thread closes it after this thread has exited. A set stop flag plus a kick
// signal (kick.ts) ends the run early.

import { parentPort, workerData } from 'node:worker_threads';
import { KVM_EXIT, KVM_EXIT_IO_OUT } from './constants.js';
import { CTL, STATE, type WorkerInput, type WorkerMessage, type WorkerReport } from './guest-loop.js';
import { prepareVcpuThread } from './kick.js';
import { Vcpu } from './kvm.js';
import { isErrnoError } from './native.js';

function main(input: WorkerInput): WorkerReport {
  const ctl = new Int32Array(input.control);
  const vcpu = Vcpu.attach(input.vcpuFd, input.mmapSize);
  const report: WorkerReport = {
    exitReason: 0, detail: '', stopped: false, nanoseconds: 0n, kvmRuns: 0, ioExits: 0, serial: [], rip: 0n, rcx: 0n,
  };
  try {
    Atomics.store(ctl, CTL.tid, prepareVcpuThread());
    const run = vcpu.run;
    Atomics.store(ctl, CTL.state, STATE.running);
    parentPort!.postMessage({ type: 'running' } satisfies WorkerMessage);
    const t0 = process.hrtime.bigint();
    for (;;) {
      if (Atomics.load(ctl, CTL.stop) !== 0) {
        report.stopped = true;
        break;
      }
      try {
        report.kvmRuns++;
        vcpu.runOnce();
      } catch (e) {
        if (isErrnoError(e, 'EINTR') || isErrnoError(e, 'EAGAIN')) {
          report.exitReason = run.exitReason; // KVM_EXIT_INTR after a signal
          continue;
        }
        report.error = { message: (e as Error).message, code: (e as { code?: string }).code };
        break;
      }
      const reason = run.exitReason;
      report.exitReason = reason;
      if (reason === KVM_EXIT.KVM_EXIT_IO) {
        report.ioExits++;
        const io = run.io();
        const data = run.ioData(io);
        if (io.direction === KVM_EXIT_IO_OUT) {
          if (io.port === input.serialPort) report.serial.push(...data);
        } else {
          data.fill(0xff); // nothing is attached: reads float high
        }
        continue;
      }
      if (reason === KVM_EXIT.KVM_EXIT_INTR) continue;
      report.detail = run.describeExit();
      break;
    }
    report.nanoseconds = process.hrtime.bigint() - t0;
    if (report.stopped) report.detail = 'stopped by the kick signal';
    const regs = vcpu.getRegs();
    report.rip = regs.get('rip');
    report.rcx = regs.get('rcx');
  } finally {
    Atomics.store(ctl, CTL.state, STATE.done);
    vcpu.close(); // unmaps kvm_run; the fd belongs to the creating thread
  }
  return report;
}

parentPort!.postMessage({ type: 'report', report: main(workerData as WorkerInput) } satisfies WorkerMessage);
