// ACPI tables for the declared topology, as byte blobs at guest physical addresses:
// RSDP (rev 2) -> XSDT -> FADT (-> FACS, DSDT), MADT, SRAT, SLIT.
//
// Machine model (what the boot core implements):
// - Legacy PC platform, not hardware-reduced: in-kernel PIC + IOAPIC + PIT. MADT flags
//   PCAT_COMPAT; one I/O APIC (id 0) at 0xFEC00000, GSI base 0; overrides IRQ0 -> GSI2 (edge,
//   bus-conforming) and IRQ9 -> GSI9 level/active-low (the SCI); LINT1 = NMI for all CPUs.
// - CPUs: one Processor Local APIC entry per vCPU (ACPI UID = Linux CPU number, in topology
//   order, boot CPU = APIC ID 0 first); an x2APIC entry instead for APIC IDs >= 255 (Linux
//   ignores x2APIC entries below 255 when LAPIC entries exist, as the ACPI spec says).
// - Power management (fixed hardware, I/O ports):
//     PM1a_EVT_BLK = 0x600, 4 bytes (PM1_STS 0x600: reads 0; PM1_EN 0x602: reads what was written);
//     PM1a_CNT_BLK = 0x604, 2 bytes: reads return SCI_EN (0x0001); a 16-bit write with
//       SLP_EN (bit 13) set and SLP_TYP (bits 12:10) = 5 (ACPI_S5_SLP_TYP) is POWER OFF.
//       (ACPICA first writes SLP_TYP alone, then SLP_TYP|SLP_EN: act on the SLP_EN write.)
//     no PM timer, no GPE blocks, SMI_CMD = 0 (always in ACPI mode), SCI_INT = 9.
//     RESET_REG = I/O port 0xCF9, value 0x06: reboot (FADT RESET_REG_SUP).
//   The DSDT holds `Name (\_S5, Package () { 5, 5, 0, 0 })` so Linux installs
//   acpi_power_off (AML bytes spelled out at S5_AML below), and the UARTs as PNP0501
//   devices with their ports and IRQs (aml.ts encodes them).
// - IAPC_BOOT_ARCH: LEGACY_DEVICES, no 8042 (Linux skips the i8042 probe), no VGA, no CMOS
//   RTC (time of day comes from kvmclock; set `cmosRtc: true` when the VMM emulates 0x70/0x71).
// - NUMA: SRAT gives each CPU the proximity domain of its node (= package, see
//   src/vmm/topology), and splits RAM evenly across nodes in address order (2 MiB aligned,
//   the last node takes the rest), walking the RAM regions (0..3 GiB, then from 4 GiB: the
//   PCI hole holds no memory entry). SLIT: 10 local, 20 remote unless given.
// - Placement: the RSDP at 0xE0000 (Linux scans 0xE0000-0xFFFFF on 16-byte boundaries when
//   boot_params.acpi_rsdp_addr is 0; setting that field to the RSDP address works too), the
//   tables from 0xE1000 up. The whole 0xE0000-0xFFFFF range must be reserved in the e820 map.

import type { Topology } from '../topology/index.js';
import { amlConcat, scope, uartDevice } from './aml.js';

export const ACPI_RSDP_ADDR = 0xe0000;
export const ACPI_TABLES_ADDR = 0xe1000;
export const BIOS_AREA_END = 0x100000;

export {
  ACPI_S5_SLP_TYP,
  PM1A_CNT_LEN,
  PM1A_CNT_PORT,
  PM1A_EVT_LEN,
  PM1A_EVT_PORT,
  PM1_CNT_SCI_EN,
  PM1_CNT_SLP_EN,
  RESET_PORT,
  RESET_VALUE,
  SCI_IRQ,
  isPowerOffWrite,
} from './pm.js';
import {
  ACPI_S5_SLP_TYP,
  PM1A_CNT_LEN,
  PM1A_CNT_PORT,
  PM1A_EVT_LEN,
  PM1A_EVT_PORT,
  RESET_PORT,
  RESET_VALUE,
  SCI_IRQ,
} from './pm.js';
export const IOAPIC_ADDR = 0xfec00000;
export const LAPIC_ADDR = 0xfee00000;

export const OEM_ID = 'KTSTRW';
export const OEM_TABLE_ID = 'KTSTRVMM';
const CREATOR_ID = 'KTWV';

/** A RAM range in guest physical address space (src/vmm/memory.ts RamRegion fits). */
export interface MemoryRange {
  guestPhysAddr: number;
  size: number;
}

