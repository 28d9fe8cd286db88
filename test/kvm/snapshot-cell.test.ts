// Issue 17, acceptance 1 and 4 for the cell engine (KVM: inside the emulated test host here
// and in CI): a sweep cell (scx_simple on tiny-1llc, the prebuilt kernel) saves its machine's
// snapshot at the agent's `ready`; the next cell of that machine restores it — the agent
// answers, takes its cell, the scheduler loads and attaches, the dispatch probe passes, and
// the guest's wall clock is the host's — and a cell with snapshots off boots cold. All three
// pass with the same verdict (how much sooner the restored one starts: bench:snapshot).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCell } from '../../src/cell/run-cell.js';
import type { CellResult } from '../../src/cell/result.js';
import { prebuiltCell } from '../helpers/prebuilt-cell.js';

const spec = prebuiltCell();
const root = mkdtempSync(join(tmpdir(), 'ktstr-snapshot-cell-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const line = (r: CellResult): string =>
  `${r.id}: ${r.start} ${r.passed ? 'PASS' : 'FAIL'} in ${(r.wallMs / 1000).toFixed(1)} s (boot ${((r.phases.boot ?? NaN) / 1000).toFixed(1)} s), clock skew ${r.guestClockSkewMs} ms, ${r.schedulerStatus}${r.snapshotNote ? `; ${r.snapshotNote}` : ''}`;

test('saved at ready, restored, cold: the same passing verdict; the restored guest runs its cell', async () => {
  if (spec === undefined) {
    console.log('  SKIPPED: no prebuilt kernel with scx_simple (KTSTR_KERNEL / ../shared/kernels)');
    return;
  }
  const dir = join(root, 'snapshots');
  const saved = await runCell(spec('saved', dir));
  console.log(`  ${line(saved)}`);
  const restored = await runCell(spec('restored', dir));
  console.log(`  ${line(restored)}`);
  const cold = await runCell(spec('cold', null));
  console.log(`  ${line(cold)}`);

  assert.is(saved.start, 'saved', saved.snapshotNote);
  assert.is(restored.start, 'restored', restored.snapshotNote);
  assert.is(cold.start, 'cold');
  for (const r of [saved, restored, cold]) {
    assert.ok(r.passed, `${r.id}: ${r.failure?.kind}: ${r.failure?.message}\n${r.consoleTail}`);
    assert.ok(r.workers.length === 4 && r.workers.every((w) => w.iterations > 0), `${r.id}: every CPU progressed`);
    assert.ok(
      r.programs.length > 0 && r.programs.every((p) => p.verifiedInsns > 0),
      `${r.id}: programs read from guest memory`,
    );
    assert.ok(
      r.guestClockSkewMs !== undefined && Math.abs(r.guestClockSkewMs) < 3000,
      `${r.id}: guest wall clock ${r.guestClockSkewMs} ms from the host's`,
    );
  }
  assert.equal(
    restored.programs.map((p) => [p.name, p.verifiedInsns]),
    saved.programs.map((p) => [p.name, p.verifiedInsns]),
    'the same programs, verified the same way',
  );
  assert.is(restored.schedulerStatus, saved.schedulerStatus);
  assert.is(cold.schedulerStatus, saved.schedulerStatus);
});

test.run();
