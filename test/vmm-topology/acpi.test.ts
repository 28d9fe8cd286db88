// ACPI tables: checksums, lengths, field offsets, placement, and `iasl -d` as an oracle when
// acpica-tools is installed (skipped with a printed reason otherwise).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ACPI_RSDP_ADDR,
  ACPI_S5_SLP_TYP,
  PM1A_CNT_PORT,
  PM1A_EVT_PORT,
  S5_AML,
  buildAcpiTables,
  buildDsdt,
  buildSlit,
  isPowerOffWrite,
  numaMemoryRanges,
  type AcpiTables,
} from '../../src/vmm/acpi/index.js';
import { Topology, resolveTopology } from '../../src/vmm/topology/index.js';
import { eisaId, integer, name, pkg, pkgLength, scope, uartDevice } from '../../src/vmm/acpi/aml.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** As src/vmm/memory.ts ramLayout lays RAM out: below the 3 GiB PCI hole, the rest from 4 GiB. */
function ram(bytes: number): Array<{ guestPhysAddr: number; size: number }> {
  const low = Math.min(bytes, 3 * GiB);
  return bytes > low
    ? [
        { guestPhysAddr: 0, size: low },
        { guestPhysAddr: 4 * GiB, size: bytes - low },
      ]
    : [{ guestPhysAddr: 0, size: low }];
}

const sum = (b: Uint8Array, start = 0, end = b.length): number => {
  let s = 0;
  for (let i = start; i < end; i++) s = (s + b[i]) & 0xff;
  return s;
};
const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
const sig = (b: Uint8Array): string => Buffer.from(b.subarray(0, 4)).toString('latin1');
function blob(t: AcpiTables, name: string): { address: number; bytes: Uint8Array } {
  const b = t.blobs.find((x) => x.name === name);
  if (!b) throw new Error(`no ${name}`);
  return b;
}

/** Subtables of MADT (from 44) or SRAT (from 48): [type, offset, length]. */
function subtables(b: Uint8Array, from: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (let o = from; o < b.length; o += b[o + 1]) {
    assert.ok(b[o + 1] > 0, 'subtable length');
    out.push([b[o], o, b[o + 1]]);
  }
  return out;
}

function build(name: string): { t: Topology; tables: AcpiTables } {
  const { topology, preset } = resolveTopology(name);
  return { t: topology, tables: buildAcpiTables({ topology, memoryMap: ram(preset!.memoryMiB * MiB) }) };
}

test('every table: signature, length and checksum; RSDP -> XSDT -> tables', () => {
  const { tables } = build('numa2-4llc');
  const rsdp = blob(tables, 'RSD PTR ');
  assert.is(rsdp.address, ACPI_RSDP_ADDR);
  assert.is(tables.rsdpAddress, ACPI_RSDP_ADDR);
  assert.is(rsdp.bytes.length, 36);
  assert.is(Buffer.from(rsdp.bytes.subarray(0, 8)).toString('latin1'), 'RSD PTR ');
  assert.is(sum(rsdp.bytes, 0, 20), 0, 'RSDP checksum');
  assert.is(sum(rsdp.bytes), 0, 'RSDP extended checksum');
  assert.is(rsdp.bytes[15], 2, 'revision 2');
  assert.is(dv(rsdp.bytes).getUint32(20, true), 36);
  const xsdtAddr = Number(dv(rsdp.bytes).getBigUint64(24, true));
  const xsdt = tables.blobs.find((b) => b.address === xsdtAddr)!;
  assert.is(sig(xsdt.bytes), 'XSDT');
  for (const b of tables.blobs.filter((x) => x.name !== 'RSD PTR ' && x.name !== 'FACS')) {
    assert.is(sig(b.bytes), b.name);
    assert.is(dv(b.bytes).getUint32(4, true), b.bytes.length, `${b.name} length`);
    assert.is(sum(b.bytes), 0, `${b.name} checksum`);
    assert.is(b.address % 16, 0);
  }
  const n = (xsdt.bytes.length - 36) / 8;
  const listed = Array.from({ length: n }, (_, i) => Number(dv(xsdt.bytes).getBigUint64(36 + 8 * i, true)));
  assert.equal(
    listed.map((a) => tables.blobs.find((b) => b.address === a)!.name),
    ['FACP', 'APIC', 'SRAT', 'SLIT'],
  );
  const facs = blob(tables, 'FACS');
  assert.is(facs.address % 64, 0, 'FACS 64-byte aligned');
  assert.is(sig(facs.bytes), 'FACS');
  assert.is(dv(facs.bytes).getUint32(4, true), 64);
  assert.ok(tables.start >= 0xe0000 && tables.end <= 0x100000, 'all in the BIOS area');
});

