// Thresholds: the defaults, the merge of three layers (defaults <- scheduler <- test, a field
// left undefined inherits), the refusal of bad layers naming the key path, and docs/checks.md
// naming every check and every threshold field with its default.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CHECK_NAMES,
  DEFAULT_THRESHOLDS,
  mergeThresholds,
  type ThresholdOverrides,
} from '../../src/test/checks/index.js';
import { packageRoot } from '../../src/paths.js';

test('defaults', () => {
  assert.equal(mergeThresholds(), {
    minPhaseMs: 500,
    starvation: { enabled: true, minShare: 0.1 },
    gaps: { enabled: true, maxGapMs: 2000 },
    fairness: { enabled: true, maxSpreadPct: 15, weightTolerance: 0.25 },
    isolation: { enabled: true },
    benchmark: { enabled: false },
    migration: { enabled: false, maxMigrationRatio: 0.05 },
    liveness: { enabled: true },
    stall: { enabled: true, maxRunnableMs: 2000 },
  });
  assert.equal(mergeThresholds(undefined, undefined), mergeThresholds());
  const m = mergeThresholds();
  m.gaps.maxGapMs = 1;
  assert.is(DEFAULT_THRESHOLDS.gaps.maxGapMs, 2000, 'the merge copies; the defaults stay');
});

test('three layers: the last that sets a field wins, undefined inherits', () => {
  const scheduler: ThresholdOverrides = {
    gaps: { maxGapMs: 3000 },
    fairness: { maxSpreadPct: 25 },
    benchmark: { maxCvPct: 20 },
  };
  const testAttrs: ThresholdOverrides = {
    fairness: { maxSpreadPct: 10, weightTolerance: undefined },
    benchmark: { enabled: true, minIterationsPerSec: 1000 },
    minPhaseMs: 250,
  };
  const t = mergeThresholds(scheduler, testAttrs);
  assert.equal(t.gaps, { enabled: true, maxGapMs: 3000 });
  assert.equal(t.fairness, { enabled: true, maxSpreadPct: 10, weightTolerance: 0.25 });
  assert.equal(t.benchmark, { enabled: true, maxCvPct: 20, minIterationsPerSec: 1000 });
  assert.is(t.minPhaseMs, 250);
  assert.equal(t.starvation, DEFAULT_THRESHOLDS.starvation);
  assert.is(mergeThresholds({ liveness: { enabled: false } }, { liveness: {} }).liveness.enabled, false);
});

test('bad layers are refused with the key path', () => {
  const bad = (layer: unknown, re: RegExp, ...before: ThresholdOverrides[]) =>
    assert.throws(
      () => mergeThresholds(...before, layer as ThresholdOverrides),
      (e: Error) => re.test(e.message),
      String(re),
    );
  bad({ gaps: { maxGapMs: -1 } }, /^threshold gaps\.maxGapMs must be a finite number >= 0 \(got -1, layer 1\)$/);
  bad({ gaps: { maxGapMs: NaN } }, /gaps\.maxGapMs .*got NaN, layer 2/, {});
  bad({ fairness: { maxSpreadPct: Infinity } }, /fairness\.maxSpreadPct .*got Infinity/);
  bad({ fairness: { maxSpreadPct: '15' } }, /fairness\.maxSpreadPct .*got "15"/);
  bad({ fairness: { maxSpread: 15 } }, /^threshold fairness\.maxSpread: unknown key \(layer 1\)$/);
  bad({ gap: { maxGapMs: 1 } }, /^threshold gap: unknown key/);
  bad({ starvation: { minShare: 1.5 } }, /starvation\.minShare must be from 0 to 1 \(got 1\.5/);
  bad({ isolation: { enabled: 'yes' } }, /isolation\.enabled must be true or false \(got "yes"/);
  bad({ liveness: true }, /threshold liveness must be an object \(got true/);
  bad({ minPhaseMs: -5 }, /threshold minPhaseMs must be a finite number >= 0 \(got -5/);
  bad({ benchmark: { maxWakeP99Us: -0.5 } }, /benchmark\.maxWakeP99Us/);
  bad(null, /thresholds layer 1 must be an object \(got null\)/);
  bad([], /thresholds layer 1 must be an object \(got an array\)/);
  bad(JSON.parse('{"__proto__": {"x": 1}}'), /threshold __proto__: unknown key/);
  bad({ migration: { enabled: true, maxMigrationRatio: 0.1, toString: 1 } }, /migration\.toString: unknown key/);
});

test('docs/checks.md names every check and every threshold field with its default', () => {
  const doc = readFileSync(join(packageRoot(), 'docs', 'checks.md'), 'utf8');
  for (const c of CHECK_NAMES) assert.ok(doc.includes(`### ${c}`), `check ${c}`);
  const d = DEFAULT_THRESHOLDS as unknown as Record<string, unknown>;
  const paths: [string, unknown][] = [['minPhaseMs', d.minPhaseMs]];
  for (const [s, v] of Object.entries(d))
    if (typeof v === 'object') for (const [f, fv] of Object.entries(v as object)) paths.push([`${s}.${f}`, fv]);
  for (const f of ['benchmark.minIterationsPerSec', 'benchmark.maxWakeP99Us', 'benchmark.maxCvPct'])
    paths.push([f, 'unset']);
  for (const [p, v] of paths) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${p}\` |`));
    assert.ok(row, `a table row for ${p}`);
    assert.ok(row!.includes(`| ${String(v)} |`), `${p} default ${String(v)} in: ${row}`);
  }
});

test('every failure line shown in docs/checks.md is one the tests expect, verbatim', () => {
  const root = packageRoot();
  const doc = readFileSync(join(root, 'docs', 'checks.md'), 'utf8');
  const tests = ['checks.test.ts', 'hostile.test.ts', 'temporal.test.ts', 'stall.test.ts']
    .map((f) => readFileSync(join(root, 'test', 'test-api', f), 'utf8'))
    .join('\n');
  const shown = doc.split('\n').filter((l) => new RegExp(`^(${CHECK_NAMES.join('|')}): `).test(l));
  assert.ok(shown.length >= 10, `${shown.length} example lines`);
  for (const l of shown) assert.ok(tests.includes(`'${l}'`), `not in a test: ${l}`);
});

test.run();
