// The vCPU's kvm_run page (mmapped from the vCPU fd): the in/out header and the exit
// union members a VMM reads after KVM_RUN returns -- I/O port and MMIO exits, entry
// failures, internal errors, system events -- decoded into one discriminated union
// (VcpuExit, what a run loop switches on), plus a one-line description of any exit.

import { exitReasonName, KVM_EXIT, KVM_EXIT_IO_OUT, KVM_INTERNAL_ERROR } from './constants.js';
import { KVM_RUN } from './layout.js';

const R = KVM_RUN.offsets;

export interface IoExit {
  /** KVM_EXIT_IO_IN (0) or KVM_EXIT_IO_OUT (1). */
  direction: number;
  /** Bytes per access: 1, 2 or 4. */
  size: number;
  port: number;
  /** Accesses (more than 1 for rep ins/outs). */
  count: number;
  /** Offset of the data (size * count bytes) from the start of the kvm_run page. */
  dataOffset: number;
}

export interface MmioExit {
  physAddr: bigint;
  len: number;
  isWrite: boolean;
}

export interface InternalErrorExit {
  suberror: number;
  data: bigint[];
}

/** KVM_EXIT_DEBUG: the exception (1: #DB, 3: #BP), the guest RIP, and DR6/DR7 at the exit. */
export interface DebugExit {
  exception: number;
  pc: bigint;
  dr6: bigint;
  dr7: bigint;
}

export interface SystemEventExit {
  type: number;
  data: bigint[];
}

/**
 * A KVM exit, decoded. `data` of an I/O or MMIO exit is the bytes in the kvm_run page
 * (size * count for I/O, 8 for MMIO): fill it for io-in and an MMIO read. `unknown` is any
 * exit not modelled here, with its KVM_EXIT_* reason (describeExit() names it).
 */
export type VcpuExit =
  | { kind: 'io-out'; port: number; size: number; count: number; data: Uint8Array }
  | { kind: 'io-in'; port: number; size: number; count: number; data: Uint8Array }
  | ({ kind: 'mmio'; data: Uint8Array } & MmioExit)
  | { kind: 'intr' }
  | { kind: 'hlt' }
  | { kind: 'shutdown' }
  | ({ kind: 'system-event' } & SystemEventExit)
  | ({ kind: 'debug' } & DebugExit)
  | { kind: 'fail-entry'; reason: bigint; cpu: number }
  | ({ kind: 'internal-error' } & InternalErrorExit)
  | { kind: 'unknown'; reason: number };

export type VcpuExitKind = VcpuExit['kind'];

/** A view of the kvm_run page. The buffer is the ArrayBuffer returned by mmap. */
export class KvmRun {
  readonly view: DataView;
  readonly bytes: Uint8Array;

  constructor(readonly buffer: ArrayBuffer) {
    if (buffer.byteLength < KVM_RUN.size)
      throw new RangeError(`kvm_run mapping is ${buffer.byteLength} bytes, need ${KVM_RUN.size}`);
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
  }

  get exitReason(): number {
    return this.view.getUint32(R.exit_reason, true);
  }
  get immediateExit(): number {
    return this.view.getUint8(R.immediate_exit);
  }
  set immediateExit(v: number) {
    this.view.setUint8(R.immediate_exit, v);
  }
  get requestInterruptWindow(): number {
    return this.view.getUint8(R.request_interrupt_window);
  }
  set requestInterruptWindow(v: number) {
    this.view.setUint8(R.request_interrupt_window, v);
  }
  get readyForInterruptInjection(): number {
    return this.view.getUint8(R.ready_for_interrupt_injection);
  }
  get ifFlag(): number {
    return this.view.getUint8(R.if_flag);
  }
  get flags(): number {
    return this.view.getUint16(R.flags, true);
  }
  get cr8(): bigint {
    return this.view.getBigUint64(R.cr8, true);
  }
  get apicBase(): bigint {
    return this.view.getBigUint64(R.apic_base, true);
  }

  /** The exit KVM_RUN returned with, decoded. */
  exit(): VcpuExit {
    const reason = this.exitReason;
    switch (reason) {
      case KVM_EXIT.KVM_EXIT_IO: {
        const io = this.io();
        const kind = io.direction === KVM_EXIT_IO_OUT ? 'io-out' : 'io-in';
        return { kind, port: io.port, size: io.size, count: io.count, data: this.ioData(io) };
      }
      case KVM_EXIT.KVM_EXIT_MMIO:
        return { kind: 'mmio', ...this.mmio() };
      case KVM_EXIT.KVM_EXIT_INTR:
        return { kind: 'intr' };
      case KVM_EXIT.KVM_EXIT_HLT:
        return { kind: 'hlt' };
      case KVM_EXIT.KVM_EXIT_SHUTDOWN:
        return { kind: 'shutdown' };
      case KVM_EXIT.KVM_EXIT_SYSTEM_EVENT:
        return { kind: 'system-event', ...this.systemEvent() };
      case KVM_EXIT.KVM_EXIT_DEBUG:
        return { kind: 'debug', ...this.debug() };
      case KVM_EXIT.KVM_EXIT_FAIL_ENTRY:
        return { kind: 'fail-entry', ...this.failEntry() };
      case KVM_EXIT.KVM_EXIT_INTERNAL_ERROR:
        return { kind: 'internal-error', ...this.internal() };
      default:
        return { kind: 'unknown', reason };
    }
  }

  /** The io member (valid for KVM_EXIT_IO). */
  io(): IoExit {
    const v = this.view;
    return {
      direction: v.getUint8(R['io.direction']),
      size: v.getUint8(R['io.size']),
      port: v.getUint16(R['io.port'], true),
      count: v.getUint32(R['io.count'], true),
      dataOffset: Number(v.getBigUint64(R['io.data_offset'], true)),
    };
  }

