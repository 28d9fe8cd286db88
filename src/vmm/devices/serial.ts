// A 16550A UART (THR/RBR, IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR, the DLAB divisor latch)
// whose interrupt is a trigger it is handed (devices/irq.ts; the VMM wires it to
// KVM_IRQ_LINE): the UART knows nothing of KVM.
//
// Threading -- why the state is in shared memory: port I/O exits arrive on the vCPU
// threads (worker_threads blocked in KVM_RUN). Handling them right there, with the
// register file in a SharedArrayBuffer, costs no thread hop per byte: the kernel console
// writes one `outb` per character and polls LSR around it, so a synchronous request to the
// main thread (postMessage + Atomics.wait) for each access would put two context switches
// on every console byte and stall all vCPUs on the main event loop. Any thread may access
// the UART: a small Atomics lock serialises vCPUs (one UART, many vCPUs) and the main
// thread, which only (a) drains transmitted bytes from a lock-free single-consumer ring and
// (b) feeds received bytes into a lock-free single-producer ring, then re-evaluates the IRQ
// under the lock (or leaves a "dirty" mark the current lock holder handles on unlock).
// The interrupt line is driven by whoever changes the state, through its own handle's
// trigger (KVM_IRQ_LINE on the VM fd is thread-safe). The host learns of transmitted bytes
// through a shared "output pending" word (one for all UARTs of a VM): the transmitting
// thread raises it and wakes the host only on its 0 -> 1 edge, and watchOutput() (below)
// drains after that, so an idle console costs the host nothing (no polling timer competing
// with the vCPUs for the CPU).
//
// Save and restore: state() is the UART as plain data (SerialState: registers, the bytes
// waiting in both rings, the line level), read under the lock so no vCPU changes it halfway;
// restoreSerialShared() builds fresh shared buffers from it, and Serial.fromState() a handle
// on them.

import type { IrqTrigger } from './irq.js';

export const COM1 = { base: 0x3f8, irq: 4 } as const;
export const COM2 = { base: 0x2f8, irq: 3 } as const;

const UART_IER_RDI = 0x01;
const UART_IER_THRI = 0x02;
const UART_IER_RLSI = 0x04;
const UART_IIR_NO_INT = 0x01;
const UART_IIR_THRI = 0x02;
const UART_IIR_RDI = 0x04;
const UART_IIR_FIFO = 0xc0;
const UART_LCR_DLAB = 0x80;
const UART_MCR_LOOP = 0x10;
const UART_LSR_DR = 0x01;
const UART_LSR_THRE = 0x20;
const UART_LSR_TEMT = 0x40;
const UART_FCR_ENABLE = 0x01;
const UART_FCR_CLEAR_RX = 0x02;

// Int32 slots of the state buffer.
const S = {
  lock: 0,
  ier: 1,
  lcr: 2,
  mcr: 3,
  scr: 4,
  dll: 5,
  dlm: 6,
  fcr: 7,
  thrPending: 8,
  irq: 9,
  dirty: 10,
  loopRx: 11,
} as const;
const STATE_WORDS = 16;
// Rings: Int32 [0] = write count, [1] = read count (monotonic), data after 8 bytes.
const RING_HDR = 8;
export const OUT_RING_BYTES = 1 << 16;
export const IN_RING_BYTES = 1 << 12;

/** The shared buffers of one UART: pass them to every thread that touches it. */
export interface SerialShared {
  state: SharedArrayBuffer;
  out: SharedArrayBuffer;
  in: SharedArrayBuffer;
  /** Int32 [1]: 1 while transmitted bytes wait for the host (shared by a VM's UARTs). */
  pending: SharedArrayBuffer;
  base: number;
  irq: number;
}

/**
 * A UART as plain data (numbers and arrays: JSON- and structuredClone-safe), from
 * Serial.state(). The port and IRQ number are the machine's, not the UART's: restoring takes them apart.
 */
export interface SerialState {
  /** Interrupt enable (IER), as masked on write. */
  ier: number;
  /** Line control (LCR), DLAB included. */
  lcr: number;
  /** Modem control (MCR). */
  mcr: number;
  /** Scratch (SCR). */
  scr: number;
  /** Divisor latch, low and high byte (DLL, DLM). */
  dll: number;
  dlm: number;
  /** FIFO control as kept: its enable bit. */
  fcr: number;
  /** 1 while a THR-empty interrupt is pending (until IIR reports it or IER drops it). */
  thrPending: 0 | 1;
  /** The level last driven on the interrupt line. */
  irqLevel: 0 | 1;
  /** A byte sent in loopback mode (MCR LOOP) and not yet read, else null. */
  loopback: number | null;
  /** Transmitted bytes the host has not drained yet, oldest first. */
  tx: number[];
  /** Received bytes the guest has not read yet, oldest first. */
  rx: number[];
}

