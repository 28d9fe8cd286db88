// The runqueue sampler (assembly/introspect.ts sampleRunqueues, src/monitor/runqueues.ts
// RunqueueSampler) on synthetic per-CPU runqueues with offsets unlike any kernel's: exact
// counts, clock, current task and oldest runnable task per CPU; CPUs without a per-CPU offset;
// fields the kernel lacks; runnable lists that are too long, cyclic or broken; more CPUs than
// one call's output block; and the plain-TypeScript sampler (ts-walker.ts) agreeing with the
// core byte for byte on random and corrupted images.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as abi from '../../assembly/monitor-abi.js';
import type { RunqueueSample } from '../../src/monitor/runqueues.js';
import { DataViewWalker, loadPerCpuTs, sampleRunqueuesTs } from '../../src/monitor/ts-walker.js';
import { SyntheticGuest, rng } from './synthetic-guest.js';
import {
  RQ_TEST_OFFSETS,
  RUNQUEUES_SYM,
  SyntheticRunqueues,
  rqSpec,
  runqueueSampler as sampler,
  taskSpec,
} from './synthetic-runqueues.js';

test('the fake BTF gives the test offset table through monitorOffsets chains', () => {
  const g = new SyntheticGuest({ ramBytes: 8 << 20 });
  const rqs = new SyntheticRunqueues(g, 1);
  const intro = g.introspector();
  const s = sampler(intro, rqs);
  assert.ok(s.hasSchedExt);
  assert.is(s.cpus, 1);
  // the core reads the sums: a field only the summed offset reaches
  rqs.setRq(0, { ...rqSpec(0, 0, 10), cfsNr: 77, localDsqNr: 55 });
  const [r] = s.sample();
  assert.is(r.cfsNrRunning, 77);
  assert.is(r.localDsqDepth, 55);
});

test('four CPUs: counts, clock, current task and the oldest runnable task, exactly', () => {
  const g = new SyntheticGuest({ ramBytes: 16 << 20 });
  const rqs = new SyntheticRunqueues(g, 4);
  const lists = [0, 1, 5, 3];
  const specs = lists.map((n, cpu) => rqSpec(cpu, n, 100 * (cpu + 1)));
  // CPU 2's oldest task sits in the middle of its list; CPU 3's two oldest tie (the first wins)
  specs[2].runnable = [
    taskSpec(300, 9000n),
    taskSpec(301, 8000n),
    taskSpec(302, 7000n, 1),
    taskSpec(303, 7500n),
    taskSpec(304, 9999n),
  ];
  specs[3].runnable = [taskSpec(400, 5000n), taskSpec(401, 4000n), taskSpec(402, 4000n)];
  specs[1].curr = { pid: 4242, comm: 'a-fifteen-char!', policy: 1, runnableAt: 0n };
  specs[3].steal = 0x1_2345_6789_abcdn; // rq->prev_steal_time, all 64 bits
  specs.forEach((s, cpu) => rqs.setRq(cpu, s));
  const intro = g.introspector();
  const samples = sampler(intro, rqs).sample();
  assert.is(samples.length, 4);
  const expect = (cpu: number, r: RunqueueSample): void => {
    const s = specs[cpu];
    assert.equal(
      { ...r },
      {
        cpu,
        readable: true,
        nrRunning: s.nrRunning,
        cfsNrRunning: s.cfsNr,
        scxNrRunning: s.scxNr,
        localDsqDepth: s.localDsqNr,
        scxFlags: s.scxFlags,
        clockNs: s.clock,
        stealNs: s.steal ?? 0n,
        curr: { pid: s.curr!.pid, comm: s.curr!.comm, policy: s.curr!.policy },
        runnable: s.runnable.length,
        oldest: r.oldest,
        listTruncated: false,
        listBroken: false,
      },
      `cpu ${cpu}`,
    );
  };
  samples.forEach((r, cpu) => expect(cpu, r));
  assert.is(samples[0].oldest, null);
  assert.equal(samples[1].oldest, { pid: 200, runnableAt: specs[1].runnable[0].runnableAt });
  assert.equal(samples[2].oldest, { pid: 302, runnableAt: 7000n });
  assert.equal(samples[3].oldest, { pid: 401, runnableAt: 4000n });
  assert.is(samples[1].curr!.comm, 'a-fifteen-char!');
  // the raw record: the rq's address, rq->cpu as stored, rq->curr
  const v = new DataView(intro.memory.buffer, intro.core.rqOutPtr());
  intro.core.sampleRunqueues(0, 4, 100);
  for (let cpu = 0; cpu < 4; cpu++) {
    const o = cpu * abi.RQ_RECORD_SIZE;
    assert.is(v.getBigUint64(o + abi.RQ_KVA, true), rqs.rqKva[cpu]);
    assert.is(v.getUint32(o + abi.RQ_CPU, true), cpu);
    assert.is(v.getUint32(o + abi.RQ_FLAGS, true), abi.RQF_READ | abi.RQF_CURR | abi.RQF_SCX);
  }
});