test('FADT: revision 6, 276 bytes, DSDT/FACS pointers, PM1a ports, SCI, reset register', () => {
  const { tables } = build('tiny-1llc');
  const f = blob(tables, 'FACP').bytes;
  const v = dv(f);
  assert.is(f.length, 276);
  assert.is(f[8], 6);
  assert.is(v.getUint32(36, true), blob(tables, 'FACS').address, 'FIRMWARE_CTRL');
  assert.is(v.getUint32(40, true), blob(tables, 'DSDT').address, 'DSDT');
  assert.is(Number(v.getBigUint64(140, true)), blob(tables, 'DSDT').address, 'X_DSDT');
  assert.is(v.getUint16(46, true), 9, 'SCI_INT');
  assert.is(v.getUint32(48, true), 0, 'SMI_CMD: none');
  assert.is(v.getUint32(56, true), PM1A_EVT_PORT);
  assert.is(v.getUint32(64, true), PM1A_CNT_PORT);
  assert.is(v.getUint32(76, true), 0, 'no PM timer');
  assert.is(f[88], 4);
  assert.is(f[89], 2);
  assert.is(f[91], 0);
  assert.is(v.getUint32(112, true) & (1 << 20), 0, 'not hardware-reduced');
  assert.ok(v.getUint32(112, true) & (1 << 10), 'RESET_REG_SUP');
  assert.equal([f[116], f[117], Number(v.getBigUint64(120, true)), f[128]], [1, 8, 0xcf9, 6], 'reset: I/O 0xCF9 <- 6');
  assert.equal([f[148], f[149], Number(v.getBigUint64(152, true))], [1, 32, PM1A_EVT_PORT], 'X_PM1a_EVT_BLK');
  assert.equal([f[172], f[173], Number(v.getBigUint64(176, true))], [1, 16, PM1A_CNT_PORT], 'X_PM1a_CNT_BLK');
  assert.ok(v.getUint16(109, true) & (1 << 5), 'no CMOS RTC by default');
  assert.is(v.getUint16(109, true) & (1 << 1), 0, 'no 8042');
  const withRtc = buildAcpiTables({ topology: new Topology('1n1l1c1t'), memoryMap: ram(256 * MiB), cmosRtc: true });
  assert.is(dv(blob(withRtc, 'FACP').bytes).getUint16(109, true) & (1 << 5), 0);
});

test('DSDT: the \\_S5 package and the power-off write', () => {
  const { tables } = build('tiny-1llc');
  const d = blob(tables, 'DSDT').bytes;
  assert.equal(
    [...d.subarray(36, 36 + S5_AML.length)],
    [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 5, 0x0a, 5, 0, 0],
  );
  assert.equal(
    S5_AML,
    name('_S5', pkg([integer(5), integer(5), integer(0), integer(0)])),
    'the encoder spells \\_S5 the same way',
  );
  // then Scope (\_SB) with the two UARTs, and nothing else
  const rest = d.subarray(36 + S5_AML.length);
  assert.equal(rest, scope('\\_SB', [uartDevice('COM1', 1, 0x3f8, 4), uartDevice('COM2', 2, 0x2f8, 3)]));
  assert.is(d.length, 36 + S5_AML.length + rest.length);
  assert.is(buildDsdt([]).length, 36 + S5_AML.length, 'no UARTs: only \\_S5');
  assert.ok(isPowerOffWrite((ACPI_S5_SLP_TYP << 10) | (1 << 13) | 1));
  assert.not.ok(isPowerOffWrite(ACPI_S5_SLP_TYP << 10), 'SLP_TYP alone (ACPICA write #1) is not yet power-off');
  assert.not.ok(isPowerOffWrite((1 << 10) | (1 << 13)), 'another sleep type');
});