/** The "output pending" word for createSerialShared: pass one to every UART of a VM. */
export function createOutputSignal(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

export function createSerialShared(port: { base: number; irq: number }, pending = createOutputSignal()): SerialShared {
  const state = new SharedArrayBuffer(4 * STATE_WORDS);
  const s = new Int32Array(state);
  s[S.dll] = 12; // 9600 baud
  s[S.lcr] = 0x03;
  s[S.mcr] = 0x08; // OUT2
  return {
    state,
    out: new SharedArrayBuffer(RING_HDR + OUT_RING_BYTES),
    in: new SharedArrayBuffer(RING_HDR + IN_RING_BYTES),
    pending,
    base: port.base,
    irq: port.irq,
  };
}

const isByte = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xff;
const isBit = (v: unknown): v is 0 | 1 => v === 0 || v === 1;

/**
 * Fresh shared buffers holding a saved UART (Serial.state()) at `port`: hand them to every
 * thread as createSerialShared's are. Transmitted bytes still waiting raise `pending`, so the
 * host drains them. The interrupt line is not driven: the level is restored as data (the
 * interrupt controller is restored with its own state).
 */
export function restoreSerialShared(
  port: { base: number; irq: number },
  st: SerialState,
  pending = createOutputSignal(),
): SerialShared {
  for (const k of ['ier', 'lcr', 'mcr', 'scr', 'dll', 'dlm', 'fcr'] as const) {
    if (!isByte(st[k])) throw new RangeError(`serial state: ${k} ${String(st[k])} is not a byte`);
  }
  if (!isBit(st.thrPending) || !isBit(st.irqLevel))
    throw new RangeError('serial state: thrPending and irqLevel are 0 or 1');
  if (st.loopback !== null && !isByte(st.loopback))
    throw new RangeError(`serial state: loopback ${String(st.loopback)} is not a byte or null`);
  if (!Array.isArray(st.tx) || st.tx.length > OUT_RING_BYTES || !st.tx.every(isByte))
    throw new RangeError(`serial state: tx must be at most ${OUT_RING_BYTES} bytes`);
  if (!Array.isArray(st.rx) || st.rx.length > IN_RING_BYTES || !st.rx.every(isByte))
    throw new RangeError(`serial state: rx must be at most ${IN_RING_BYTES} bytes`);
  const shared = createSerialShared(port, pending);
  const s = new Int32Array(shared.state);
  s[S.ier] = st.ier;
  s[S.lcr] = st.lcr;
  s[S.mcr] = st.mcr;
  s[S.scr] = st.scr;
  s[S.dll] = st.dll;
  s[S.dlm] = st.dlm;
  s[S.fcr] = st.fcr;
  s[S.thrPending] = st.thrPending;
  s[S.irq] = st.irqLevel;
  s[S.loopRx] = st.loopback === null ? 0 : 0x100 | st.loopback;
  const out = new Ring(shared.out);
  for (const b of st.tx) out.push(b);
  const rx = new Ring(shared.in);
  for (const b of st.rx) rx.push(b);
  if (st.tx.length > 0) signalOutput(new Int32Array(pending));
  return shared;
}

/** After a byte went into an output ring: raise the pending word, waking the host on its edge. */
function signalOutput(pending: Int32Array): void {
  if (Atomics.load(pending, 0) === 0 && Atomics.exchange(pending, 0, 1) === 0) Atomics.notify(pending, 0);
}

/**
 * Host side: calls `onOutput` once transmitted bytes wait (raised `pending` word), `batchMs`
 * after the first of them so a burst is drained in one go, and again for every later burst.
 * Nothing runs while the guest is silent. stop() ends it (no callback afterwards).
 */
export function watchOutput(pending: SharedArrayBuffer, onOutput: () => void, batchMs = 2): { stop(): void } {
  const word = new Int32Array(pending);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const fire = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (stopped) return;
      Atomics.store(word, 0, 0); // before draining: bytes sent meanwhile raise it again
      onOutput();
      arm();
    }, batchMs);
  };
  const arm = (): void => {
    if (stopped) return;
    const w = Atomics.waitAsync(word, 0, 0);
    if (w.async) void w.value.then(fire);
    else fire();
  };
  arm();
  return {
    stop(): void {
      stopped = true;
      clearTimeout(timer);
      Atomics.notify(word, 0); // releases the pending waitAsync
    },
  };
}