test('a CPU without a per-CPU offset and a CPU whose rq is outside guest memory', () => {
  const g = new SyntheticGuest({ ramBytes: 8 << 20 });
  const rqs = new SyntheticRunqueues(g, 4);
  for (let cpu = 0; cpu < 4; cpu++) rqs.setRq(cpu, rqSpec(cpu, 2, 10 * cpu + 10));
  g.w64(rqs.perCpuPa + 2 * 8, 0n); // CPU 2: never came up
  g.w64(rqs.perCpuPa + 3 * 8, g.kva(g.ramBytes + 0x10_0000) - RUNQUEUES_SYM); // CPU 3: past RAM
  const intro = g.introspector();
  const s = sampler(intro, rqs).sample();
  assert.is(s[1].readable, true);
  assert.is(s[1].runnable, 2);
  const v = new DataView(intro.memory.buffer, intro.core.rqOutPtr());
  for (const cpu of [2, 3]) {
    assert.is(s[cpu].readable, false, `cpu ${cpu}`);
    assert.is(s[cpu].curr, null);
    assert.is(s[cpu].nrRunning + s[cpu].runnable + s[cpu].scxNrRunning, 0);
  }
  assert.is(v.getUint32(2 * abi.RQ_RECORD_SIZE + abi.RQ_FLAGS, true), abi.RQF_NO_CPU);
  assert.is(v.getUint32(3 * abi.RQ_RECORD_SIZE + abi.RQ_FLAGS, true), 0);
  assert.is(v.getBigUint64(2 * abi.RQ_RECORD_SIZE + abi.RQ_KVA, true), 0n);
});

test('fields the kernel lacks (MON_ABSENT) read as 0; without sched_ext no list is walked', () => {
  const g = new SyntheticGuest({ ramBytes: 8 << 20 });
  const rqs = new SyntheticRunqueues(g, 2);
  rqs.setRq(0, rqSpec(0, 3, 50));
  rqs.setRq(1, rqSpec(1, 2, 60));
  const intro = g.introspector();
  // the values are in memory; the table says the kernel has no such fields
  const s = sampler(intro, rqs, 100, [
    'cfs_rq.nr_running',
    'rq.clock',
    'task_struct.policy',
    'scx_dispatch_q',
  ]).sample();
  assert.is(s[0].readable, true);
  assert.is(s[0].cfsNrRunning, 0);
  assert.is(s[0].clockNs, 0n);
  assert.is(s[0].localDsqDepth, 0);
  assert.equal(s[0].curr, { pid: 53, comm: 'worker-53', policy: 0 });
  assert.is(s[0].nrRunning, 4);
  assert.is(s[0].runnable, 3);
  const stock = sampler(intro, rqs, 100, ['rq.scx', 'task_struct.scx']);
  assert.is(stock.hasSchedExt, false);
  const r = stock.sample()[1];
  assert.equal([r.scxNrRunning, r.scxFlags, r.localDsqDepth, r.runnable, r.oldest], [0, 0, 0, 0, null]);
  assert.is(r.nrRunning, 3);
  assert.is(r.clockNs, 2_000_012_345n);
  const v = new DataView(intro.memory.buffer, intro.core.rqOutPtr());
  assert.is(v.getUint32(abi.RQ_RECORD_SIZE + abi.RQ_FLAGS, true) & abi.RQF_SCX, 0);
});

test('a runnable list longer than the bound stops there, flagged truncated', () => {
  const g = new SyntheticGuest({ ramBytes: 8 << 20 });
  const rqs = new SyntheticRunqueues(g, 1);
  const spec = rqSpec(0, 0, 1);
  spec.runnable = [500n, 400n, 450n, 420n, 100n, 90n, 80n].map((at, i) => taskSpec(1000 + i, at));
  rqs.setRq(0, spec);
  const intro = g.introspector();
  const [r] = sampler(intro, rqs, 4).sample();
  assert.is(r.runnable, 4);
  assert.ok(r.listTruncated);
  assert.not.ok(r.listBroken);
  assert.equal(r.oldest, { pid: 1001, runnableAt: 400n }); // of the four walked
  const [all] = sampler(intro, rqs, 7).sample();
  assert.equal([all.runnable, all.listTruncated, all.oldest], [7, false, { pid: 1006, runnableAt: 80n }]);
  const [none] = sampler(intro, rqs, 0).sample();
  assert.equal([none.runnable, none.listTruncated, none.oldest], [0, true, null]);
});

