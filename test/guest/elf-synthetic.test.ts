// readElf on small hand-built ELF files (no compiler needed): the interpreter, DT_NEEDED and
// DT_RUNPATH read through the shared ELF reader over a file, ELF32 and big-endian files
// reported without being followed, and truncated or hostile files refused with ElfError. Also
// the Node file-backed ByteSource: reads past the end and oversized reads are refused before
// anything is allocated.

import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ElfError, readElf } from '../../src/guest/elf-deps.js';
import { MAX_READ, fileSource, withFileSource } from '../../src/elf/file-source.js';
import { ElfFile } from '../../src/elf/file.js';

const VADDR = 0x10000;
const INTERP_AT = 0x200;
const DYNSTR_AT = 0x280;
const DYNAMIC_AT = 0x300;
const INTERP = '/lib/ld-test.so.2';
const DYNSTR = '\0libfoo.so\0libbar.so.1\0$ORIGIN/x:/y\0';

/** An ELF64 LE ET_DYN x86-64 file: PT_INTERP, one PT_LOAD over the whole file, PT_DYNAMIC. */
function fakeSharedObject(o: { strsz?: bigint; shoff?: bigint } = {}): Uint8Array {
  const b = new Uint8Array(0x400);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 3, true);
  dv.setUint16(18, 62, true);
  dv.setBigUint64(32, 64n, true);
  dv.setBigUint64(40, o.shoff ?? 0n, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, 3, true);
  dv.setUint16(58, 64, true);
  dv.setUint16(60, o.shoff === undefined ? 0 : 40, true);
  const ph = (i: number, type: number, offset: number, vaddr: number, size: number): void => {
    const at = 64 + i * 56;
    dv.setUint32(at, type, true);
    dv.setBigUint64(at + 8, BigInt(offset), true);
    dv.setBigUint64(at + 16, BigInt(vaddr), true);
    dv.setBigUint64(at + 32, BigInt(size), true);
    dv.setBigUint64(at + 40, BigInt(size), true);
  };
  ph(0, 3, INTERP_AT, VADDR + INTERP_AT, INTERP.length + 1);
  ph(1, 1, 0, VADDR, b.length);
  ph(2, 2, DYNAMIC_AT, VADDR + DYNAMIC_AT, 6 * 16);
  b.set(new TextEncoder().encode(INTERP), INTERP_AT);
  b.set(new TextEncoder().encode(DYNSTR), DYNSTR_AT);
  const dyn: [bigint, bigint][] = [
    [1n, BigInt(DYNSTR.indexOf('libfoo'))],
    [1n, BigInt(DYNSTR.indexOf('libbar'))],
    [29n, BigInt(DYNSTR.indexOf('$ORIGIN'))],
    [5n, BigInt(VADDR + DYNSTR_AT)],
    [10n, o.strsz ?? BigInt(DYNSTR.length)],
    [0n, 0n],
  ];
  dyn.forEach(([tag, value], i) => {
    dv.setBigInt64(DYNAMIC_AT + i * 16, tag, true);
    dv.setBigUint64(DYNAMIC_AT + i * 16 + 8, value, true);
  });
  return b;
}

function withFile<T>(bytes: Uint8Array, use: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-elf-'));
  try {
    const path = join(dir, 'obj.so');
    writeFileSync(path, bytes);
    return use(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `fn` throws an ElfError whose message matches `re`. */
const throwsElf = (fn: () => unknown, re: RegExp): void =>
  assert.throws(fn, (e: unknown) => e instanceof ElfError && re.test(e.message), `an ElfError matching ${re}`);

test('readElf: interpreter, DT_NEEDED and DT_RUNPATH of a synthetic shared object', () => {
  const info = withFile(fakeSharedObject(), readElf);
  assert.is(info.elfClass, 2);
  assert.is(info.machine, 62);
  assert.is(info.type, 3);
  assert.is(info.interpreter, INTERP);
  assert.ok(info.dynamic);
  assert.equal(info.needed, ['libfoo.so', 'libbar.so.1']);
  assert.equal(info.runpath, ['$ORIGIN/x', '/y']);
  assert.equal(info.rpath, []);
});

test('readElf: a broken section table does not matter (sections are never read)', () => {
  const info = withFile(fakeSharedObject({ shoff: 1n << 40n }), readElf);
  assert.equal(info.needed, ['libfoo.so', 'libbar.so.1']);
});

test('readElf: ELF32 and big-endian files give class and machine only', () => {
  const elf32 = fakeSharedObject();
  elf32[4] = 1;
  const i32 = withFile(elf32, readElf);
  assert.is(i32.elfClass, 1);
  assert.is(i32.machine, 62);
  assert.equal(i32.needed, []);
  assert.is(i32.interpreter, undefined);
  const big = fakeSharedObject();
  big[5] = 2;
  new DataView(big.buffer).setUint16(18, 62, false);
  new DataView(big.buffer).setUint16(16, 3, false);
  const ibe = withFile(big, readElf);
  assert.is(ibe.machine, 62, "machine read in the file's byte order");
  assert.is(ibe.type, 3);
  assert.ok(!ibe.dynamic);
  // a 24-byte ELF32 stub still has an identification
  assert.is(withFile(elf32.subarray(0, 24), readElf).elfClass, 1);
});

test('readElf: truncated and hostile files are refused with ElfError', () => {
  throwsElf(() => withFile(new TextEncoder().encode('#!/bin/sh\n'), readElf), /too short for an ELF header/);
  throwsElf(() => withFile(new Uint8Array(64).fill(0x41), readElf), /not an ELF file/);
  throwsElf(
    () => withFile(fakeSharedObject().subarray(0, 0x2a0), readElf),
    /obj\.so: PT_DYNAMIC runs past the end of the file/,
  );
  throwsElf(() => withFile(fakeSharedObject().subarray(0, 100), readElf), /program headers run past the end/);
  throwsElf(
    () => withFile(fakeSharedObject({ strsz: 1n << 62n }), readElf),
    /DT_STRTAB 0x10280 .* is in no PT_LOAD segment/,
  );
  const manyHeaders = fakeSharedObject();
  new DataView(manyHeaders.buffer).setUint16(56, 0xffff, true);
  throwsElf(() => withFile(manyHeaders, readElf), /program headers run past the end/);
});

test('fileSource: reads are checked against the file size and capped', () => {
  withFile(fakeSharedObject(), (path) => {
    withFileSource(path, (source) => {
      assert.is(source.size, 0x400);
      assert.equal([...source.read(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
      throwsElf(() => source.read(0x3ff, 2), /past the end of the file \(1024 bytes\)/);
      assert.is(new ElfFile(source, path).programHeaders.length, 3);
    });
    // a sparse file larger than MAX_READ: an oversized read is refused before allocating
    const fd = openSync(path, 'r+');
    try {
      ftruncateSync(fd, MAX_READ + 4096);
      throwsElf(() => fileSource(fd, path).read(0, MAX_READ + 1), /is larger than/);
    } finally {
      closeSync(fd);
    }
  });
});

test.run();