class Ring {
  readonly idx: Int32Array;
  readonly data: Uint8Array;
  readonly cap: number;
  constructor(buf: SharedArrayBuffer) {
    this.idx = new Int32Array(buf, 0, 2);
    this.data = new Uint8Array(buf, RING_HDR);
    this.cap = this.data.length;
  }
  count(): number {
    return (Atomics.load(this.idx, 0) - Atomics.load(this.idx, 1)) | 0;
  }
  /** Producer side: false when full. */
  push(b: number): boolean {
    const w = Atomics.load(this.idx, 0);
    if (((w - Atomics.load(this.idx, 1)) | 0) >= this.cap) return false;
    this.data[(w >>> 0) % this.cap] = b;
    Atomics.store(this.idx, 0, (w + 1) | 0);
    return true;
  }
  /** Consumer side: -1 when empty. */
  shift(): number {
    const r = Atomics.load(this.idx, 1);
    if (r === Atomics.load(this.idx, 0)) return -1;
    const b = this.data[(r >>> 0) % this.cap];
    Atomics.store(this.idx, 1, (r + 1) | 0);
    return b;
  }
  clear(): void {
    Atomics.store(this.idx, 1, Atomics.load(this.idx, 0));
  }
  /** What is in the ring, oldest first, consuming nothing. */
  peek(): number[] {
    const r = Atomics.load(this.idx, 1);
    const n = (Atomics.load(this.idx, 0) - r) | 0;
    const bytes = new Array<number>(Math.max(n, 0));
    for (let i = 0; i < n; i++) bytes[i] = this.data[((r + i) >>> 0) % this.cap];
    return bytes;
  }
  /** Consumer side: everything available. */
  drain(): Uint8Array {
    const r = Atomics.load(this.idx, 1);
    const w = Atomics.load(this.idx, 0);
    const n = (w - r) | 0;
    if (n <= 0) return new Uint8Array(0);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.data[((r + i) >>> 0) % this.cap];
    Atomics.store(this.idx, 1, w);
    return out;
  }
}

/** One thread's handle on a shared UART. */
export class Serial {
  readonly base: number;
  readonly irq: number;
  private readonly s: Int32Array;
  private readonly out: Ring;
  private readonly rx: Ring;
  private readonly pending: Int32Array;
  /** Bytes dropped because the host did not drain the output ring in time. */
  dropped = 0;

  /** `raiseIrq` drives this UART's interrupt line from this thread. */
  constructor(
    readonly shared: SerialShared,
    private readonly raiseIrq: IrqTrigger,
  ) {
    this.base = shared.base;
    this.irq = shared.irq;
    this.s = new Int32Array(shared.state);
    this.out = new Ring(shared.out);
    this.rx = new Ring(shared.in);
    this.pending = new Int32Array(shared.pending);
  }

  /** A handle on a fresh UART restored from `state` (restoreSerialShared; `pending` as there). */
  static fromState(
    port: { base: number; irq: number },
    state: SerialState,
    raiseIrq: IrqTrigger,
    pending?: SharedArrayBuffer,
  ): Serial {
    return new Serial(restoreSerialShared(port, state, pending), raiseIrq);
  }

  handles(port: number): boolean {
    return port >= this.base && port < this.base + 8;
  }

  private lock(): void {
    while (Atomics.compareExchange(this.s, S.lock, 0, 1) !== 0) Atomics.wait(this.s, S.lock, 1, 1);
  }
  private tryLock(): boolean {
    return Atomics.compareExchange(this.s, S.lock, 0, 1) === 0;
  }
  private unlock(): void {
    Atomics.store(this.s, S.lock, 0);
    Atomics.notify(this.s, S.lock, 1);
    while (Atomics.exchange(this.s, S.dirty, 0) !== 0) {
      if (!this.tryLock()) {
        Atomics.store(this.s, S.dirty, 1);
        return;
      }
      this.updateIrq();
      Atomics.store(this.s, S.lock, 0);
      Atomics.notify(this.s, S.lock, 1);
    }
  }

  private rxReady(): boolean {
    return this.rx.count() > 0 || this.s[S.loopRx] >= 0x100;
  }

  private iir(): number {
    const ier = this.s[S.ier];
    const fifo = this.s[S.fcr] & UART_FCR_ENABLE ? UART_IIR_FIFO : 0;
    if (ier & UART_IER_RDI && this.rxReady()) return UART_IIR_RDI | fifo;
    if (ier & UART_IER_THRI && this.s[S.thrPending]) return UART_IIR_THRI | fifo;
    return UART_IIR_NO_INT | fifo;
  }

  private updateIrq(): void {
    const level = (this.iir() & UART_IIR_NO_INT) === 0 ? 1 : 0;
    if (this.s[S.irq] !== level) {
      this.s[S.irq] = level;
      this.raiseIrq(level);
    }
  }

