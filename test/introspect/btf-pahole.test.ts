// The BTF parser against pahole (Debian dwarves) as ground truth: every named member of the
// structs the core reads -- including members inside anonymous unions/structs and bitfields --
// must sit at the offset (and bit) pahole prints, on the shared sched_ext kernel's vmlinux and
// on this host's /sys/kernel/btf/vmlinux. Skips with a reason when pahole or the inputs are absent.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Btf, ElfFile, bytesSource, kernelOffsets } from '../../src/monitor/index.js';
import { findOnPath } from '../../src/host/paths.js';
import { sharedVmlinux } from '../helpers/test-kernel.js';

const STRUCTS = ['bpf_prog', 'bpf_prog_aux', 'bpf_prog_stats', 'bpf_map', 'xarray', 'xa_node', 'idr'];
const pahole = findOnPath('pahole');
const vmlinux = sharedVmlinux();
const HOST_BTF = '/sys/kernel/btf/vmlinux';

interface PaholeMember {
  name: string;
  offset: number;
  bit: number | null;
  size: number;
}

/** Named members pahole prints for struct `name` (offsets from the outermost struct). */
function paholeMembers(args: string[], name: string): PaholeMember[] {
  const text = execFileSync(pahole!, [...args, '-C', name], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 16 << 20,
  });
  const out: PaholeMember[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(.*?);\s*\/\*\s*(\d+)(?::\s*(\d+))?\s+(\d+)\s*\*\/\s*$/.exec(line);
    if (m === null) continue;
    const decl = m[1];
    if (/^(struct|union)\s*\{?$/.test(decl) || decl === '}' || decl.startsWith('}')) continue; // anonymous aggregate lines
    const fn = /\(\*\s*(\w+)\)/.exec(decl);
    const plain = /(\w+)\s*(\[[^\]]*\])*\s*(:\s*\d+)?\s*$/.exec(decl);
    const memberName = fn?.[1] ?? plain?.[1];
    if (memberName === undefined) continue;
    out.push({
      name: memberName,
      offset: Number(m[2]),
      bit: m[3] === undefined ? null : Number(m[3]),
      size: Number(m[4]),
    });
  }
  return out;
}

function compare(btf: Btf, args: string[], label: string): number {
  let checked = 0;
  for (const s of STRUCTS) {
    const members = paholeMembers(args, s);
    assert.ok(members.length > 0, `pahole printed members of ${s} (${label})`);
    const counts = new Map<string, number>();
    for (const m of members) counts.set(m.name, (counts.get(m.name) ?? 0) + 1);
    for (const m of members) {
      if (counts.get(m.name) !== 1) continue; // a name repeated in nested anonymous aggregates
      const loc = btf.member(s, m.name);
      if (m.bit === null) {
        assert.is(loc.bitSize, 0, `${label} ${s}.${m.name} is not a bitfield`);
        assert.is(loc.offset, m.offset, `${label} ${s}.${m.name} offset`);
        assert.is(loc.size, m.size, `${label} ${s}.${m.name} size`);
      } else {
        assert.ok(loc.bitSize > 0, `${label} ${s}.${m.name} is a bitfield`);
        assert.is(loc.bitOffset, m.offset * 8 + m.bit, `${label} ${s}.${m.name} bit offset`);
      }
      checked++;
    }
  }
  return checked;
}

test('sched_ext kernel: member offsets match pahole (anonymous members and bitfields included)', () => {
  if (pahole === undefined) {
    console.log('  skipped: pahole not installed (apt-get install dwarves)');
    return;
  }
  if (vmlinux === undefined) {
    console.log('  skipped: the shared sched_ext vmlinux is missing');
    return;
  }
  const elf = new ElfFile(bytesSource(readFileSync(vmlinux)), vmlinux);
  const btf = new Btf(elf.sectionBytes(elf.section('.BTF')!));
  const checked = compare(btf, [vmlinux], 'sched_ext');
  assert.ok(checked > 100, `compared ${checked} members`);
  const o = kernelOffsets(btf);
  assert.is(o.progTypeStructOps, 27);
  // the bitfields of struct bpf_prog were among the compared members
  assert.ok(btf.member('bpf_prog', 'jited').bitSize === 1);
});

test('host kernel BTF (/sys/kernel/btf/vmlinux): member offsets match pahole', () => {
  if (pahole === undefined) {
    console.log('  skipped: pahole not installed');
    return;
  }
  if (!existsSync(HOST_BTF)) {
    console.log(`  skipped: ${HOST_BTF} is missing (kernel without CONFIG_DEBUG_INFO_BTF)`);
    return;
  }
  const btf = new Btf(readFileSync(HOST_BTF), HOST_BTF);
  const checked = compare(btf, ['-F', 'btf', HOST_BTF], 'host');
  assert.ok(checked > 100, `compared ${checked} members`);
  kernelOffsets(btf); // the host kernel's layout is readable by the core too
});

test('BTF errors: bad magic, truncated sections, unknown struct and member', () => {
  assert.throws(() => new Btf(new Uint8Array(24)), /bad magic/);
  const hdr = new Uint8Array(24);
  const v = new DataView(hdr.buffer);
  v.setUint16(0, 0xeb9f, true);
  v.setUint32(4, 24, true);
  v.setUint32(12, 100, true);
  assert.throws(() => new Btf(hdr), /outside/);
  if (vmlinux !== undefined) {
    const elf = new ElfFile(bytesSource(readFileSync(vmlinux)));
    const btf = new Btf(elf.sectionBytes(elf.section('.BTF')!));
    assert.throws(() => btf.member('bpf_prog', 'no_such_member'), /no member/);
    assert.throws(() => btf.struct('no_such_struct_xyz'), /no struct/);
    assert.throws(() => btf.offsetOf('bpf_prog', 'jited'), /bitfield/);
    // a path through a named nested struct
    assert.is(btf.offsetOf('idr', 'idr_rt.xa_head'), btf.offsetOf('xarray', 'xa_head'));
  }
});

test.run();