  /** The bytes an I/O exit reads or writes (size * count), inside the kvm_run page: fill them for IN. */
  ioData(io: IoExit = this.io()): Uint8Array {
    const len = io.size * io.count;
    if (io.dataOffset + len > this.buffer.byteLength)
      throw new RangeError(`io data ${io.dataOffset}+${len} is outside the kvm_run mapping`);
    return new Uint8Array(this.buffer, io.dataOffset, len);
  }

  /** The mmio member (valid for KVM_EXIT_MMIO); `data` is the 8-byte buffer in place. */
  mmio(): MmioExit & { data: Uint8Array } {
    return {
      physAddr: this.view.getBigUint64(R['mmio.phys_addr'], true),
      len: this.view.getUint32(R['mmio.len'], true),
      isWrite: this.view.getUint8(R['mmio.is_write']) !== 0,
      data: new Uint8Array(this.buffer, R['mmio.data'], 8),
    };
  }

  /** fail_entry: the hardware entry failure reason and the CPU it happened on. */
  failEntry(): { reason: bigint; cpu: number } {
    return {
      reason: this.view.getBigUint64(R['fail_entry.hardware_entry_failure_reason'], true),
      cpu: this.view.getUint32(R['fail_entry.cpu'], true),
    };
  }

  /** internal: suberror and up to 16 data words (ndata is clamped to 16). */
  internal(): InternalErrorExit {
    const n = Math.min(16, this.view.getUint32(R['internal.ndata'], true));
    const data: bigint[] = [];
    for (let i = 0; i < n; i++) data.push(this.view.getBigUint64(R['internal.data'] + 8 * i, true));
    return { suberror: this.view.getUint32(R['internal.suberror'], true), data };
  }

  /** emulation_failure's instruction bytes, when KVM reported them (flags bit 0). */
  emulationFailureBytes(): Uint8Array | undefined {
    const flags = this.view.getBigUint64(R['emulation_failure.flags'], true);
    const ndata = this.view.getUint32(R['internal.ndata'], true);
    if ((flags & 1n) === 0n || ndata < 3) return undefined;
    const size = Math.min(15, this.view.getUint8(R['emulation_failure.insn_size']));
    return this.bytes.slice(R['emulation_failure.insn_bytes'], R['emulation_failure.insn_bytes'] + size);
  }

  /** system_event: type (KVM_SYSTEM_EVENT_*) and data words. */
  systemEvent(): SystemEventExit {
    const n = Math.min(16, this.view.getUint32(R['system_event.ndata'], true));
    const data: bigint[] = [];
    for (let i = 0; i < n; i++) data.push(this.view.getBigUint64(R['system_event.data'] + 8 * i, true));
    return { type: this.view.getUint32(R['system_event.type'], true), data };
  }

  /** debug.arch (valid for KVM_EXIT_DEBUG). For a data breakpoint `pc` is the instruction after the access. */
  debug(): DebugExit {
    const v = this.view;
    return {
      exception: v.getUint32(R['debug.arch.exception'], true),
      pc: v.getBigUint64(R['debug.arch.pc'], true),
      dr6: v.getBigUint64(R['debug.arch.dr6'], true),
      dr7: v.getBigUint64(R['debug.arch.dr7'], true),
    };
  }

  /** One line naming the exit and its details, for error messages. */
  describeExit(): string {
    const reason = this.exitReason;
    const name = exitReasonName(reason);
    switch (reason) {
      case KVM_EXIT.KVM_EXIT_IO: {
        const io = this.io();
        return `${name}: ${io.direction === KVM_EXIT_IO_OUT ? 'out' : 'in'} port 0x${io.port.toString(16)} size ${io.size} count ${io.count}`;
      }
      case KVM_EXIT.KVM_EXIT_MMIO: {
        const m = this.mmio();
        return `${name}: ${m.isWrite ? 'write' : 'read'} 0x${m.physAddr.toString(16)} len ${m.len}`;
      }
      case KVM_EXIT.KVM_EXIT_FAIL_ENTRY: {
        const f = this.failEntry();
        return `${name}: hardware entry failure reason 0x${f.reason.toString(16)} on cpu ${f.cpu}`;
      }
      case KVM_EXIT.KVM_EXIT_INTERNAL_ERROR: {
        const i = this.internal();
        const sub =
          Object.entries(KVM_INTERNAL_ERROR).find(([, v]) => v === i.suberror)?.[0] ?? `suberror ${i.suberror}`;
        const insn =
          i.suberror === KVM_INTERNAL_ERROR.KVM_INTERNAL_ERROR_EMULATION ? this.emulationFailureBytes() : undefined;
        const bytes = insn ? ` insn ${Buffer.from(insn).toString('hex')}` : '';
        return `${name}: ${sub}${bytes} data [${i.data.map((d) => '0x' + d.toString(16)).join(', ')}]`;
      }
      case KVM_EXIT.KVM_EXIT_SYSTEM_EVENT: {
        const e = this.systemEvent();
        return `${name}: type ${e.type} data [${e.data.map((d) => '0x' + d.toString(16)).join(', ')}]`;
      }
      case KVM_EXIT.KVM_EXIT_UNKNOWN:
        return `${name}: hardware exit reason 0x${this.view.getBigUint64(R['hw.hardware_exit_reason'], true).toString(16)}`;
      case KVM_EXIT.KVM_EXIT_EXCEPTION:
        return `${name}: exception ${this.view.getUint32(R['ex.exception'], true)} error code ${this.view.getUint32(R['ex.error_code'], true)}`;
      default:
        return name;
    }
  }
}