  /** A guest `in` from base + offset. */
  read(port: number): number {
    const off = port - this.base;
    const s = this.s;
    this.lock();
    try {
      const dlab = (s[S.lcr] & UART_LCR_DLAB) !== 0;
      let v = 0;
      switch (off) {
        case 0:
          if (dlab) {
            v = s[S.dll];
            break;
          }
          if (s[S.loopRx] >= 0x100) {
            v = s[S.loopRx] & 0xff;
            s[S.loopRx] = 0;
          } else {
            const b = this.rx.shift();
            v = b < 0 ? 0 : b;
          }
          break;
        case 1:
          v = dlab ? s[S.dlm] : s[S.ier];
          break;
        case 2: {
          v = this.iir();
          if ((v & 0x0f) === UART_IIR_THRI) s[S.thrPending] = 0;
          break;
        }
        case 3:
          v = s[S.lcr];
          break;
        case 4:
          v = s[S.mcr];
          break;
        case 5:
          v = UART_LSR_THRE | UART_LSR_TEMT | (this.rxReady() ? UART_LSR_DR : 0);
          break;
        case 6: {
          const mcr = s[S.mcr];
          // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD; else DCD, DSR and CTS asserted.
          v = mcr & UART_MCR_LOOP ? ((mcr & 0x0c) << 4) | ((mcr & 0x01) << 5) | ((mcr & 0x02) << 3) : 0xb0;
          break;
        }
        case 7:
          v = s[S.scr];
          break;
      }
      this.updateIrq();
      return v & 0xff;
    } finally {
      this.unlock();
    }
  }

  /** A guest `out` to base + offset. */
  write(port: number, value: number): void {
    const off = port - this.base;
    const s = this.s;
    value &= 0xff;
    this.lock();
    try {
      const dlab = (s[S.lcr] & UART_LCR_DLAB) !== 0;
      switch (off) {
        case 0:
          if (dlab) {
            s[S.dll] = value;
            break;
          }
          if (s[S.mcr] & UART_MCR_LOOP) s[S.loopRx] = 0x100 | value;
          else if (this.out.push(value)) signalOutput(this.pending);
          else this.dropped++;
          s[S.thrPending] = 1; // transmitted at once: THR is empty again
          break;
        case 1:
          if (dlab) {
            s[S.dlm] = value;
            break;
          }
          if (value & UART_IER_THRI && !(s[S.ier] & UART_IER_THRI)) s[S.thrPending] = 1;
          s[S.ier] = value & (UART_IER_RDI | UART_IER_THRI | UART_IER_RLSI | 0x08);
          break;
        case 2:
          s[S.fcr] = value & UART_FCR_ENABLE;
          if (value & UART_FCR_CLEAR_RX) {
            this.rx.clear();
            s[S.loopRx] = 0;
          }
          break;
        case 3:
          s[S.lcr] = value;
          break;
        case 4:
          s[S.mcr] = value & 0x1f;
          break;
        case 7:
          s[S.scr] = value;
          break;
        default:
          break; // LSR/MSR writes are ignored
      }
      this.updateIrq();
    } finally {
      this.unlock();
    }
  }

  /**
   * The UART as plain data, taken under the lock (any thread; it waits for a vCPU in the
   * middle of an access). A received byte whose interrupt is not yet evaluated (inject()'s
   * dirty mark) is evaluated first, so the saved line level matches the saved registers.
   */
  state(): SerialState {
    const s = this.s;
    this.lock();
    try {
      if (Atomics.exchange(s, S.dirty, 0) !== 0) this.updateIrq();
      return {
        ier: s[S.ier],
        lcr: s[S.lcr],
        mcr: s[S.mcr],
        scr: s[S.scr],
        dll: s[S.dll],
        dlm: s[S.dlm],
        fcr: s[S.fcr],
        thrPending: s[S.thrPending] ? 1 : 0,
        irqLevel: s[S.irq] ? 1 : 0,
        loopback: s[S.loopRx] >= 0x100 ? s[S.loopRx] & 0xff : null,
        tx: this.out.peek(),
        rx: this.rx.peek(),
      };
    } finally {
      this.unlock();
    }
  }

  /** Host side: the bytes the guest transmitted since the last call. */
  drainOutput(): Uint8Array {
    return this.out.drain();
  }

  /** Host side: bytes for the guest to receive. Returns how many fit in the receive ring. */
  inject(bytes: Uint8Array): number {
    let n = 0;
    for (const b of bytes) {
      if (!this.rx.push(b)) break;
      n++;
    }
    Atomics.store(this.s, S.dirty, 1);
    if (this.tryLock()) this.unlock(); // unlock() handles the dirty mark
    return n;
  }
}
