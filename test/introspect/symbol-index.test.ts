// The compact .symtab index (src/elf/symbol-index.ts): lookups by name, sizes, first definition
// wins, undefined symbols and bad name offsets left out, a wider entsize honoured, byte names
// beyond ASCII, an oversized st_size refused; and on the shared vmlinux, every one of its
// ~120k symbols found with the address a plain decode of the table gives.

import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SymbolIndex, SymbolIndexError } from '../../src/elf/symbol-index.js';
import { ElfFile, bytesSource } from '../../src/elf/file.js';
import { withFileSource } from '../../src/elf/file-source.js';
import { loadKernelImage } from '../../src/monitor/kernel-image.js';
import { sharedVmlinux } from '../helpers/test-kernel.js';

interface Sym {
  name: string | null; // null: name offset 0
  value: bigint;
  size?: bigint;
  shndx?: number;
  type?: number;
}

/** A string table and a symtab of `entsize`-byte entries for `syms` (names as latin1 bytes). */
function table(syms: Sym[], entsize = 24): { strings: Uint8Array; symtab: Uint8Array } {
  const parts: Buffer[] = [Buffer.from([0])];
  let at = 1;
  const offs = syms.map((s) => {
    if (s.name === null) return 0;
    const b = Buffer.from(s.name + '\0', 'latin1');
    parts.push(b);
    at += b.length;
    return at - b.length;
  });
  const symtab = Buffer.alloc(syms.length * entsize);
  syms.forEach((s, i) => {
    const o = i * entsize;
    symtab.writeUInt32LE(offs[i], o);
    symtab[o + 4] = s.type ?? 1;
    symtab.writeUInt16LE(s.shndx ?? 1, o + 6);
    symtab.writeBigUInt64LE(s.value, o + 8);
    symtab.writeBigUInt64LE(s.size ?? 8n, o + 16);
  });
  return { strings: Buffer.concat(parts), symtab };
}

test('names found with their addresses and sizes; undefined and unnamed symbols left out; first definition wins', () => {
  const { strings, symtab } = table([
    { name: 'runqueues', value: 0xffff_ffff_8300_0000n, size: 4096n },
    { name: 'undefined_one', value: 5n, shndx: 0 },
    { name: null, value: 6n },
    { name: 'runqueues', value: 0x1234n }, // a later duplicate (a local of the same name)
    { name: 'caf\u00e9', value: 0xffff_ffff_8100_0010n, size: 0x1_0000_0000n },
    { name: '', value: 7n },
  ]);
  const index = new SymbolIndex(strings, symtab, 24);
  assert.is(index.count, 3);
  assert.is(index.addresses.get('runqueues'), 0xffff_ffff_8300_0000n);
  assert.is(index.sizes.get('runqueues'), 4096);
  assert.is(index.addresses.has('undefined_one'), false);
  assert.is(index.addresses.get('caf\u00e9'), 0xffff_ffff_8100_0010n, 'a byte name beyond ASCII');
  assert.is(index.sizes.get('caf\u00e9'), 2 ** 32);
  assert.is(index.addresses.get('caf\u20ac'), undefined, 'a name that is not bytes is simply absent');
  assert.is(index.addresses.get('runqueue'), undefined, 'a prefix is not a match');
  assert.is(index.addresses.get('runqueuesx'), undefined);
  assert.equal(
    [...index.addresses],
    [
      ['runqueues', 0xffff_ffff_8300_0000n],
      ['caf\u00e9', 0xffff_ffff_8100_0010n],
      ['', 7n],
    ],
  );
  assert.equal(
    [...index.entries()].map((e) => [e.name, e.type]),
    [
      ['runqueues', 1],
      ['caf\u00e9', 1],
      ['', 1],
    ],
  );
});

test('thousands of names: each found, none invented; a wider entsize and a torn last entry', () => {
  const syms: Sym[] = [];
  for (let i = 0; i < 5000; i++) syms.push({ name: `sym_${(i * 7919) % 100_003}_x`, value: BigInt(i) * 64n });
  const { strings, symtab } = table(syms, 32);
  const torn = Buffer.concat([symtab, Buffer.alloc(20, 0xff)]); // not a whole entry: ignored
  const index = new SymbolIndex(strings, torn, 32);
  assert.is(index.count, 5000);
  for (let i = 0; i < 5000; i++) assert.is(index.addresses.get(syms[i].name!), BigInt(i) * 64n);
  for (const absent of ['sym_1_', 'sym_x', 'sym_7919_xx', 'x']) assert.is(index.addresses.has(absent), false, absent);
});

test('a name offset past the string table is skipped; an st_size beyond 2^53 is refused', () => {
  const { strings, symtab } = table([{ name: 'a', value: 1n }]);
  const bad = Buffer.from(symtab);
  bad.writeUInt32LE(strings.length + 10, 0);
  assert.is(new SymbolIndex(strings, bad, 24).count, 0);
  const huge = table([{ name: 'big', value: 1n, size: 1n << 60n }]);
  assert.throws(
    () => new SymbolIndex(huge.strings, huge.symtab, 24, 'x.elf'),
    (e: unknown) => {
      return (
        e instanceof SymbolIndexError && /x\.elf: st_size 0x1000000000000000 is too large/.test((e as Error).message)
      );
    },
  );
});

test('the shared vmlinux: every symbol found with the address a plain decode gives; a file source loads the same image', () => {
  const vmlinux = sharedVmlinux();
  if (vmlinux === undefined) {
    console.log('  skipped: the shared sched_ext vmlinux is missing');
    return;
  }
  const bytes = readFileSync(vmlinux);
  const elf = new ElfFile(bytesSource(bytes), vmlinux);
  const symtab = elf.sections.find((s) => s.name === '.symtab')!;
  const strtab = elf.sectionBytes(elf.sections[symtab.link]);
  const raw = Buffer.from(elf.sectionBytes(symtab));
  const plain = new Map<string, bigint>();
  for (let o = 0; o + 24 <= raw.length; o += symtab.entsize) {
    const off = raw.readUInt32LE(o);
    if (off === 0 || raw.readUInt16LE(o + 6) === 0) continue;
    const name = Buffer.from(strtab.subarray(off, strtab.indexOf(0, off))).toString('latin1');
    if (!plain.has(name)) plain.set(name, raw.readBigUInt64LE(o + 8));
  }
  const index = elf.symbolIndex();
  assert.ok(plain.size > 100_000, `${plain.size} symbols`);
  assert.is(index.count, plain.size);
  let wrong = 0;
  for (const [name, value] of plain) if (index.addresses.get(name) !== value) wrong++;
  assert.is(wrong, 0, 'symbols with another address in the index');
  const fromFile = withFileSource(vmlinux, (source) => loadKernelImage(source));
  const fromBytes = loadKernelImage(bytesSource(bytes));
  for (const name of ['_text', 'runqueues', 'linux_banner', 'node_data'])
    assert.is(fromFile.symbols.get(name), fromBytes.symbols.get(name), name);
  assert.is(fromFile.symbolSizes.get('node_data'), fromBytes.symbolSizes.get('node_data'));
  assert.equal(fromFile.offsets, fromBytes.offsets);
  assert.equal(fromFile.banner, fromBytes.banner);
});

test.run();
