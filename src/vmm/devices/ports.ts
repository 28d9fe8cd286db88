// The legacy x86 port-I/O space the boot core answers in TypeScript (PIC, PIT, the speaker
// port 0x61 and the IOAPIC/LAPIC are in the kernel): the UARTs, the exit port, the i8042
// reset line, a minimal CMOS/RTC, the POST/delay port 0x80, and "nothing here" (reads float
// to 0xff, writes are dropped) for everything else, including PCI config 0xcf8/0xcfc.
// Runs on the vCPU threads, one bus per thread over registers all of them share: the CMOS
// index and PM1_EN are the machine's (one RTC, one PM1 block), kept in a SharedArrayBuffer
// (createPortRegisters) the VM hands every thread. portRegistersState() / restorePortRegisters()
// save and restore them as plain data (a snapshot's); the UARTs the bus routes to are shared
// too and saved on their own (Serial.state()).

import { isPowerOffWrite, PM1A_CNT_PORT, PM1A_EVT_PORT, PM1_CNT_SCI_EN } from '../acpi/pm.js';
import type { Serial } from './serial.js';

/**
 * An "isa-debug-exit"-style port: a byte written here ends the VM with that byte as the
 * guest's exit code (unlike QEMU's device there is no (v << 1) | 1 encoding). The shell
 * initramfs writes it through /dev/port.
 */
export const EXIT_PORT = 0x501;
export const I8042_DATA = 0x60;
export const I8042_STATUS = 0x64;
export const I8042_CMD_RESET = 0xfe;
export const CMOS_INDEX = 0x70;
export const CMOS_DATA = 0x71;
export const RESET_CONTROL_PORT = 0xcf9;

export type PortEvent =
  { kind: 'exit'; code: number } | { kind: 'reset'; why: string } | { kind: 'poweroff'; why: string };

const bcd = (v: number): number => ((Math.floor(v / 10) << 4) | (v % 10)) & 0xff;

/** CMOS register for the current UTC time (BCD, 24-hour), status registers that say "valid, not updating". */
export function cmosRegister(index: number, now = new Date()): number {
  switch (index & 0x7f) {
    case 0x00:
      return bcd(now.getUTCSeconds());
    case 0x02:
      return bcd(now.getUTCMinutes());
    case 0x04:
      return bcd(now.getUTCHours());
    case 0x06:
      return bcd(now.getUTCDay() + 1);
    case 0x07:
      return bcd(now.getUTCDate());
    case 0x08:
      return bcd(now.getUTCMonth() + 1);
    case 0x09:
      return bcd(now.getUTCFullYear() % 100);
    case 0x32:
      return bcd(Math.floor(now.getUTCFullYear() / 100));
    case 0x0a:
      return 0x26; // UIP clear, 32.768 kHz time base
    case 0x0b:
      return 0x02; // 24-hour, BCD, no interrupts
    case 0x0d:
      return 0x80; // RAM/time valid
    default:
      return 0;
  }
}

/** The machine's port registers as plain data (portRegistersState()). The CMOS clock is the host's: only its index register is state. */
export interface PortBusState {
  /** The CMOS register selected through port 0x70 (NMI-disable bit dropped). */
  cmosIndex: number;
  /** PM1_EN, 16 bits. */
  pm1Enable: number;
}

const REG_CMOS_INDEX = 0;
const REG_PM1_ENABLE = 1;
const PORT_REGISTER_BYTES = 8;

/** The registers every vCPU thread's bus shares (Int32 words over a SharedArrayBuffer), all zero. */
export function createPortRegisters(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(PORT_REGISTER_BYTES));
}

/** The registers as plain data. */
export function portRegistersState(registers: Int32Array): PortBusState {
  return {
    cmosIndex: Atomics.load(registers, REG_CMOS_INDEX),
    pm1Enable: Atomics.load(registers, REG_PM1_ENABLE),
  };
}