test('a cyclic list that never returns to its head is walked to the bound, flagged truncated', () => {
  const g = new SyntheticGuest({ ramBytes: 8 << 20 });
  const rqs = new SyntheticRunqueues(g, 1);
  const {
    runnable: [a, b, c],
  } = rqs.setRq(0, { ...rqSpec(0, 0, 1), runnable: [taskSpec(7, 30n), taskSpec(8, 20n), taskSpec(9, 25n)] });
  g.w64(rqs.nodePa(c), rqs.nodeKva(b)); // head -> a -> b -> c -> b -> c ...
  const intro = g.introspector();
  for (const limit of [100, 4096, 1 << 20]) {
    const [r] = sampler(intro, rqs, limit).sample();
    assert.is(r.runnable, Math.min(limit, 65536), `limit ${limit}`);
    assert.ok(r.listTruncated);
    assert.not.ok(r.listBroken);
    assert.equal(r.oldest, { pid: 8, runnableAt: 20n });
  }
  // a self-loop on the first task
  g.w64(rqs.nodePa(a), rqs.nodeKva(a));
  const [r] = sampler(intro, rqs, 50).sample();
  assert.equal([r.runnable, r.listTruncated, r.oldest], [50, true, { pid: 7, runnableAt: 30n }]);
});

test('a broken link stops the walk, flagged broken, with the tasks before it counted', () => {
  const g = new SyntheticGuest({ ramBytes: 8 << 20 });
  const rqs = new SyntheticRunqueues(g, 3);
  const lists = [0, 1, 2].map((cpu) => rqs.setRq(cpu, rqSpec(cpu, 4, 100 * cpu + 100)).runnable);
  g.w64(rqs.nodePa(lists[0][1]), 0xdead_0000_0000_0100n); // LIST_POISON1: non-canonical
  g.w64(rqs.nodePa(lists[1][2]), g.kva(g.ramBytes - 4)); // next is readable, its task's runnable_at is not
  g.w64(rqs.listHeadPa(2), 0n); // a NULL head: the first task would be at -node offset
  const intro = g.introspector();
  const s = sampler(intro, rqs, 100).sample();
  assert.equal([s[0].runnable, s[0].listBroken, s[0].listTruncated], [2, true, false]);
  assert.equal([s[1].runnable, s[1].listBroken], [3, true]);
  assert.equal([s[2].runnable, s[2].listBroken, s[2].oldest], [0, true, null]);
  for (const r of s) assert.is(r.readable && r.curr !== null, true); // the rest of the record stands
});

test('more CPUs than one call holds: RunqueueSampler samples 600 in chunks of 512', () => {
  const g = new SyntheticGuest({ ramBytes: 48 << 20 });
  const rqs = new SyntheticRunqueues(g, 600);
  for (let cpu = 0; cpu < 600; cpu++) {
    rqs.setRq(cpu, { ...rqSpec(cpu, cpu % 3, 10_000 + cpu * 4), nrRunning: (cpu * 7) % 23 });
  }
  const intro = g.introspector();
  const s = sampler(intro, rqs);
  assert.is(s.cpus, 600);
  assert.is(intro.core.sampleRunqueues(0, 600, 10), abi.RQ_OUT_RECORDS);
  assert.is(intro.core.sampleRunqueues(512, 600, 10), 88);
  const all = s.sample();
  assert.is(all.length, 600);
  for (const r of all) {
    assert.is(r.nrRunning, (r.cpu * 7) % 23, `cpu ${r.cpu}`);
    assert.is(r.runnable, r.cpu % 3);
    assert.is(r.curr!.pid, 10_000 + r.cpu * 4 + (r.cpu % 3));
    assert.is(r.clockNs, 1_000_000_000n * BigInt(r.cpu + 1) + 12_345n);
  }
});

// ---- the TS oracle ----------------------------------------------------------------------------------

