// Temporal assertions over sample series: each helper passes on a good series and fails on a
// bad one with the exact line; series that cannot be read fail, never throw.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { temporal, type Sample } from '../../src/test/checks/index.js';

/** Samples every 100 ms from t=0. */
const series = (...values: number[]): Sample[] => values.map((value, i) => ({ atMs: i * 100, value }));

test('nondecreasing', () => {
  assert.ok(temporal.nondecreasing('dispatched', series(0, 1, 1, 3)).passed);
  const v = temporal.nondecreasing('dispatched', series(0, 5, 3, 4, 2));
  assert.equal(v, {
    check: 'temporal',
    passed: false,
    skipped: null,
    figures: { samples: 5, drops: 2 },
    failures: [
      'temporal: dispatched decreased from 5 to 3 at t=0.2s (must not decrease)',
      'temporal: dispatched decreased 2 times in all',
    ],
  });
  assert.is(temporal.nondecreasing('x', series(1)).skipped, 'fewer than 2 samples');
});

test('rateWithin: (last - first) over the time span, per second', () => {
  const counter = (perSec: number) => series(...Array.from({ length: 11 }, (_, i) => (i * perSec) / 10));
  const ok = temporal.rateWithin('dispatched', counter(1000), 900, 1100);
  assert.ok(ok.passed);
  assert.is(ok.figures.rate, 1000);
  assert.equal(temporal.rateWithin('dispatched', counter(500), 900, 1100).failures, [
    'temporal: dispatched rate 500/s over 1 s (want 900 to 1100/s)',
  ]);
  assert.is(temporal.rateWithin('x', series(1), 0, 1).skipped, 'fewer than 2 samples apart in time');
});

test('steadyWithin: coefficient of variation', () => {
  assert.ok(temporal.steadyWithin('nr_running', series(10, 10, 11, 10), 10).passed);
  assert.equal(temporal.steadyWithin('nr_running', series(10, 20, 10, 20), 10).failures, [
    'temporal: nr_running CV 33.3% over 4 samples, mean 15 (max 10%)',
  ]);
  assert.ok(temporal.steadyWithin('zero', series(0, 0, 0), 1).passed);
});

test('convergesTo: from afterMs on (default: the second half), within tolPct of the target', () => {
  const lag = series(0, 50, 90, 99, 101, 100);
  assert.ok(temporal.convergesTo('lag', lag, 100, 5).passed);
  assert.equal(temporal.convergesTo('lag', lag, 100, 5, 100).failures, [
    'temporal: lag not within 5% of 100 from t=0.1s on: 50 at t=0.1s (2 of 5 samples outside)',
  ]);
  assert.equal(temporal.convergesTo('lag', lag, 100, 5, 900).failures, [
    'temporal: lag has no samples from t=0.9s on to show it converges to 100',
  ]);
  assert.ok(temporal.convergesTo('idle', series(5, 0.01, 0), 0, 2).passed, 'target 0: absolute tolerance tolPct/100');
});

test('alwaysTrue: every sample 1', () => {
  assert.ok(temporal.alwaysTrue('attached', series(1, 1, 1)).passed);
  assert.equal(temporal.alwaysTrue('attached', series(1, 0, 1, 0)).failures, [
    'temporal: attached false at t=0.1s (2 of 4 samples false)',
  ]);
  assert.equal(temporal.alwaysTrue('attached', series(1, 2)).failures, [
    'temporal: attached has value 2 at t=0.1s, not 0 or 1',
  ]);
});

test('ratioWithin: a/b at the times both have a sample', () => {
  assert.ok(temporal.ratioWithin('local/global', series(10, 20, 30), series(5, 10, 15), 1.5, 2.5).passed);
  assert.equal(temporal.ratioWithin('local/global', series(10, 20, 60), series(5, 10, 15), 1.5, 2.5).failures, [
    'temporal: local/global ratio 4 at t=0.2s (want 1.5 to 2.5; 1 of 3 samples outside)',
  ]);
  const shifted = [{ atMs: 50, value: 1 }];
  assert.equal(temporal.ratioWithin('r', series(1), shifted, 0, 1).failures, [
    'temporal: r: no times where both series have a sample (and b is not 0)',
  ]);
});

test('unreadable series fail with what is wrong', () => {
  assert.equal(
    temporal.nondecreasing('x', [
      { atMs: 0, value: 1 },
      { atMs: 100, value: NaN },
    ]).failures,
    ['temporal: x: series sample 1 is unusable (atMs 100, value NaN)'],
  );
  assert.equal(
    temporal.steadyWithin(
      'x',
      [
        { atMs: 100, value: 1 },
        { atMs: 0, value: 1 },
      ],
      5,
    ).failures,
    ['temporal: x: series sample 1 at 0 ms is before the one ahead of it (100 ms)'],
  );
  assert.equal(temporal.alwaysTrue('x', null as unknown as Sample[]).failures, [
    'temporal: x: series is not a list of samples',
  ]);
  assert.equal(temporal.rateWithin('x', series(1, 2), NaN, 3).failures, [
    'temporal: x: bound min is NaN, not a finite number',
  ]);
  assert.equal(temporal.ratioWithin('x', series(1), [{ atMs: 0 } as Sample], 0, 1).failures, [
    'temporal: x: series b sample 0 is unusable (atMs 0, value undefined)',
  ]);
  assert.equal(temporal.alwaysTrue('\x1b[2Jx', series(0)).failures, [
    'temporal: ^[[2Jx false at t=0.0s (1 of 1 samples false)',
  ]);
});

test.run();
