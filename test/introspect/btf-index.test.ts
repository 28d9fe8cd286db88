// The BTF blob indexed at construction and decoded on demand (src/monitor/btf.ts): named()
// finds exactly the ids a scan of every decoded type finds, on the shared vmlinux's ~100k
// types; structs beat forward declarations and typedefs of one name; enumerators are found
// by enum or anywhere; a damaged record fails at construction, a damaged member name at first
// use — each a BtfError, never a read past the blob.

import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Btf, BtfError, BTF_KIND } from '../../src/monitor/btf.js';
import { ElfFile, bytesSource } from '../../src/elf/file.js';
import { sharedVmlinux } from '../helpers/test-kernel.js';
import { BtfWriter } from './btf-writer.js';

test('named(): every name of the vmlinux BTF finds the ids a full scan finds, in id order', () => {
  const vmlinux = sharedVmlinux();
  if (vmlinux === undefined) {
    console.log('  skipped: the shared sched_ext vmlinux is missing');
    return;
  }
  const elf = new ElfFile(bytesSource(readFileSync(vmlinux)), vmlinux);
  const btf = new Btf(elf.sectionBytes(elf.section('.BTF')!), 'vmlinux BTF');
  assert.ok(btf.count > 50_000, `${btf.count} types`);
  const scan = new Map<string, number[]>();
  for (let id = 1; id < btf.count; id++) {
    const t = btf.type(id);
    assert.is(t.id, id);
    if (t.name === '') continue;
    const ids = scan.get(t.name);
    if (ids === undefined) scan.set(t.name, [id]);
    else ids.push(id);
  }
  let wrong = 0;
  for (const [name, ids] of scan) {
    const found = btf.named(name).map((t) => t.id);
    if (found.length !== ids.length || found.some((id, i) => id !== ids[i])) wrong++;
  }
  assert.is(wrong, 0, 'names whose ids differ from the scan');
  assert.equal(btf.named('no_such_type_anywhere'), []);
  assert.is(btf.struct('task_struct').kind, BTF_KIND.STRUCT);
  assert.ok(btf.enumWith('SD_SHARE_LLC') !== undefined);
  assert.throws(() => btf.type(btf.count), /does not exist/);
});

test('struct() takes the struct, not a typedef or forward declaration of its name; enumerators by enum or anywhere', () => {
  const w = new BtfWriter();
  const u32 = w.int('unsigned int', 4);
  w.typedef('rq', u32);
  w.struct('rq', 8, [
    { name: 'nr_running', type: u32, offset: 0 },
    { name: 'cpu', type: u32, offset: 4 },
  ]);
  w.enum('scx_ops_flags', 4, [
    ['SCX_OPS_A', 1],
    ['SCX_OPS_B', 2],
  ]);
  w.enum('other', 4, [['SCX_OPS_B', 9]]);
  const btf = new Btf(w.bytes());
  assert.is(btf.named('rq').length, 2);
  assert.is(btf.offsetOf('rq', 'cpu'), 4);
  assert.ok(btf.hasStruct('rq'));
  assert.not.ok(btf.hasStruct('unsigned int'));
  assert.is(btf.enumValue('SCX_OPS_B'), 2n, 'the first enum holding it');
  assert.is(btf.enumValue('SCX_OPS_B', 'other'), 9n);
  assert.throws(() => btf.enumValue('SCX_OPS_C'), /no enumerator SCX_OPS_C/);
  assert.is(btf.named('caf\u20ac').length, 0, 'a name that is not bytes is absent');
});

/** The writer's blob, and where its first type record starts. */
function sample(): { bytes: Uint8Array; typesStart: number } {
  const w = new BtfWriter();
  const u32 = w.int('u32', 4);
  w.struct('s', 4, [{ name: 'member', type: u32, offset: 0 }]);
  const bytes = w.bytes();
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { bytes, typesStart: v.getUint32(4, true) + v.getUint32(8, true) };
}

test('a damaged record fails at construction, a damaged member name at first use: BtfError either way', () => {
  // type 1: int (12 + 4 bytes); type 2: struct (12 + 12 * 1)
  const kind = sample();
  new DataView(kind.bytes.buffer, kind.bytes.byteOffset).setUint8(kind.typesStart + 7, 30); // kind 30
  assert.throws(
    () => new Btf(kind.bytes),
    (e: unknown) => e instanceof BtfError && /unknown BTF kind 30/.test(String(e)),
  );

  const vlen = sample();
  new DataView(vlen.bytes.buffer, vlen.bytes.byteOffset).setUint16(vlen.typesStart + 16 + 4, 500, true);
  assert.throws(() => new Btf(vlen.bytes), /type 2 runs past the type section/);

  const name = sample();
  new DataView(name.bytes.buffer, name.bytes.byteOffset).setUint32(name.typesStart, 1 << 30, true);
  assert.throws(() => new Btf(name.bytes), /string offset \d+ outside the string section/);

  const member = sample();
  new DataView(member.bytes.buffer, member.bytes.byteOffset).setUint32(member.typesStart + 16 + 12, 1 << 30, true);
  const btf = new Btf(member.bytes);
  assert.throws(
    () => btf.struct('s'),
    (e: unknown) => e instanceof BtfError && /outside the string section/.test(String(e)),
  );
});

test.run();
