// The agent's initramfs: the base archive is built once into the cache (a file the VMM reads
// straight into guest RAM) and reused; the plan rides in a second archive; together they hold
// /init, Node, the addon, the agent, the scheduler at a guest path and the plan.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AgentImageCache,
  agentHostFiles,
  GUEST_ADDON,
  GUEST_AGENT_SCRIPT,
  GUEST_NODE,
} from '../../src/guest/agent-initramfs.js';
import { readCpio } from '../../src/guest/cpio.js';
import { PLAN_PATH, PLAN_VERSION, type AgentPlan } from '../../src/guest/plan.js';

const plan: AgentPlan = {
  version: PLAN_VERSION,
  nonce: '0123456789abcdef',
  cell: 'sweep/x/k/t',
  scheduler: { name: 'x', path: '/sched/busybox', args: [] },
  attachTimeoutMs: 1,
  probeMs: 1,
  stopTimeoutMs: 1,
  hostReadTimeoutMs: 1,
  ring: null,
  test: null,
};

test('built once into the cache, reused, and complete with the plan', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-agent-cache-'));
  try {
    const files = agentHostFiles();
    const scheduler = files.busybox; // any static binary stands in for a scheduler here
    const cache = new AgentImageCache(files, dir);
    const [a, b] = await Promise.all([cache.base(scheduler), cache.base(scheduler)]);
    assert.is(a, b, 'one build for concurrent callers');
    const built = statSync(a).mtimeMs;
    assert.is(await new AgentImageCache(files, dir).base(scheduler), a, 'a second cache finds the file');
    assert.is(statSync(a).mtimeMs, built, 'not rebuilt');
    const [base, planArchive] = await cache.initrd(scheduler, plan);
    const names = new Set(readCpio(Buffer.concat([readFileSync(base), planArchive])).map((e) => e.path));
    for (const p of ['/init', GUEST_NODE, GUEST_ADDON, GUEST_AGENT_SCRIPT, '/sched/busybox', PLAN_PATH])
      assert.ok(names.has(p), `${p} is in the initramfs`);
    assert.ok(!existsSync(join(dir, `${a}.tmp`)));
    const other = await cache.base(null);
    assert.is.not(other, a, 'another scheduler, another entry');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
