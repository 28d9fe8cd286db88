// The cell's four hardware watchpoints shared between the monitor and ctx.watch
// (src/cell/debug-slots.ts), over a recording stand-in for the VM: taking and freeing slots
// re-arms every vCPU with the right DR7, a full set refuses with the owners named, a refused
// arm gives the slot back, and a hit reaches the handler of each slot DR6 names.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DebugSlots } from '../../src/cell/debug-slots.js';
import type { DebugHit, HardwareWatch, LiveVm } from '../../src/vmm/index.js';

function fakeVm(refuse = false): {
  vm: LiveVm;
  armed: (HardwareWatch | null)[][];
  hit: (h: DebugHit) => Promise<void>;
} {
  const armed: (HardwareWatch | null)[][] = [];
  let handler: ((h: DebugHit) => Promise<void> | void) | undefined;
  const vm = {
    setWatchpoints: async (w: readonly (HardwareWatch | null)[]) => {
      if (refuse) throw new Error('KVM_SET_GUEST_DEBUG on vCPU 0: EINVAL');
      armed.push([...w]);
    },
    onDebugHit: (h: typeof handler) => {
      handler = h;
    },
  } as unknown as LiveVm;
  return {
    vm,
    armed,
    hit: async (h) => {
      await handler?.(h);
    },
  };
}

async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`no error matching ${re}`);
}

const w = (address: bigint): HardwareWatch => ({ address, length: 8, kind: 'write' });

test('slots are taken in order, armed on every change, and freed', async () => {
  const { vm, armed } = fakeVm();
  const slots = new DebugSlots(vm);
  assert.is(await slots.take('monitor', w(0x10n), () => {}), 0);
  assert.is(await slots.take('watch a', w(0x20n), () => {}), 1);
  assert.is(slots.free, 2);
  await slots.release(0);
  assert.equal(armed.at(-1), [null, w(0x20n), null, null]);
  assert.is(await slots.take('watch b', w(0x30n), () => {}), 0, 'a freed slot is reused');
  assert.is(armed.length, 4);
  await slots.release(0);
  await slots.release(0);
  assert.is(armed.length, 5, 'releasing a free slot does not re-arm');
});

test('a fifth watch is refused naming the owners; a refused arm frees its slot', async () => {
  const { vm } = fakeVm();
  const slots = new DebugSlots(vm);
  for (const n of ['monitor', 'a', 'b', 'c']) await slots.take(n, w(0x10n), () => {});
  await rejects(() => slots.take('d', w(0x20n), () => {}), /all 4 hardware watchpoints are taken \(monitor, a, b, c\)/);
  const refusing = new DebugSlots(fakeVm(true).vm);
  await rejects(() => refusing.take('x', w(0x20n), () => {}), /EINVAL/);
  assert.is(refusing.free, 4);
});

test('a hit goes to the handler of each fired slot', async () => {
  const { vm, hit } = fakeVm();
  const slots = new DebugSlots(vm);
  const seen: string[] = [];
  await slots.take('monitor', w(0x10n), (h) => {
    seen.push(`monitor@${h.vcpu}`);
  });
  await slots.take('watch', w(0x20n), (h) => {
    seen.push(`watch@${h.vcpu}`);
  });
  await hit({ vcpu: 1, exception: 1, pc: 0n, dr6: 0xffff0ff2n });
  await hit({ vcpu: 0, exception: 1, pc: 0n, dr6: 0xffff0ff3n });
  await hit({ vcpu: 0, exception: 1, pc: 0n, dr6: 0xffff0ff8n }); // slot 3: nobody's
  assert.equal(seen, ['watch@1', 'monitor@0', 'watch@0']);
});

test.run();
