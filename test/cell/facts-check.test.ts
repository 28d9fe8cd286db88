// The host's check of the agent's facts (guest data the host does not trust).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFacts } from '../../src/cell/facts-check.js';

const good = {
  schedExt: true,
  setupError: null,
  verifyMs: 1,
  attachMs: 2,
  stateAtAttach: 'enabled',
  ops: 'x',
  endedBeforeAttach: null,
  probe: {
    workers: [{ cpu: 0, iterations: 1, cpuTimeNs: 1, policy: 7 }],
    ms: 2000,
    stateAfter: 'enabled',
    schedulerAlive: true,
  },
  stop: { end: { code: 0, signal: null }, timedOut: false, stateAfter: 'disabled', ms: 1 },
  guestPrograms: [{ id: 1, name: 'p', verifiedInsns: 3, runCount: null, runTimeNs: null }],
  output: '',
  outputDropped: 0,
};

test('well-formed facts pass; each malformed field is named', () => {
  assert.type(checkFacts(good), 'object');
  assert.is(checkFacts(null), 'not an object');
  assert.is(checkFacts([]), 'not an object');
  assert.is(checkFacts({ ...good, attachMs: 'soon' }), 'attachMs');
  assert.is(checkFacts({ ...good, probe: { ...good.probe, workers: 'many' } }), 'probe');
  assert.is(
    checkFacts({
      ...good,
      probe: { ...good.probe, workers: [{ cpu: 0, iterations: Infinity, cpuTimeNs: 1, policy: 7 }] },
    }),
    'probe.workers',
  );
  assert.is(
    checkFacts({ ...good, probe: { ...good.probe, workers: new Array(5000).fill(good.probe.workers[0]) } }),
    'probe',
  );
  assert.is(checkFacts({ ...good, stop: { ...good.stop, end: { code: 'x', signal: null } } }), 'stop');
  assert.is(checkFacts({ ...good, guestPrograms: [{ id: 1 }] }), 'guestPrograms[]');
  assert.is(checkFacts({ ...good, output: 42 }), 'output');
});

test.run();
