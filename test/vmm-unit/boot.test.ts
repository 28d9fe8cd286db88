// Boot-core host checks (no KVM): bzImage/vmlinux validation fails with a clear error
// before any VM exists, placement of kernel/initrd, the e820 map and boot_params fields,
// the RAM layout around the PCI hole.

import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BOOT_LAYOUT,
  BP,
  BootImageError,
  e820Map,
  loadBootFiles,
  placeBoot,
  writeBoot,
  E820_RAM,
  E820_RESERVED,
} from '../../src/vmm/boot/index.js';
import { HDR, parseBzImage } from '../../src/vmm/boot/bzimage.js';
import { parseVmlinux, parseVmlinuxFile } from '../../src/vmm/boot/elf.js';
import { GUEST_BASE, GuestMemory, HIGH_RAM_START, PCI_HOLE_START, ramLayout } from '../../src/vmm/memory.js';

const MiB = 1024 * 1024;

/** A synthetic bzImage: setup header per boot.rst, `kernelBytes` of protected-mode kernel. */
function fakeBzImage(
  o: { version?: number; kernelBytes?: number; setupSects?: number; xloadflags?: number } = {},
): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const kernelBytes = o.kernelBytes ?? 0x4000;
  const b = new Uint8Array((setupSects + 1) * 512 + kernelBytes);
  const dv = new DataView(b.buffer);
  b[HDR.setup_sects] = setupSects;
  dv.setUint32(HDR.syssize, kernelBytes / 16, true);
  dv.setUint16(HDR.boot_flag, 0xaa55, true);
  b[0x201] = 0x62; // header ends at 0x264
  dv.setUint32(HDR.header, 0x53726448, true);
  dv.setUint16(HDR.version, o.version ?? 0x20f, true);
  b[HDR.loadflags] = 1;
  dv.setUint32(HDR.initrd_addr_max, 0x7fffffff, true);
  dv.setUint32(HDR.kernel_alignment, 0x200000, true);
  b[HDR.relocatable_kernel] = 1;
  dv.setUint16(HDR.xloadflags, o.xloadflags ?? 0x7f, true);
  dv.setUint32(HDR.cmdline_size, 2047, true);
  dv.setBigUint64(HDR.pref_address, 0x1000000n, true);
  dv.setUint32(HDR.init_size, 0x800000, true);
  return b;
}

/** A synthetic vmlinux: ELF64 with one PT_LOAD at paddr 16 MiB, vaddr in the kernel map. */
function fakeVmlinux(o: { truncate?: number; entryVirtual?: boolean } = {}): Uint8Array {
  const b = new Uint8Array(0x2000);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 2, true);
  dv.setUint16(18, 62, true);
  const vaddr = 0xffffffff81000000n;
  dv.setBigUint64(24, o.entryVirtual ? vaddr + 0x40n : 0x1000040n, true);
  dv.setBigUint64(32, 64n, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, 1, true);
  const ph = 64;
  dv.setUint32(ph, 1, true);
  dv.setBigUint64(ph + 8, 0x1000n, true);
  dv.setBigUint64(ph + 16, vaddr, true);
  dv.setBigUint64(ph + 24, 0x1000000n, true);
  dv.setBigUint64(ph + 32, 0x1000n, true);
  dv.setBigUint64(ph + 40, 0x3000n, true);
  return o.truncate ? b.subarray(0, o.truncate) : b;
}