test('MADT: one enabled LAPIC per vCPU in topology order, I/O APIC, overrides, NMI', () => {
  const { t, tables } = build('smt-2llc');
  const m = blob(tables, 'APIC').bytes;
  const v = dv(m);
  assert.is(m[8], 5);
  assert.is(v.getUint32(36, true), 0xfee00000);
  assert.is(v.getUint32(40, true), 1, 'PCAT_COMPAT');
  const subs = subtables(m, 44);
  const lapics = subs.filter(([type]) => type === 0);
  assert.is(lapics.length, t.numCpus);
  lapics.forEach(([, o, len], i) => {
    assert.is(len, 8);
    assert.is(m[o + 2], i, 'ACPI UID = CPU number');
    assert.is(m[o + 3], t.cpus[i].apicId);
    assert.is(v.getUint32(o + 4, true), 1, 'enabled');
  });
  const [[, io, ioLen]] = subs.filter(([type]) => type === 1);
  assert.is(ioLen, 12);
  assert.is(v.getUint32(io + 4, true), 0xfec00000);
  assert.is(v.getUint32(io + 8, true), 0, 'GSI base');
  const isos = subs
    .filter(([type]) => type === 2)
    .map(([, o]) => [m[o + 2], m[o + 3], v.getUint32(o + 4, true), v.getUint16(o + 8, true)]);
  assert.equal(isos, [
    [0, 0, 2, 0],
    [0, 9, 9, 0xf],
  ]);
  const nmi = subs.find(([type]) => type === 4)!;
  assert.equal([m[nmi[1] + 2], m[nmi[1] + 5]], [0xff, 1], 'all CPUs, LINT1');
});

test('MADT and SRAT: x2APIC entries for APIC IDs >= 255 (max-cpu)', () => {
  const { t, tables } = build('max-cpu');
  const m = blob(tables, 'APIC').bytes;
  const subs = subtables(m, 44);
  const big = t.cpus.filter((c) => c.apicId >= 255);
  assert.ok(big.length > 0);
  const x2 = subs.filter(([type]) => type === 9);
  assert.is(x2.length, big.length);
  assert.is(subs.filter(([type]) => type === 0).length, t.numCpus - big.length);
  assert.equal(
    x2.map(([, o]) => dv(m).getUint32(o + 4, true)),
    big.map((c) => c.apicId),
  );
  assert.equal(
    x2.map(([, o]) => dv(m).getUint32(o + 12, true)),
    big.map((c) => c.cpu),
    'UIDs continue the CPU numbers',
  );
  const s = blob(tables, 'SRAT').bytes;
  const ss = subtables(s, 48);
  assert.is(ss.filter(([type]) => type === 2).length, big.length);
  assert.is(ss.filter(([type]) => type === 0).length, t.numCpus - big.length);
});

test('SRAT: CPU proximity domains and memory split across nodes around the PCI hole', () => {
  const { t, tables } = build('numa4-12llc'); // 12 GiB over 4 nodes
  const s = blob(tables, 'SRAT').bytes;
  const v = dv(s);
  assert.is(s[8], 3);
  assert.is(v.getUint32(36, true), 1);
  const subs = subtables(s, 48);
  const cpus = subs.filter(([type]) => type === 0);
  assert.is(cpus.length, 192);
  cpus.forEach(([, o, len], i) => {
    assert.is(len, 16);
    assert.is(s[o + 2] | (s[o + 9] << 8), t.cpus[i].node);
    assert.is(s[o + 3], t.cpus[i].apicId);
    assert.is(v.getUint32(o + 4, true), 1);
  });
  const mem = subs
    .filter(([type]) => type === 1)
    .map(([, o, len]) => {
      assert.is(len, 40);
      assert.is(v.getUint32(o + 28, true), 1, 'enabled');
      return [
        v.getUint32(o + 2, true),
        Number(v.getBigUint64(o + 8, true)) / GiB,
        Number(v.getBigUint64(o + 16, true)) / GiB,
      ];
    });
  assert.equal(mem, [
    [0, 0, 3],
    [1, 4, 3],
    [2, 7, 3],
    [3, 10, 3],
  ]);
  assert.equal(
    numaMemoryRanges(2, ram(5 * GiB)).map((r) => [r.node, r.base / GiB, r.size / GiB]),
    [
      [0, 0, 2.5],
      [1, 2.5, 0.5],
      [1, 4, 2],
    ],
  );
  assert.equal(
    numaMemoryRanges(2, ram(1 * GiB)).map((r) => [r.node, r.base / MiB, r.size / MiB]),
    [
      [0, 0, 512],
      [1, 512, 512],
    ],
  );
  assert.equal(
    numaMemoryRanges(3, ram(1000 * MiB)).map((r) => [r.node, r.size / MiB]),
    [
      [0, 332],
      [1, 332],
      [2, 336],
    ],
  );
});

test('SLIT: 10 local, 20 remote; custom distances validated', () => {
  const { tables } = build('numa4-8llc');
  const s = blob(tables, 'SLIT').bytes;
  assert.is(Number(dv(s).getBigUint64(36, true)), 4);
  assert.equal([...s.subarray(44)], [10, 20, 20, 20, 20, 10, 20, 20, 20, 20, 10, 20, 20, 20, 20, 10]);
  assert.equal(
    [
      ...buildSlit(2, [
        [10, 15],
        [15, 10],
      ]).subarray(44),
    ],
    [10, 15, 15, 10],
  );
  assert.throws(
    () =>
      buildSlit(2, [
        [10, 5],
        [5, 10],
      ]),
    /distance \[0\]\[1\] = 5/,
  );
});