export interface AcpiOptions {
  topology: Topology;
  /** Guest RAM regions, ascending (e.g. ramLayout(bytes) from src/vmm/memory.ts). */
  memoryMap: readonly MemoryRange[];
  rsdpAddress?: number;
  tablesAddress?: number;
  /** SLIT distance matrix [from][to]; default 10 local, 20 remote. */
  distances?: number[][];
  /** The VMM emulates the CMOS RTC at ports 0x70/0x71 (default false). */
  cmosRtc?: boolean;
}

export interface AcpiBlob {
  /** Table signature ("RSD PTR " for the RSDP). */
  name: string;
  address: number;
  bytes: Uint8Array;
}

export interface AcpiTables {
  rsdpAddress: number;
  /** Every blob to copy into guest memory at its address. */
  blobs: AcpiBlob[];
  /** [start, end) of all blobs: reserve it (e820 type 2 or 3). */
  start: number;
  end: number;
  /** The SRAT memory ranges, node by node. */
  numaMemory: Array<{ node: number; base: number; size: number }>;
}

// ---------------------------------------------------------------------------------------
// bytes

class Bytes {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private grow(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    b.set(this.buf);
    this.buf = b;
    this.view = new DataView(b.buffer);
  }
  u8(v: number): this {
    this.grow(1);
    this.view.setUint8(this.length, v & 0xff);
    this.length += 1;
    return this;
  }
  u16(v: number): this {
    this.grow(2);
    this.view.setUint16(this.length, v & 0xffff, true);
    this.length += 2;
    return this;
  }
  u32(v: number): this {
    this.grow(4);
    this.view.setUint32(this.length, v >>> 0, true);
    this.length += 4;
    return this;
  }
  u64(v: number): this {
    this.grow(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
    return this;
  }
  str(s: string, n: number): this {
    for (let i = 0; i < n; i++) this.u8(i < s.length ? s.charCodeAt(i) : 0x20);
    return this;
  }
  raw(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.u8(b[i]);
    return this;
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.u8(0);
    return this;
  }
  /** Generic Address Structure (12 bytes). */
  gas(spaceId: number, bitWidth: number, address: number, accessSize = 0): this {
    return this.u8(spaceId).u8(bitWidth).u8(0).u8(accessSize).u64(address);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** 8-bit checksum: the value that makes the bytes sum to 0 mod 256. */
export function checksum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s = (s + bytes[i]) & 0xff;
  return (0x100 - s) & 0xff;
}

/** A System Description Table: the 36-byte header, then `body`; length and checksum filled. */
export function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const b = new Bytes()
    .str(signature, 4)
    .u32(36 + body.length)
    .u8(revision)
    .u8(0)
    .str(OEM_ID, 6)
    .str(OEM_TABLE_ID, 8)
    .u32(1)
    .str(CREATOR_ID, 4)
    .u32(1)
    .raw(body)
    .done();
  b[9] = checksum(b);
  return b;
}

// ---------------------------------------------------------------------------------------
// tables

/** RSDP, revision 2 (36 bytes): checksum over the first 20 bytes, extended over all 36. */
export function buildRsdp(xsdtAddress: number): Uint8Array {
  const b = new Bytes()
    .str('RSD PTR ', 8)
    .u8(0)
    .str(OEM_ID, 6)
    .u8(2)
    .u32(0)
    .u32(36)
    .u64(xsdtAddress)
    .u8(0)
    .zeros(3)
    .done();
  b[8] = checksum(b, 0, 20);
  b[32] = checksum(b, 0, 36);
  return b;
}

export function buildXsdt(entries: number[]): Uint8Array {
  const body = new Bytes();
  for (const a of entries) body.u64(a);
  return sdt('XSDT', 1, body.done());
}

/**
 * The DSDT's AML: `Name (\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })`
 *   08             NameOp
 *   5F 53 35 5F    NameString "_S5_" (in the root scope)
 *   12             PackageOp
 *   08             PkgLength: 8 bytes from here to the package's end
 *   04             NumElements
 *   0A 05          BytePrefix 5   (SLP_TYP for PM1a)
 *   0A 05          BytePrefix 5   (SLP_TYP for PM1b, unused)
 *   00 00          Zero Zero      (reserved)
 */
export const S5_AML = Uint8Array.of(
  0x08,
  0x5f,
  0x53,
  0x35,
  0x5f,
  0x12,
  0x08,
  0x04,
  0x0a,
  ACPI_S5_SLP_TYP,
  0x0a,
  ACPI_S5_SLP_TYP,
  0x00,
  0x00,
);

/** A UART the DSDT describes (PNP0501), so Linux's 8250_pnp driver takes it with its IRQ. */
export interface AcpiUart {
  base: number;
  irq: number;
}

/** The PC's first two UARTs: COM1 (0x3F8, IRQ 4) and COM2 (0x2F8, IRQ 3). */
export const DEFAULT_UARTS: readonly AcpiUart[] = [
  { base: 0x3f8, irq: 4 },
  { base: 0x2f8, irq: 3 },
];

/**
 * The DSDT: `\_S5` and, under `\_SB`, one PNP0501 device per UART (COM1, COM2, ...). Without
 * them Linux finds the UARTs only through its legacy port table, whose entries ask for IRQ
 * autodetection (CONFIG_SERIAL_8250_DETECT_IRQ): a probe that sleeps ~0.3 s per UART.
 */
export function buildDsdt(uarts: readonly AcpiUart[] = DEFAULT_UARTS): Uint8Array {
  const devices = uarts.map((u, i) => uartDevice(`COM${i + 1}`, i + 1, u.base, u.irq));
  return sdt('DSDT', 2, amlConcat([S5_AML, ...(devices.length > 0 ? [scope('\\_SB', devices)] : [])]));
}

/** FACS (64 bytes, no checksum; must be 64-byte aligned). */
export function buildFacs(): Uint8Array {
  return new Bytes().str('FACS', 4).u32(64).u32(0).u32(0).u32(0).u32(0).u64(0).u8(2).zeros(3).u32(0).zeros(24).done();
}

/** FADT revision 6 (276 bytes). Field offsets per ACPI 6.x table 5.9. */
export function buildFadt(o: { dsdt: number; facs: number; cmosRtc?: boolean }): Uint8Array {
  const IO = 1;
  const FLAG_WBINVD = 1 << 0,
    FLAG_PROC_C1 = 1 << 2,
    FLAG_PWR_BUTTON = 1 << 4,
    FLAG_SLP_BUTTON = 1 << 5,
    FLAG_RESET_REG_SUP = 1 << 10;
  const BOOT_LEGACY_DEVICES = 1 << 0,
    BOOT_VGA_NOT_PRESENT = 1 << 2,
    BOOT_CMOS_RTC_NOT_PRESENT = 1 << 5;
  const b = new Bytes()
    .u32(o.facs) // 36 FIRMWARE_CTRL
    .u32(o.dsdt) // 40 DSDT
    .u8(0) // 44 reserved
    .u8(0) // 45 Preferred_PM_Profile: unspecified
    .u16(SCI_IRQ) // 46 SCI_INT
    .u32(0) // 48 SMI_CMD: none, always in ACPI mode
    .u8(0)
    .u8(0)
    .u8(0)
    .u8(0) // 52 ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
    .u32(PM1A_EVT_PORT) // 56 PM1a_EVT_BLK
    .u32(0) // 60 PM1b_EVT_BLK
    .u32(PM1A_CNT_PORT) // 64 PM1a_CNT_BLK
    .u32(0) // 68 PM1b_CNT_BLK
    .u32(0) // 72 PM2_CNT_BLK
    .u32(0) // 76 PM_TMR_BLK: none
    .u32(0)
    .u32(0) // 80 GPE0_BLK, 84 GPE1_BLK
    .u8(PM1A_EVT_LEN) // 88 PM1_EVT_LEN
    .u8(PM1A_CNT_LEN) // 89 PM1_CNT_LEN
    .u8(0)
    .u8(0) // 90 PM2_CNT_LEN, 91 PM_TMR_LEN
    .u8(0)
    .u8(0)
    .u8(0) // 92 GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE
    .u8(0) // 95 CST_CNT
    .u16(0x65)
    .u16(0x3e9) // 96 P_LVL2_LAT > 100 (C2 unsupported), 98 P_LVL3_LAT > 1000 (C3 unsupported)
    .u16(0)
    .u16(0) // 100 FLUSH_SIZE, FLUSH_STRIDE
    .u8(0)
    .u8(0) // 104 DUTY_OFFSET, DUTY_WIDTH
    .u8(0)
    .u8(0)
    .u8(0) // 106 DAY_ALRM, MON_ALRM, CENTURY
    .u16(BOOT_LEGACY_DEVICES | BOOT_VGA_NOT_PRESENT | (o.cmosRtc ? 0 : BOOT_CMOS_RTC_NOT_PRESENT)) // 109 IAPC_BOOT_ARCH
    .u8(0) // 111 reserved
    .u32(FLAG_WBINVD | FLAG_PROC_C1 | FLAG_PWR_BUTTON | FLAG_SLP_BUTTON | FLAG_RESET_REG_SUP) // 112 Flags
    .gas(IO, 8, RESET_PORT) // 116 RESET_REG
    .u8(RESET_VALUE) // 128 RESET_VALUE
    .u16(0) // 129 ARM_BOOT_ARCH
    .u8(0) // 131 FADT minor version
    .u64(0) // 132 X_FIRMWARE_CTRL (FIRMWARE_CTRL is used)
    .u64(o.dsdt) // 140 X_DSDT
    .gas(IO, 8 * PM1A_EVT_LEN, PM1A_EVT_PORT) // 148 X_PM1a_EVT_BLK
    .gas(0, 0, 0) // 160 X_PM1b_EVT_BLK
    .gas(IO, 8 * PM1A_CNT_LEN, PM1A_CNT_PORT) // 172 X_PM1a_CNT_BLK
    .gas(0, 0, 0) // 184 X_PM1b_CNT_BLK
    .gas(0, 0, 0) // 196 X_PM2_CNT_BLK
    .gas(0, 0, 0) // 208 X_PM_TMR_BLK
    .gas(0, 0, 0) // 220 X_GPE0_BLK
    .gas(0, 0, 0) // 232 X_GPE1_BLK
    .gas(0, 0, 0) // 244 SLEEP_CONTROL_REG
    .gas(0, 0, 0) // 256 SLEEP_STATUS_REG
    .str('KVMKVMKV', 8) // 268 Hypervisor Vendor Identity
    .done();
  return sdt('FACP', 6, b);
}

/** MADT revision 5: local APIC address, PCAT_COMPAT, per-CPU LAPIC/x2APIC, I/O APIC, overrides, NMI. */
export function buildMadt(t: Topology): Uint8Array {
  const b = new Bytes().u32(LAPIC_ADDR).u32(1 /* PCAT_COMPAT */);
  const ENABLED = 1;
  for (const c of t.cpus) {
    if (c.apicId < 0xff) b.u8(0).u8(8).u8(c.cpu).u8(c.apicId).u32(ENABLED);
    else b.u8(9).u8(16).u16(0).u32(c.apicId).u32(ENABLED).u32(c.cpu);
  }
  b.u8(1).u8(12).u8(0 /* I/O APIC id */).u8(0).u32(IOAPIC_ADDR).u32(0 /* GSI base */);
  b.u8(2).u8(10).u8(0 /* ISA */).u8(0 /* IRQ0 */).u32(2 /* GSI2 */).u16(0 /* conforms */);
  b.u8(2).u8(10).u8(0).u8(SCI_IRQ).u32(SCI_IRQ).u16(0x000f /* active low (3), level (3 << 2) */);
  b.u8(4).u8(6).u8(0xff /* all processors */).u16(0).u8(1 /* LINT1 */);
  if (t.needsX2apic) b.u8(0x0a).u8(12).u16(0).u32(0xffffffff).u8(1).zeros(3);
  return sdt('APIC', 5, b.done());
}

/** RAM split evenly across nodes in address order: per node one or more ranges. */
export function numaMemoryRanges(
  nodes: number,
  memoryMap: readonly MemoryRange[],
): Array<{ node: number; base: number; size: number }> {
  const ALIGN = 2 * 1024 * 1024;
  const ranges = [...memoryMap].filter((r) => r.size > 0).sort((a, b) => a.guestPhysAddr - b.guestPhysAddr);
  const total = ranges.reduce((s, r) => s + r.size, 0);
  if (total === 0) throw new RangeError('ACPI SRAT: the memory map holds no RAM');
  const share = Math.floor(total / nodes / ALIGN) * ALIGN;
  if (nodes > 1 && share < 4 * ALIGN)
    throw new RangeError(`ACPI SRAT: ${total} bytes of RAM are too few for ${nodes} NUMA nodes`);
  const out: Array<{ node: number; base: number; size: number }> = [];
  let node = 0;
  let left = nodes === 1 ? total : share;
  for (const r of ranges) {
    let base = r.guestPhysAddr;
    let size = r.size;
    while (size > 0) {
      const take = node === nodes - 1 ? size : Math.min(size, left);
      out.push({ node, base, size: take });
      base += take;
      size -= take;
      left -= take;
      if (left === 0 && node < nodes - 1) {
        node++;
        left = node === nodes - 1 ? Infinity : share;
      }
    }
  }
  return out;
}

/** SRAT revision 3: processor (x2)APIC affinity per CPU, memory affinity per node range. */
export function buildSrat(t: Topology, memoryMap: readonly MemoryRange[]): Uint8Array {
  const b = new Bytes().u32(1 /* reserved, must be 1 */).u64(0);
  const ENABLED = 1;
  for (const c of t.cpus) {
    if (c.apicId < 0xff) {
      b.u8(0)
        .u8(16)
        .u8(c.node & 0xff)
        .u8(c.apicId)
        .u32(ENABLED)
        .u8(0 /* SAPIC EID */)
        .u8((c.node >>> 8) & 0xff)
        .u8((c.node >>> 16) & 0xff)
        .u8((c.node >>> 24) & 0xff)
        .u32(0 /* clock domain */);
    } else {
      b.u8(2).u8(24).u16(0).u32(c.node).u32(c.apicId).u32(ENABLED).u32(0).u32(0);
    }
  }
  for (const m of numaMemoryRanges(t.numaNodes, memoryMap)) {
    b.u8(1).u8(40).u32(m.node).u16(0).u64(m.base).u64(m.size).u32(0).u32(ENABLED).u64(0);
  }
  return sdt('SRAT', 3, b.done());
}

/** SLIT revision 1: distance[from][to], default 10 local, 20 remote. */
export function buildSlit(nodes: number, distances?: number[][]): Uint8Array {
  const b = new Bytes().u64(nodes);
  for (let i = 0; i < nodes; i++) {
    for (let j = 0; j < nodes; j++) {
      const d = distances ? distances[i]?.[j] : i === j ? 10 : 20;
      if (d === undefined || !Number.isInteger(d) || d < 10 || d > 254 || (i === j && d !== 10)) {
        throw new RangeError(`ACPI SLIT: distance [${i}][${j}] = ${d}: must be 10 on the diagonal, 10..254 elsewhere`);
      }
      b.u8(d);
    }
  }
  return sdt('SLIT', 1, b.done());
}

/**
 * All tables, laid out from `tablesAddress` (default 0xE1000) with the RSDP at `rsdpAddress`
 * (default 0xE0000). Copy every blob to guest memory at its address.
 */
export function buildAcpiTables(o: AcpiOptions): AcpiTables {
  const rsdpAddress = o.rsdpAddress ?? ACPI_RSDP_ADDR;
  const tablesAddress = o.tablesAddress ?? ACPI_TABLES_ADDR;
  if (rsdpAddress % 16 !== 0)
    throw new RangeError(`ACPI: the RSDP address 0x${rsdpAddress.toString(16)} must be 16-byte aligned`);
  const blobs: AcpiBlob[] = [];
  let at = tablesAddress;
  const place = (name: string, bytes: Uint8Array, align = 16): number => {
    at = Math.ceil(at / align) * align;
    const address = at;
    blobs.push({ name, address, bytes });
    at += bytes.length;
    return address;
  };
  const facs = place('FACS', buildFacs(), 64);
  const dsdt = place('DSDT', buildDsdt());
  const fadt = place('FACP', buildFadt({ dsdt, facs, cmosRtc: o.cmosRtc }));
  const madt = place('APIC', buildMadt(o.topology));
  const srat = place('SRAT', buildSrat(o.topology, o.memoryMap));
  const slit = place('SLIT', buildSlit(o.topology.numaNodes, o.distances));
  const xsdt = place('XSDT', buildXsdt([fadt, madt, srat, slit]));
  const rsdp = buildRsdp(xsdt);
  blobs.unshift({ name: 'RSD PTR ', address: rsdpAddress, bytes: rsdp });
  const start = Math.min(...blobs.map((b) => b.address));
  const end = Math.max(...blobs.map((b) => b.address + b.bytes.length));
  for (let i = 0; i < blobs.length; i++) {
    for (let j = i + 1; j < blobs.length; j++) {
      const a = blobs[i],
        b = blobs[j];
      if (a.address < b.address + b.bytes.length && b.address < a.address + a.bytes.length) {
        throw new RangeError(
          `ACPI: ${a.name} at 0x${a.address.toString(16)} overlaps ${b.name} at 0x${b.address.toString(16)}`,
        );
      }
    }
  }
  if (
    rsdpAddress >= ACPI_RSDP_ADDR &&
    rsdpAddress < BIOS_AREA_END &&
    end > BIOS_AREA_END &&
    tablesAddress < BIOS_AREA_END
  ) {
    throw new RangeError(`ACPI: the tables end at 0x${end.toString(16)}, past the BIOS area (0x100000)`);
  }
  return { rsdpAddress, blobs, start, end, numaMemory: numaMemoryRanges(o.topology.numaNodes, o.memoryMap) };
}
