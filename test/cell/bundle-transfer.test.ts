// Bundles out of the test host (src/cli/bundle-transfer.ts): a bundle printed as blocks amid
// other output, cut into arbitrary chunks, is rebuilt at the same path byte for byte, its core
// still sparse, the other output passed through untouched; a damaged block leaves nothing.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BundleBlockFilter, BundleReceiver, emitBundle } from '../../src/cli/bundle-transfer.js';
import { writeCoreFile } from '../../src/cell/core-file.js';

const tmp = mkdtempSync(join(tmpdir(), 'ktstr-transfer-'));
const MiB = 1024 * 1024;

function makeBundle(dir: string): Uint8Array {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'console.log'), 'line 1\nKernel panic - not syncing\n');
  writeFileSync(join(dir, 'result.json'), '{"passed":false}\n');
  const mem = new Uint8Array(16 * MiB);
  for (let i = 0; i < 2 * MiB; i++) mem[i] = (i * 7919) & 0xff;
  mem[12 * MiB + 5] = 9;
  writeCoreFile(join(dir, 'guest.core'), { regions: [{ pa: 0, bytes: mem }], cpus: [null], vmcoreinfo: null });
  return mem;
}

function transfer(text: string, chunk: number): { forwarded: string; problems: string[]; receiver: BundleReceiver } {
  const problems: string[] = [];
  let forwarded = '';
  const receiver = new BundleReceiver((m) => problems.push(m));
  const f = new BundleBlockFilter(receiver, (t) => {
    forwarded += t;
  });
  for (let i = 0; i < text.length; i += chunk) f.push(text.slice(i, i + chunk));
  f.end();
  return { forwarded, problems, receiver };
}

test('a bundle crosses as blocks amid other output and is rebuilt sparse, byte for byte', () => {
  const src = join(tmp, 'inner', 'out', 'sweep__x__k__tiny-1llc');
  makeBundle(src);
  const want = Object.fromEntries(readdirSync(src).map((n) => [n, readFileSync(join(src, n))]));
  let text = 'PASS [ 1.0s] (1/2) sweep/a\nDo not eat this line\n';
  emitBundle(src, (t) => {
    text += t;
  });
  text += 'FAIL [ 2.0s] (2/2) sweep/x\n@@KTSTR_ partial lookalike\nstatus without newline';
  rmSync(src, { recursive: true });
  const small = transfer(text, 333); // chunks smaller than a marker: lines split anywhere
  assert.equal(small.problems, []);
  assert.equal(small.receiver.received, [src]);
  rmSync(src, { recursive: true });
  const r = transfer(text, 4093);
  assert.equal(r.problems, []);
  assert.is(
    r.forwarded,
    'PASS [ 1.0s] (1/2) sweep/a\nDo not eat this line\nFAIL [ 2.0s] (2/2) sweep/x\n@@KTSTR_ partial lookalike\nstatus without newline',
    'the other output untouched',
  );
  assert.equal(r.receiver.received, [src]);
  for (const [n, bytes] of Object.entries(want)) assert.ok(readFileSync(join(src, n)).equals(bytes), `${n} identical`);
  const core = statSync(join(src, 'guest.core'));
  assert.ok(
    core.blocks * 512 < 4 * MiB,
    `the rebuilt core is sparse (${core.blocks * 512} bytes on disk of ${core.size})`,
  );
  assert.ok(text.length < 2 * MiB, `the transfer is compressed (${text.length} characters for 2 MiB of data)`);
  assert.equal(readdirSync(join(tmp, 'inner', 'out')), ['sweep__x__k__tiny-1llc'], 'no temporary directory left');
});

test('a damaged or cut-off bundle is not left behind, and is reported', () => {
  const src = join(tmp, 'inner2', 'sweep__y');
  makeBundle(src);
  let text = '';
  emitBundle(src, (t) => {
    text += t;
  });
  rmSync(src, { recursive: true });
  const damaged = text.replace(/^(D [0-9a-f]+ )(.)/m, (_m, a: string, c: string) => a + (c === 'A' ? 'B' : 'A'));
  const r1 = transfer(damaged, 65536);
  assert.is(r1.problems.length, 1, r1.problems.join('\n'));
  assert.match(r1.problems[0], /could not be brought out/);
  assert.equal(readdirSync(join(tmp, 'inner2')), [], 'nothing left');
  const r2 = transfer(text.slice(0, Math.floor(text.length / 2)), 65536);
  assert.is(r2.problems.length, 1, r2.problems.join('\n'));
  assert.match(r2.problems[0], /could not be brought out/);
  assert.equal(readdirSync(join(tmp, 'inner2')), [], 'nothing left');
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