/** New shared registers holding `state`; throws RangeError on a state no bus could have written. */
export function restorePortRegisters(state: PortBusState): Int32Array {
  const ok = (v: unknown, max: number): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
  if (!ok(state?.cmosIndex, 0x7f))
    throw new RangeError(`port bus state: cmosIndex ${String(state?.cmosIndex)} is not 0..0x7f`);
  if (!ok(state.pm1Enable, 0xffff))
    throw new RangeError(`port bus state: pm1Enable ${String(state.pm1Enable)} is not 16 bits`);
  const registers = createPortRegisters();
  registers[REG_CMOS_INDEX] = state.cmosIndex;
  registers[REG_PM1_ENABLE] = state.pm1Enable;
  return registers;
}

export class PortBus {
  constructor(
    readonly serials: Serial[],
    private readonly onEvent: (e: PortEvent) => void,
    /** The machine's registers, shared with the other vCPU threads' buses (a bus of its own when left out). */
    readonly registers: Int32Array = createPortRegisters(),
  ) {}

  private get cmosIndex(): number {
    return Atomics.load(this.registers, REG_CMOS_INDEX);
  }

  /** PM1_EN (fixed-event enables): kept as written, since ACPICA reads back what it enables. */
  private get pm1Enable(): number {
    return Atomics.load(this.registers, REG_PM1_ENABLE);
  }

  in(port: number, data: Uint8Array): void {
    for (const s of this.serials) {
      if (s.handles(port)) {
        for (let i = 0; i < data.length; i++) data[i] = s.read(port);
        return;
      }
    }
    switch (port) {
      case CMOS_DATA:
        data.fill(cmosRegister(this.cmosIndex));
        return;
      case PM1A_EVT_PORT:
      case PM1A_EVT_PORT + 1:
      case PM1A_EVT_PORT + 2:
      case PM1A_EVT_PORT + 3:
        // PM1_STS (bytes 0-1): no fixed events pending; PM1_EN (bytes 2-3): as written
        for (let i = 0; i < data.length; i++) {
          const at = port - PM1A_EVT_PORT + i;
          data[i] = at >= 2 && at < 4 ? (this.pm1Enable >> (8 * (at - 2))) & 0xff : 0;
        }
        return;
      case PM1A_CNT_PORT:
        data.fill(0);
        data[0] = PM1_CNT_SCI_EN;
        return; // ACPI mode, as the FADT declares
      case I8042_STATUS:
        data.fill(0xff);
        return; // no controller (flush never ends): the kernel gives up at once
      default:
        data.fill(0xff);
    }
  }

  out(port: number, data: Uint8Array): void {
    for (const s of this.serials) {
      if (s.handles(port)) {
        for (const b of data) s.write(port, b);
        return;
      }
    }
    switch (port) {
      case EXIT_PORT:
        this.onEvent({ kind: 'exit', code: data[0] });
        return;
      case I8042_STATUS:
        if (data[0] === I8042_CMD_RESET) this.onEvent({ kind: 'reset', why: 'i8042 reset (0xfe to port 0x64)' });
        return;
      case CMOS_INDEX:
        Atomics.store(this.registers, REG_CMOS_INDEX, data[0] & 0x7f);
        return;
      case PM1A_EVT_PORT:
      case PM1A_EVT_PORT + 1:
      case PM1A_EVT_PORT + 2:
      case PM1A_EVT_PORT + 3:
        for (let i = 0; i < data.length; i++) {
          const at = port - PM1A_EVT_PORT + i;
          if (at >= 2 && at < 4) {
            const shift = 8 * (at - 2);
            Atomics.store(this.registers, REG_PM1_ENABLE, (this.pm1Enable & ~(0xff << shift)) | (data[i] << shift));
          }
        }
        return; // writes to PM1_STS clear nothing: no status bit is ever set
      case PM1A_CNT_PORT:
        if (isPowerOffWrite(data[0] | ((data[1] ?? 0) << 8)))
          this.onEvent({ kind: 'poweroff', why: 'ACPI S5 (SLP_EN to PM1a_CNT)' });
        return;
      case RESET_CONTROL_PORT:
        if (data[0] === 0x06) this.onEvent({ kind: 'reset', why: 'reset control (0x06 to port 0xcf9)' });
        return;
      default:
        return; // 0x80 POST/delay and everything unclaimed
    }
  }
}
