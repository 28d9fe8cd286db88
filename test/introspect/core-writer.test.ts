// The core writer (src/monitor/core-writer.ts + src/cell/core-file.ts): a core written from a
// synthetic guest memory reads back with our own reader (readCoreDump) with the same
// segments, bytes, notes and registers; all-zero pages are holes on disk; bad input is
// refused with nothing left behind; the guest's VMCOREINFO is read through GuestKernel.

import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileSource } from '../../src/elf/file-source.js';
import { ElfFile, bytesSource } from '../../src/elf/file.js';
import { readCoreDump } from '../../src/monitor/core-dump.js';
import { CoreWriteError, guestVmcoreinfo, type CoreCpu, type CoreSegment } from '../../src/monitor/core-writer.js';
import type { GuestKernel } from '../../src/monitor/guest-kernel.js';
import { loadCoreFile } from '../../src/monitor/dump-file.js';
import { writeCoreFile } from '../../src/cell/core-file.js';

const tmp = mkdtempSync(join(tmpdir(), 'ktstr-core-writer-'));
const MiB = 1024 * 1024;

function seg(selector: number, base: bigint): CoreSegment {
  return { selector, base, limit: 0xffffffff, type: 11, s: 1, dpl: 0, present: 1, avl: 0, l: 1, db: 0, g: 1 };
}

function cpu(i: number): CoreCpu {
  const n = BigInt(i);
  const names = [
    'rax',
    'rbx',
    'rcx',
    'rdx',
    'rsi',
    'rdi',
    'rsp',
    'rbp',
    'r8',
    'r9',
    'r10',
    'r11',
    'r12',
    'r13',
    'r14',
    'r15',
    'rip',
    'rflags',
  ] as const;
  const gprs = Object.fromEntries(names.map((r, k) => [r, 0x1000n * n + BigInt(k + 1)])) as CoreCpu['gprs'];
  return {
    gprs,
    segments: {
      cs: seg(0x10, 0n),
      ds: seg(0x18, 0n),
      es: seg(0, 0n),
      fs: seg(0, 0x7f00_0000n + n),
      gs: seg(0, 0xffff_8880_1f00_0000n + n * 0x4_0000n),
      ss: seg(0x18, 0n),
      tr: seg(0x40, 0xfffffe0000003000n),
      ldt: seg(0, 0n),
    },
    gdt: { base: 0xfffffe0000001000n, limit: 127 },
    idt: { base: 0xfffffe0000000000n, limit: 4095 },
    cr0: 0x8005_0033n,
    cr2: 0x1234n,
    cr3: 0x0100_0000n + n * 0x1000n,
    cr4: 0x0037_06f0n,
  };
}

/** 8 MiB in two regions (a hole in guest physical space between them); some pages non-zero. */
function image(): { regions: { pa: number; bytes: Uint8Array }[]; nonZero: number } {
  const low = new Uint8Array(4 * MiB);
  const high = new Uint8Array(4 * MiB);
  let nonZero = 0;
  for (let p = 0; p < 4 * MiB; p += 4096) {
    if ((p / 4096) % 7 === 0) {
      low.fill(0xa5 ^ (p >> 12), p, p + 4096);
      nonZero++;
    }
  }
  high[3 * 4096 + 17] = 1; // one byte makes the page non-zero
  nonZero++;
  return {
    regions: [
      { pa: 0, bytes: low },
      { pa: 16 * MiB, bytes: high },
    ],
    nonZero,
  };
}