const throwsBoot = (fn: () => unknown, re: RegExp): void => {
  try {
    fn();
  } catch (e) {
    assert.instance(e, BootImageError);
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable('expected a BootImageError');
};

test('bzImage setup header parsed', () => {
  const k = parseBzImage(fakeBzImage());
  assert.is(k.version, 0x20f);
  assert.is(k.kernel.length, 0x4000);
  assert.is(k.kernelAlignment, 0x200000);
  assert.is(k.setupHeader.length, 0x264 - 0x1f1);
});

test('corrupt and truncated bzImages are refused with the reason', () => {
  throwsBoot(() => parseBzImage(fakeBzImage().subarray(0, 0x100)), /truncated bzImage/);
  const noMagic = fakeBzImage();
  noMagic[0x202] = 0;
  throwsBoot(() => parseBzImage(noMagic), /HdrS/);
  throwsBoot(() => parseBzImage(fakeBzImage({ version: 0x204 })), /older than 2\.06/);
  throwsBoot(() => parseBzImage(fakeBzImage({ xloadflags: 0 })), /64-bit entry/);
  throwsBoot(() => parseBzImage(fakeBzImage().subarray(0, 5 * 512 + 0x100)), /truncated bzImage/);
  throwsBoot(() => loadBootFiles({ kernel: new Uint8Array(16), cmdline: '' }), /not a kernel image/);
});

test('vmlinux: PT_LOAD at p_paddr, entry physical either way; truncation refused', () => {
  const v = parseVmlinux(fakeVmlinux());
  assert.is(v.entry, 0x1000040);
  assert.is(v.low, 0x1000000);
  assert.is(v.high, 0x1003000);
  assert.is(parseVmlinux(fakeVmlinux({ entryVirtual: true })).entry, 0x1000040);
  throwsBoot(() => parseVmlinux(fakeVmlinux({ truncate: 40 })), /truncated ELF header/);
  throwsBoot(() => parseVmlinux(fakeVmlinux({ truncate: 0x1800 })), /truncated ELF: PT_LOAD 0/);
});

test('vmlinux file: headers checked up front, segments read into guest RAM by writeBoot; a file that changes size is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-vmlinux-'));
  try {
    const bytes = fakeVmlinux();
    for (let i = 0x1000; i < 0x2000; i++) bytes[i] = (i * 7) & 0xff;
    const path = join(dir, 'vmlinux');
    writeFileSync(path, bytes);
    const files = loadBootFiles({ kernel: path, cmdline: 'console=ttyS0' });
    assert.is(files.kernel.kind, 'elf');
    const mem = new GuestMemory(64 * MiB);
    mem.fill(0x1000000, 0x3000, 0xaa);
    writeBoot(mem, files);
    assert.equal([...mem.read(0x1000000, 0x1000)], [...bytes.subarray(0x1000, 0x2000)], 'p_filesz bytes from the file');
    assert.ok(
      mem.read(0x1001000, 0x2000).every((b) => b === 0),
      'bss zeroed up to p_memsz',
    );
    assert.equal(parseVmlinuxFile(path).segments, parseVmlinux(bytes).segments, 'same plan as from memory');
    appendFileSync(path, 'x');
    throwsBoot(() => writeBoot(new GuestMemory(64 * MiB), files), /changed while booting/);
    writeFileSync(path, bytes.subarray(0, 0x1800));
    throwsBoot(() => loadBootFiles({ kernel: path, cmdline: '' }), /truncated ELF: PT_LOAD 0/);
    writeFileSync(path, bytes.subarray(0, 3));
    throwsBoot(() => loadBootFiles({ kernel: path, cmdline: '' }), /not a kernel image/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('missing kernel or initrd: clear error, before any VM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-boot-'));
  try {
    const k = join(dir, 'bzImage');
    writeFileSync(k, fakeBzImage());
    throwsBoot(() => loadBootFiles({ kernel: join(dir, 'nope'), cmdline: '' }), /kernel not found/);
    throwsBoot(
      () => loadBootFiles({ kernel: k, initrd: join(dir, 'initrd.cpio'), cmdline: '' }),
      /initrd\.cpio: initrd not found/,
    );
    writeFileSync(join(dir, 'empty'), '');
    throwsBoot(() => loadBootFiles({ kernel: k, initrd: join(dir, 'empty'), cmdline: '' }), /initrd is empty/);
    throwsBoot(() => loadBootFiles({ kernel: k, cmdline: 'x'.repeat(5000) }), /command line/);
    assert.is(loadBootFiles({ kernel: k, cmdline: 'console=ttyS0' }).kernel.kind, 'bzimage');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('RAM layout: one slot up to 3 GiB, the rest at 4 GiB', () => {
  assert.equal(ramLayout(256 * MiB), [{ guestPhysAddr: 0, size: 256 * MiB, offset: GUEST_BASE }]);
  const r = ramLayout(3584 * MiB);
  assert.is(r.length, 2);
  assert.equal(r[1], { guestPhysAddr: HIGH_RAM_START, size: 512 * MiB, offset: GUEST_BASE + PCI_HOLE_START });
  assert.throws(() => ramLayout(4096 * MiB), /exceeds/);
  assert.throws(() => ramLayout(1000), /multiple of 64 KiB/);
});

test('e820: RAM below the EBDA, reserved to 1 MiB, RAM above; high RAM at 4 GiB', () => {
  const map = e820Map({ regions: ramLayout(3584 * MiB) });
  assert.equal(map, [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
    { addr: 0x100000, size: PCI_HOLE_START - 0x100000, type: E820_RAM },
    { addr: HIGH_RAM_START, size: 512 * MiB, type: E820_RAM },
  ]);
});

test('boot_params: header copied, loader fields, cmdline, initrd high and below initrd_addr_max', () => {
  const mem = new GuestMemory(128 * MiB);
  const initrd = new Uint8Array(3 * MiB).fill(7);
  const files = loadBootFiles({ kernel: fakeBzImage(), initrd, cmdline: 'console=ttyS0 quiet' });
  const st = writeBoot(mem, files);
  const bp = BOOT_LAYOUT.bootParams;
  assert.is(st.entry, 0x100000 + 0x200);
  assert.is(mem.readU32(bp + HDR.header), 0x53726448);
  assert.is(mem.read(bp + HDR.type_of_loader, 1)[0], 0xff);
  assert.is(mem.readU32(bp + HDR.cmd_line_ptr), BOOT_LAYOUT.cmdline);
  assert.is(Buffer.from(mem.read(BOOT_LAYOUT.cmdline, 19)).toString(), 'console=ttyS0 quiet');
  const ird = mem.readU32(bp + HDR.ramdisk_image);
  assert.is(mem.readU32(bp + HDR.ramdisk_size), initrd.length);
  assert.ok(ird >= st.placement.kernelEnd && ird + initrd.length <= 128 * MiB, `initrd at 0x${ird.toString(16)}`);
  assert.is(ird % 4096, 0);
  assert.is(mem.read(ird, 1)[0], 7);
  assert.is(mem.read(bp + BP.e820_entries, 1)[0], 3);
  // identity map: PD entry for 2 MiB points at 2 MiB with PS
  assert.is(mem.readU64(BOOT_LAYOUT.pd + 8), 0x200000n | 0x83n);
  // the guest sees it at GUEST_BASE + pa in the WASM memory
  assert.is(new DataView(mem.buffer).getUint32(GUEST_BASE + bp + HDR.header, true), 0x53726448);
});

test('initrd that does not fit: clear error', () => {
  const files = loadBootFiles({ kernel: fakeBzImage(), initrd: new Uint8Array(60 * MiB), cmdline: '' });
  throwsBoot(() => placeBoot(files, 64 * MiB), /does not fit/);
});

const KERNEL = '/work/shared/kernels/6.12.117-sched_ext';
test('real kernels parse (when present)', () => {
  if (!existsSync(join(KERNEL, 'bzImage'))) {
    console.log('  (skipped: no sched_ext kernel)');
    return;
  }
  const bz = parseBzImage(readFileSync(join(KERNEL, 'bzImage')));
  assert.ok(bz.version >= 0x20f);
  assert.ok(bz.relocatable);
  const v = parseVmlinux(readFileSync(join(KERNEL, 'vmlinux')));
  assert.is(v.entry, 0x1000000);
  const f = parseVmlinuxFile(join(KERNEL, 'vmlinux'));
  assert.equal(
    { entry: f.entry, low: f.low, high: f.high, segments: f.segments },
    { entry: v.entry, low: v.low, high: v.high, segments: v.segments },
  );
  const seg = f.segments[0];
  const fromFile = new Uint8Array(seg.filesz);
  f.readSegment(seg, fromFile);
  const fromBytes = new Uint8Array(seg.filesz);
  v.readSegment(seg, fromBytes);
  assert.ok(Buffer.from(fromFile).equals(fromBytes), 'segment bytes agree');
  const trunc = readFileSync(join(KERNEL, 'bzImage')).subarray(0, 500_000);
  throwsBoot(() => parseBzImage(trunc), /truncated bzImage/);
});

test('GuestMemory: with the backing-store address, guest physical 0 lands on a 2 MiB host boundary', () => {
  const at = 0x7f5ab6ff0000n; // where V8 put it on this machine: 64 KiB short of 2 MiB
  const m = new GuestMemory(64 * MiB, () => at);
  const base = m.regions[0].offset;
  assert.ok(base >= GUEST_BASE && base < GUEST_BASE + 2 * MiB, `base ${base}`);
  assert.is(Number((at + BigInt(base)) % BigInt(2 * MiB)), 0);
  assert.is(m.buffer.byteLength, GUEST_BASE + 2 * MiB + 64 * MiB);
  m.writeU32(0x1000, 0xdeadbeef);
  assert.is(new DataView(m.buffer).getUint32(base + 0x1000, true), 0xdeadbeef, 'pa -> offset goes through the region');
  assert.is(new GuestMemory(64 * MiB).regions[0].offset, GUEST_BASE, 'no address: GUEST_BASE exactly');
});

test('vmlinux: wrong class, overflowing phnum and out-of-range offsets are BootImageErrors', () => {
  const elf32 = fakeVmlinux();
  elf32[4] = 1;
  throwsBoot(() => parseVmlinux(elf32), /not a 64-bit ELF/);
  const many = fakeVmlinux();
  new DataView(many.buffer).setUint16(56, 0xffff, true);
  throwsBoot(() => parseVmlinux(many), /ELF has 65535 program headers/);
  const farOffset = fakeVmlinux();
  new DataView(farOffset.buffer).setBigUint64(64 + 8, 1n << 62n, true);
  throwsBoot(() => parseVmlinux(farOffset, '/k/vmlinux'), /^\/k\/vmlinux: .*p_offset 0x4000000000000000/);
  const bigFile = fakeVmlinux();
  new DataView(bigFile.buffer).setBigUint64(64 + 32, 0x100000n, true);
  throwsBoot(() => parseVmlinux(bigFile), /p_filesz 1048576 > p_memsz/);
});

test('vmlinux: corrupted headers always give a BootImageError (seeded mutations)', () => {
  let seed = 0x2545f491;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  for (let round = 0; round < 500; round++) {
    const b = fakeVmlinux();
    // the file header and program header (bytes 4..120), a few bytes at a time
    for (let k = 0; k < 1 + (next() % 4); k++) b[4 + (next() % 116)] = next() & 0xff;
    try {
      parseVmlinux(b);
    } catch (e) {
      assert.instance(e, BootImageError, `round ${round}: ${String(e)}`);
    }
  }
});

test.run();
