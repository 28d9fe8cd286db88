// x86 hardware watchpoints as the debug registers hold them: up to four guest linear
// addresses (DR0-DR3) and DR7, which enables each slot and says what it catches (writes, or
// reads and writes) over how many bytes (1, 2, 4 or 8, aligned to that length). DR6 tells,
// after a #DB, which slots fired. Pure values: Vcpu.setHardwareBreakpoints hands them to KVM.
// (Intel SDM vol. 3, "Debug Registers"; AMD APM vol. 2, "Debug-Control Register".)

export type WatchKind = 'write' | 'access';

export interface HardwareWatch {
  /** Guest linear (kernel virtual) address, aligned to `length`. */
  address: bigint;
  length: 1 | 2 | 4 | 8;
  kind: WatchKind;
}

export class WatchpointError extends Error {}

export const DEBUG_SLOTS = 4;

/** DR7 R/W field: 01 data writes, 11 data reads and writes (00 would be instruction fetch). */
const RW_BITS: Record<WatchKind, bigint> = { write: 0b01n, access: 0b11n };
/** DR7 LEN field: 00 one byte, 01 two, 11 four, 10 eight. */
const LEN_BITS: Record<HardwareWatch['length'], bigint> = { 1: 0b00n, 2: 0b01n, 4: 0b11n, 8: 0b10n };
/** DR7 bit 9 (GE, exact data breakpoints: recommended with data watches) and bit 10 (reads as 1). */
const DR7_GE = 1n << 9n;
const DR7_FIXED = 1n << 10n;

/** The DR0-DR3 values and DR7 for `watches` (slot i = watches[i], null: slot unused); DR7 0 when none is set. */
export function encodeWatchpoints(watches: readonly (HardwareWatch | null)[]): { addresses: bigint[]; dr7: bigint } {
  if (watches.length > DEBUG_SLOTS)
    throw new WatchpointError(`x86 has ${DEBUG_SLOTS} hardware watchpoints; ${watches.length} were asked for`);
  if (watches.every((w) => w === null)) return { addresses: [], dr7: 0n };
  let dr7 = DR7_GE | DR7_FIXED;
  const addresses: bigint[] = [];
  watches.forEach((w, i) => {
    if (w === null) {
      addresses.push(0n);
      return;
    }
    if (!(w.length in LEN_BITS)) throw new WatchpointError(`a watchpoint covers 1, 2, 4 or 8 bytes, not ${w.length}`);
    if (w.address % BigInt(w.length) !== 0n)
      throw new WatchpointError(`0x${w.address.toString(16)} is not aligned to the watch length ${w.length}`);
    const slot = BigInt(i);
    dr7 |= 1n << (2n * slot + 1n); // Gi: enabled in every task
    dr7 |= RW_BITS[w.kind] << (16n + 4n * slot);
    dr7 |= LEN_BITS[w.length] << (18n + 4n * slot);
    addresses.push(BigInt.asUintN(64, w.address));
  });
  return { addresses, dr7 };
}

/** The slots DR6 says fired (B0-B3). */
export function firedSlots(dr6: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < DEBUG_SLOTS; i++) if ((dr6 >> BigInt(i)) & 1n) out.push(i);
  return out;
}

/**
 * The widest watch a hardware slot can hold over the `size` bytes at `address`: the whole
 * of it when it is 1, 2, 4 or 8 bytes and aligned; otherwise an error naming the rule.
 */
export function watchFor(address: bigint, size: number, kind: WatchKind, what: string): HardwareWatch {
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
    throw new WatchpointError(
      `${what} is ${size} bytes; a hardware watchpoint covers 1, 2, 4 or 8 aligned bytes: watch one of its fields`,
    );
  }
  if (address % BigInt(size) !== 0n)
    throw new WatchpointError(
      `${what} at 0x${address.toString(16)} is not aligned to its size (${size}); a hardware watchpoint needs that`,
    );
  return { address, length: size, kind };
}

/**
 * Why hardware watchpoints cannot fire here, or null. Inside the emulated test host, the
 * host's QEMU (KTSTR_TEST_HOST_QEMU, set by the test host runner) emulates the debug
 * registers: before 9.1 its SVM VMRUN loaded a nested guest's DR7 without arming it, so a
 * watchpoint KVM sets never fires.
 */
export function watchpointProblem(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.KTSTR_IN_TEST_HOST !== '1') return null;
  const v = /^(\d+)\.(\d+)/.exec(env.KTSTR_TEST_HOST_QEMU ?? '');
  if (v === null) return null;
  const [major, minor] = [Number(v[1]), Number(v[2])];
  if (major > 9 || (major === 9 && minor >= 1)) return null;
  return `hardware watchpoints do not fire inside the emulated test host with QEMU ${env.KTSTR_TEST_HOST_QEMU} (QEMU before 9.1 does not arm a nested guest's debug registers): install qemu-system-x86 9.1 or newer (Debian 12: from bookworm-backports), or run on a machine with /dev/kvm`;
}