test('a written core reads back: segments, bytes, VMCOREINFO, per-CPU control registers', () => {
  const img = image();
  const path = join(tmp, 'guest.core');
  const vmcoreinfo = 'OSRELEASE=6.12.117\nKERNELOFFSET=1a000000\nNUMBER(phys_base)=0\n';
  const stats = writeCoreFile(path, { regions: img.regions, cpus: [cpu(0), cpu(1), null], vmcoreinfo });
  assert.is(stats.pages, 2048);
  assert.is(stats.zeroPages, 2048 - img.nonZero);
  assert.is(statSync(path).size, stats.fileBytes);
  const fd = openSync(path, 'r');
  try {
    const dump = readCoreDump(fileSource(fd, path), path);
    assert.equal(
      dump.segments.map((s) => [s.pa, s.size]),
      [
        [0, 4 * MiB],
        [16 * MiB, 4 * MiB],
      ],
    );
    assert.ok(
      dump.segments.every((s) => s.fileOffset % 4096 === 0),
      'segment data is page-aligned in the file',
    );
    assert.is(dump.vmcoreinfo?.osRelease, '6.12.117');
    assert.is(dump.vmcoreinfo?.kernelOffset, 0x1a000000n);
    assert.is(dump.cpus.length, 3, 'one QEMU note per vCPU');
    assert.is(dump.cpus[1].cr3, 0x0100_1000n);
    assert.is(dump.cpus[0].cr0, 0x8005_0033n);
    assert.is(dump.cpus[0].cr4, 0x0037_06f0n);
    assert.is(dump.cpus[2].cr3, 0n, 'an unknown vCPU has zeros');
    const file = readFileSync(path);
    for (const [i, s] of dump.segments.entries()) {
      assert.ok(
        Buffer.from(img.regions[i].bytes).equals(file.subarray(s.fileOffset, s.fileOffset + s.size)),
        `segment ${i}: the bytes`,
      );
    }
  } finally {
    closeSync(fd);
  }
});

test('NT_PRSTATUS per vCPU: pid index + 1, user_regs_struct order, fs/gs bases; QEMU note segment bases', () => {
  const path = join(tmp, 'regs.core');
  writeCoreFile(path, { regions: image().regions, cpus: [cpu(0), cpu(1)], vmcoreinfo: null });
  const file = readFileSync(path);
  const elf = new ElfFile(bytesSource(new Uint8Array(file.buffer, file.byteOffset, file.length)), path);
  const notes = elf.notes();
  assert.equal(
    notes.map((n) => `${n.name}/${n.type}`),
    ['CORE/1', 'CORE/1', 'QEMU/0', 'QEMU/0'],
    'no VMCOREINFO note when there is none',
  );
  const pr = notes[1].desc;
  assert.is(pr.length, 336);
  const v = new DataView(pr.buffer, pr.byteOffset, pr.length);
  assert.is(v.getUint32(32, true), 2, 'pr_pid');
  const reg = (k: number): bigint => v.getBigUint64(112 + k * 8, true);
  const c = cpu(1);
  assert.is(reg(0), c.gprs.r15);
  assert.is(reg(10), c.gprs.rax);
  assert.is(reg(16), c.gprs.rip);
  assert.is(reg(17), 0x10n, 'cs selector');
  assert.is(reg(18), c.gprs.rflags);
  assert.is(reg(19), c.gprs.rsp);
  assert.is(reg(21), c.segments.fs.base, 'fs_base');
  assert.is(reg(22), c.segments.gs.base, 'gs_base');
  const q = notes[3].desc;
  const qv = new DataView(q.buffer, q.byteOffset, q.length);
  assert.is(qv.getUint32(0, true), 1, 'QEMUCPUState version');
  assert.is(qv.getUint32(4, true), q.length, 'QEMUCPUState size');
  assert.is(qv.getBigUint64(8 + 16 * 8, true), c.gprs.rip, 'rip after the 16 GPRs');
  const gsAt = 8 + 18 * 8 + 4 * 24; // cs ds es fs gs
  assert.is(qv.getBigUint64(gsAt + 16, true), c.segments.gs.base, 'gs base in the QEMU note');
  assert.is(qv.getUint32(gsAt + 8, true) & (1 << 21), 1 << 21, 'the L bit in the segment flags');
});