/** Random runqueues, then random damage: words overwritten with pointers into the image, links cut or redirected. */
function randomImage(seed: number): {
  g: SyntheticGuest;
  rqs: SyntheticRunqueues;
  rand: () => number;
  offsets: number[];
} {
  const rand = rng(seed);
  const g = new SyntheticGuest({ ramBytes: 8 << 20 });
  const cpus = 1 + (rand() % 24);
  const layout = [...RQ_TEST_OFFSETS];
  if (seed % 3 === 2) layout[abi.MON_TASK_RUNNABLE_NODE] = 0; // the node at the start of task_struct
  const rqs = new SyntheticRunqueues(g, cpus, layout, cpus + (rand() % 3));
  // what the core is told: the layout, some fields absent or off by a few bytes
  const offsets = [...layout];
  for (let i = 0; seed % 3 === 1 && i < 4; i++) {
    const k = rand() % abi.MON_COUNT;
    offsets[k] = rand() % 2 === 0 ? abi.MON_ABSENT : layout[k] + (rand() % 16);
  }
  const tasks: bigint[] = [];
  for (let cpu = 0; cpu < cpus; cpu++) {
    const spec = rqSpec(cpu, rand() % 9, 1 + (rand() % 30000), BigInt(rand()) * 5n);
    spec.runnable.forEach((t) => {
      t.runnableAt = BigInt(rand() % 1000);
    });
    if (rand() % 8 === 0) spec.curr = null;
    const made = rqs.setRq(cpu, spec);
    for (const t of made.runnable) tasks.push(rqs.nodeKva(t));
  }
  const damage = seed % 4 === 0 ? 0 : 1 + (rand() % 12);
  for (let i = 0; i < damage; i++) {
    const cpu = rand() % cpus;
    const where = rand() % 5;
    const value = [
      0n,
      tasks[rand() % Math.max(1, tasks.length)] ?? 0n,
      g.kva(rand() % g.ramBytes),
      BigInt(rand()) << 32n,
      rqs.listHeadKva(cpu),
    ][rand() % 5];
    if (where === 0)
      g.w64(rqs.perCpuPa + cpu * 8, value); // a per-CPU offset
    else if (where === 1 && offsets[abi.MON_RQ_CURR] >= 0) g.w64(rqs.rqPa[cpu] + offsets[abi.MON_RQ_CURR], value);
    else if (tasks.length > 0) g.w64(Number(tasks[rand() % tasks.length] - g.pageOffset), value); // a link
  }
  return { g, rqs, rand, offsets };
}

test('the TypeScript sampler writes the same records as the core on random, damaged images', () => {
  let compared = 0;
  let flagsSeen = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const { g, rqs, rand, offsets } = randomImage(seed);
    const intro = g.introspector();
    const cpus = rqs.configure(intro, offsets);
    const config = rqs.config(offsets);
    const walker = new DataViewWalker(g.view, intro.regions);
    walker.setPaging(BigInt(g.cr3), false);
    walker.setKernel(g.pageOffset, 0n);
    const perCpu = loadPerCpuTs(walker, config);
    assert.is(perCpu.length / 2, cpus);
    const limit = [0, 3, 100, 4096][rand() % 4];
    const n = intro.core.sampleRunqueues(0, cpus, limit);
    const out = new DataView(new ArrayBuffer(abi.RQ_OUT_RECORDS * abi.RQ_RECORD_SIZE));
    assert.is(sampleRunqueuesTs(walker, config, perCpu, 0, cpus, limit, out), n, `seed ${seed}`);
    const wasm = new Uint8Array(intro.memory.buffer, intro.core.rqOutPtr(), n * abi.RQ_RECORD_SIZE);
    const ts = new Uint8Array(out.buffer, 0, n * abi.RQ_RECORD_SIZE);
    for (let cpu = 0; cpu < n; cpu++) {
      const o = cpu * abi.RQ_RECORD_SIZE;
      assert.equal(
        [...ts.subarray(o, o + abi.RQ_RECORD_SIZE)],
        [...wasm.subarray(o, o + abi.RQ_RECORD_SIZE)],
        `seed ${seed} cpu ${cpu}`,
      );
      flagsSeen |= out.getUint32(o + abi.RQ_FLAGS, true);
      compared++;
    }
  }
  assert.ok(compared > 300, `${compared} records compared`);
  // the images reach every outcome the flags describe
  assert.is(
    flagsSeen,
    abi.RQF_READ | abi.RQF_CURR | abi.RQF_SCX | abi.RQF_LIST_TRUNCATED | abi.RQF_LIST_BROKEN | abi.RQF_NO_CPU,
  );
});

test.run();
