// The host's check of the agent's facts (guest data the host does not trust).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFacts, factsFromRegion } from '../../src/cell/facts-check.js';
import { writeRecord } from '../../src/guest/ring.js';
import { GuestMemory } from '../../src/vmm/memory.js';

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

test('a report in the shared region: read back whole; a bad record is a reason, never a read out of bounds', () => {
  const memory = new GuestMemory(2 ** 20);
  const sharedRegion = { guestPhysAddr: 0x80000, size: 0x10000 };
  const live = { memory, sharedRegion };
  const region = memory.slice(sharedRegion.guestPhysAddr, sharedRegion.size);
  const record = writeRecord(region, 'result', Buffer.from(JSON.stringify(good), 'utf8'));
  assert.equal(factsFromRegion(live, record), { value: good });
  // a string the agent wrote is data to check, not a reason
  const text = writeRecord(region, 'result', Buffer.from(JSON.stringify('looks like a reason'), 'utf8'));
  assert.equal(factsFromRegion(live, text), { value: 'looks like a reason' });
  assert.is(factsFromRegion(live, { ...record, offset: 'x' }), 'its record is malformed');
  assert.is(factsFromRegion(live, null), 'its record is malformed');
  assert.match(String(factsFromRegion(live, { ...record, crc: record.crc ^ 1 })), /^its record is unreadable: /);
  assert.match(String(factsFromRegion(live, { ...record, offset: 2 ** 40 })), /^its record is unreadable: /);
  assert.match(String(factsFromRegion(live, { ...record, length: 2 ** 20 })), /^its record is unreadable: /);
  assert.is(factsFromRegion({ memory, sharedRegion: null }, record), 'no shared region');
  // bytes that pass the CRC but are not JSON
  const junk = writeRecord(region, 'result', Buffer.from('{not json', 'utf8'));
  assert.match(String(factsFromRegion(live, junk)), /^its record is unreadable: /);
});

test.run();