test("all-zero pages are holes: the disk holds about the non-zero pages; inspect's loader reads zeros there", () => {
  const big = new Uint8Array(64 * MiB);
  for (let p = 0; p < 4 * MiB; p += 4096) big[p + 100] = 7; // 4 MiB of 64 touched
  const path = join(tmp, 'sparse.core');
  const stats = writeCoreFile(path, { regions: [{ pa: 0, bytes: big }], cpus: [cpu(0)], vmcoreinfo: null });
  const st = statSync(path);
  assert.is(st.size, stats.fileBytes);
  assert.ok(st.size > 64 * MiB, 'apparent size covers all of memory');
  assert.is(stats.diskBytes, st.blocks * 512);
  assert.ok(
    st.blocks * 512 < 6 * MiB,
    `on disk ${st.blocks * 512} bytes for 4 MiB of non-zero pages (holes elsewhere)`,
  );
  assert.ok(st.blocks * 512 >= 4 * MiB, 'the non-zero pages are really there');
  const loaded = loadCoreFile(path);
  assert.equal(
    [...(loaded.intro.readPhysBytes(4 * 4096 + 99, 3) ?? [])],
    [0, 7, 0],
    'a written byte reads back through the introspector',
  );
  assert.equal([...(loaded.intro.readPhysBytes(40 * MiB, 4) ?? [9])], [0, 0, 0, 0], 'a hole reads as zero');
});

test('bad input is refused and leaves no file behind', () => {
  const before = readdirSync(tmp).sort();
  const cases: [string, () => void][] = [
    ['no region', () => writeCoreFile(join(tmp, 'bad1.core'), { regions: [], cpus: [], vmcoreinfo: null })],
    [
      'unaligned size',
      () =>
        writeCoreFile(join(tmp, 'bad2.core'), {
          regions: [{ pa: 0, bytes: new Uint8Array(5000) }],
          cpus: [],
          vmcoreinfo: null,
        }),
    ],
    [
      'overlap',
      () =>
        writeCoreFile(join(tmp, 'bad3.core'), {
          regions: [
            { pa: 0, bytes: new Uint8Array(8192) },
            { pa: 4096, bytes: new Uint8Array(4096) },
          ],
          cpus: [],
          vmcoreinfo: null,
        }),
    ],
  ];
  for (const [what, f] of cases) assert.throws(f, (e: unknown) => e instanceof CoreWriteError, what);
  assert.equal(readdirSync(tmp).sort(), before, 'no core and no temporary file');
});

test('guestVmcoreinfo: the text at vmcoreinfo_data, vmcoreinfo_size long; clear errors otherwise', () => {
  const text = 'OSRELEASE=6.12.117-sched_ext\nPAGESIZE=4096\nKERNELOFFSET=2e000000\n';
  const mem = new Map<bigint, bigint>([
    [0xffffffff83166f60n, 0xffff888004000000n],
    [0xffffffff83166f58n, BigInt(text.length)],
  ]);
  const stub = (symbols: string[], m: Map<bigint, bigint>, bytes: Uint8Array | null): GuestKernel =>
    ({
      hasSymbol: (s: string) => symbols.includes(s),
      symbolKva: (s: string) => (s === 'vmcoreinfo_data' ? 0xffffffff83166f60n : 0xffffffff83166f58n),
      read64: (k: bigint) => m.get(k) ?? null,
      readBytes: (k: bigint, n: number) => (k === 0xffff888004000000n && bytes !== null ? bytes.subarray(0, n) : null),
    }) as unknown as GuestKernel;
  const both = ['vmcoreinfo_data', 'vmcoreinfo_size'];
  assert.is(guestVmcoreinfo(stub(both, mem, new TextEncoder().encode(text + '\0junk'))), text);
  const err = (g: GuestKernel): string => {
    try {
      guestVmcoreinfo(g);
      return 'no error';
    } catch (e) {
      assert.instance(e, CoreWriteError);
      return (e as Error).message;
    }
  };
  assert.match(err(stub(['vmcoreinfo_size'], mem, null)), /no vmcoreinfo_data/);
  assert.match(
    err(
      stub(
        both,
        new Map([
          [0xffffffff83166f60n, 0n],
          [0xffffffff83166f58n, 0n],
        ]),
        null,
      ),
    ),
    /not filled/,
  );
  assert.match(err(stub(both, mem, null)), /not mapped/);
  assert.match(err(stub(both, mem, new TextEncoder().encode('x'.repeat(text.length)))), /not VMCOREINFO/);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
