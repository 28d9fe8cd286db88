// The host's checks of a test body's requests (src/cell/host-request-handler.ts): every field
// is hostile input, refused with a message naming the request, before anything touches the VM;
// a monitor that has not found the guest kernel says so.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DebugSlots } from '../../src/cell/debug-slots.js';
import { HostRequestHandler } from '../../src/cell/host-request-handler.js';
import type { MonitorSession } from '../../src/cell/monitor-session.js';
import type { LiveVm } from '../../src/vmm/index.js';

const vm = {
  setWatchpoints: async () => {
    throw new Error('the VM must not be touched');
  },
  onDebugHit: () => {},
  pause: async () => 0,
  resume: () => {},
} as unknown as LiveVm;
const located = { kernel: {}, error: null } as unknown as MonitorSession;

async function refusal(handler: HostRequestHandler, request: unknown): Promise<string> {
  try {
    await handler.answer(request);
  } catch (e) {
    return (e as Error).message;
  }
  return 'answered';
}

test('malformed requests are refused by name', async () => {
  const h = new HostRequestHandler(vm, located, new DebugSlots(vm));
  assert.is(await refusal(h, null), 'malformed request');
  assert.is(await refusal(h, 'capture'), 'malformed request');
  assert.is(await refusal(h, { kind: 'capture', label: 'x'.repeat(200) }), 'capture: malformed label');
  assert.is(await refusal(h, { kind: 'write-var', name: '', value: 1 }), 'write-var: malformed request');
  assert.is(await refusal(h, { kind: 'write-var', name: 'knob', value: {} }), 'write-var: malformed request');
  assert.is(await refusal(h, { kind: 'watch', target: 'knob', onWrite: 'explode' }), 'watch: malformed request');
  assert.is(
    await refusal(h, { kind: 'watch', target: 'k'.repeat(300), onWrite: 'capture' }),
    'watch: malformed request',
  );
  assert.is(await refusal(h, { kind: 'watch-hits', id: 'one' }), 'watch-hits: malformed request');
  assert.is(await refusal(h, { kind: 'unwatch', id: 1.5 }), 'unwatch: malformed request');
  assert.is(await refusal(h, { kind: 'watch-hits', id: 7 }), 'no watch 7 in this cell');
  assert.match(await refusal(h, { kind: 'format-disk' }), /^unknown request kind "format-disk"/);
});

test('before the monitor has found the guest kernel, every request says so', async () => {
  const h = new HostRequestHandler(
    vm,
    { kernel: null, error: 'monitor not started: no CR3' } as unknown as MonitorSession,
    new DebugSlots(vm),
  );
  assert.is(await refusal(h, { kind: 'capture', label: 'x' }), 'monitor not started: no CR3');
});

test.run();