function iasl(): string | undefined {
  const r = spawnSync('iasl', ['-v'], { encoding: 'utf8' });
  return r.error ? undefined : 'iasl';
}

test('AML encoder: PkgLength forms, EISA IDs, integers, bad input', () => {
  assert.equal(pkgLength(0), Uint8Array.of(1));
  assert.equal(pkgLength(62), Uint8Array.of(63));
  // 63 body bytes: 2-byte form, total 65 = 0x41 -> lead (1 << 6) | 1, then 0x41 >> 4 = 4
  assert.equal(pkgLength(63), Uint8Array.of(0x41, 0x04));
  // 5000 body bytes: 3-byte form, total 5003 = 0x138B -> lead (2 << 6) | 0xB, then 0x38, 0x01
  assert.equal(pkgLength(5000), Uint8Array.of(0x8b, 0x38, 0x01));
  assert.equal(eisaId('PNP0501'), Uint8Array.of(0x0c, 0x41, 0xd0, 0x05, 0x01));
  assert.equal(integer(0), Uint8Array.of(0));
  assert.equal(integer(0x1234), Uint8Array.of(0x0b, 0x34, 0x12));
  assert.throws(() => eisaId('pnp0501'), /bad EISA ID/);
  assert.throws(() => name('lower', integer(1)), /bad name segment/);
  assert.throws(() => integer(-1), /out of range/);
});

test('iasl -d oracle: every table disassembles cleanly with the expected counts', () => {
  if (!iasl()) {
    console.log('  (skipped the iasl oracle: iasl not found; apt-get install -y acpica-tools)');
    return;
  }
  for (const name of ['tiny-1llc', 'numa2-4llc', 'max-cpu']) {
    const { t, tables } = build(name);
    const dir = mkdtempSync(join(tmpdir(), 'ktstr-acpi-'));
    try {
      for (const b of tables.blobs) {
        if (b.name === 'RSD PTR ') continue; // iasl -d takes no RSDP; checked by hand above
        const file = join(dir, `${b.name}.dat`);
        writeFileSync(file, b.bytes);
        const r = spawnSync('iasl', ['-d', file], { encoding: 'utf8', cwd: dir });
        assert.is(r.status, 0, `${name} ${b.name}: iasl -d failed: ${r.stdout}${r.stderr}`);
        const dsl = readFileSync(join(dir, `${b.name}.dsl`), 'utf8');
        assert.not.match(dsl, /\*\*\*\*|Invalid|Error/i, `${name} ${b.name}: iasl complains:\n${dsl}`);
        if (b.name === 'APIC') {
          assert.is(
            (dsl.match(/\[Processor Local APIC\]/g) ?? []).length +
              (dsl.match(/\[Processor Local x2APIC\]/g) ?? []).length,
            t.numCpus,
          );
          assert.is((dsl.match(/\[I\/O APIC\]/g) ?? []).length, 1);
        }
        if (b.name === 'SRAT') {
          assert.is(
            (dsl.match(/\[Processor Local APIC\/SAPIC Affinity\]/g) ?? []).length +
              (dsl.match(/\[Processor Local x2APIC Affinity\]/g) ?? []).length,
            t.numCpus,
          );
          const domains = new Set([...dsl.matchAll(/Proximity Domain : ([0-9A-F]+)/g)].map((m) => parseInt(m[1], 16)));
          assert.is(domains.size, t.numaNodes);
        }
        if (b.name === 'SLIT')
          assert.match(dsl, new RegExp(`Localities : ${t.numaNodes.toString(16).toUpperCase().padStart(16, '0')}`));
        if (b.name === 'DSDT') {
          assert.match(dsl, /Name \(_S5, Package \(0x04\)/);
          assert.is((dsl.match(/EisaId \("PNP0501"\)/g) ?? []).length, 2, 'COM1 and COM2');
          assert.match(dsl, /Device \(COM1\)[\s\S]*0x03F8,\s+\/\/ Range Minimum[\s\S]*IRQNoFlags \(\)\s+\{4\}/);
          assert.match(dsl, /Device \(COM2\)[\s\S]*0x02F8,\s+\/\/ Range Minimum[\s\S]*IRQNoFlags \(\)\s+\{3\}/);
        }
        if (b.name === 'FACP') assert.match(dsl, /PM1A Control Block Address : 00000604/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test.run();
