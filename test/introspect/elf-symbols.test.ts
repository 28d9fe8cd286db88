// The vmlinux reader on the shared sched_ext kernel: section/program headers, .symtab symbols
// cross-checked with binutils `nm` (whose output is System.map's format, read by
// parseSystemMap), the banner, and System.map errors. Skips without the kernel or nm.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ElfFile, bytesSource, loadKernelImage, parseSystemMap } from '../../src/monitor/index.js';
import { findOnPath } from '../../src/host/paths.js';
import { sharedVmlinux } from '../helpers/test-kernel.js';

const vmlinux = sharedVmlinux();
const present = vmlinux !== undefined;

test('vmlinux: headers, .symtab against nm, the banner; System.map overrides .symtab', () => {
  if (!present) {
    console.log('  skipped: the shared sched_ext vmlinux is missing');
    return;
  }
  const bytes = readFileSync(vmlinux!);
  const elf = new ElfFile(bytesSource(bytes), vmlinux);
  assert.is(elf.type, 2);
  assert.is(elf.machine, 62);
  assert.ok(
    elf.programHeaders.some((p) => p.type === 1),
    'PT_LOAD segments',
  );
  assert.ok(elf.section('.BTF') !== undefined && elf.section('.symtab') !== undefined);
  const syms = elf.symbols();
  for (const name of [
    '_text',
    'prog_idr',
    'init_top_pgt',
    'page_offset_base',
    'phys_base',
    '__per_cpu_offset',
    'nr_cpu_ids',
    'linux_banner',
  ]) {
    assert.ok(syms.has(name), `symbol ${name}`);
  }
  assert.is(syms.get('_text')!.value, 0xffff_ffff_8100_0000n);
  const nm = findOnPath('nm');
  if (nm !== undefined) {
    const map = parseSystemMap(execFileSync(nm, [vmlinux!], { encoding: 'latin1', maxBuffer: 64 << 20 }));
    for (const name of ['_text', 'prog_idr', 'init_top_pgt', 'linux_banner', '__per_cpu_offset'])
      assert.is(map.get(name), syms.get(name)!.value, `nm agrees on ${name}`);
  } else {
    console.log('  (nm not installed: the cross-check with nm is skipped)');
  }
  const kernel = loadKernelImage(bytesSource(bytes), {
    systemMap: 'ffffffff81000000 T _text\nffffffff99999000 D prog_idr\n',
  });
  assert.is(kernel.symbols.get('prog_idr'), 0xffff_ffff_9999_9000n, 'System.map wins over .symtab');
  assert.match(new TextDecoder().decode(kernel.banner!), /^Linux version 6\.12\.117 /);
});

test('System.map: malformed lines and empty maps are errors with the line number', () => {
  assert.throws(() => parseSystemMap('ffffffff81000000 T _text\nnot a line\n'), /line 2/);
  assert.throws(() => parseSystemMap('\n\n'), /no symbols/);
  assert.is(parseSystemMap('ffffffff81000000 T _text\n').get('_text'), 0xffff_ffff_8100_0000n);
});

test.run();
