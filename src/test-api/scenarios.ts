// Canned scenarios: each a function of `ctx` (and optional overrides) that builds cgroups and
// workers, runs them, and leaves the judging to the checks. Each states in one line what it
// proves; a topology that cannot host one ends the test as skipped, with the reason.

import type { RunRecord } from './record.js';
import { cgroup, type CgroupDef } from './cgroup.js';
import type { RunOptions, TestContext } from './context.js';
import { at, type OpSpec } from './ops.js';
import { work, type WorkSpec } from './work.js';
import { toMs } from './duration.js';

export interface ScenarioOptions extends RunOptions {
  /** Workers per cgroup (each scenario has its own default, usually the CPU count). */
  workers?: number;
  work?: WorkSpec;
}

type Scenario = (ctx: TestContext, o?: ScenarioOptions) => Promise<RunRecord>;

const half = (cpus: number[]): [number[], number[]] => [
  cpus.slice(0, Math.ceil(cpus.length / 2)),
  cpus.slice(Math.ceil(cpus.length / 2)),
];
const needCpus = (ctx: TestContext, n: number, what: string): void => {
  if (ctx.topo.cpus < n) ctx.skip(`${what} needs at least ${n} CPUs (this VM has ${ctx.topo.cpus})`);
};
const runOpts = (o: ScenarioOptions, ops?: (ms: number) => OpSpec[]): RunOptions => ({
  ...o,
  ops: [...(ops === undefined ? [] : ops(0)), ...(o.ops ?? [])],
});
/** A time `f` of the way through the run. */
const frac = (ctx: TestContext, o: ScenarioOptions, f: number): number =>
  Math.floor(f * (o.duration === undefined ? ctx.durationMs : toMs(o.duration, 'duration')));

/** A deterministic pseudo-random generator (tests are reproducible). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export const scenarios = {
  /** Two cgroups of equal spinners share the machine evenly; nobody starves. */
  steady: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run([cgroup('cg_0').workers(n, o.work), cgroup('cg_1').workers(n, o.work)], runOpts(o));
  },
  /** One cgroup per LLC, confined to it: each LLC's workers stay home and share it evenly. */
  steadyLlc: (ctx, o = {}) => {
    if (ctx.topo.llcs < 2) ctx.skip(`steadyLlc needs at least 2 LLCs (this VM has ${ctx.topo.llcs})`);
    const defs = Array.from({ length: ctx.topo.llcs }, (_, i) => {
      const cpus = ctx.topo.llc(i);
      return cgroup(`llc_${i}`)
        .cpuset(cpus)
        .workers(o.workers ?? cpus.length * 2, o.work);
    });
    return ctx.run(defs, runOpts(o));
  },
  /** Two cgroups of 32 mixed workers each: heavy oversubscription, still no starvation or long gap. */
  oversubscribed: (ctx, o = {}) => {
    const n = o.workers ?? 32;
    return ctx.run(
      [cgroup('cg_0').workers(n, o.work ?? work.mixed()), cgroup('cg_1').workers(n, o.work ?? work.mixed())],
      runOpts(o),
    );
  },
  /** Cpusets applied mid-run: from then on each cgroup runs only on its half. */
  cpusetApply: (ctx, o = {}) => {
    needCpus(ctx, 2, 'cpusetApply');
    const [a, b] = half(ctx.topo.all());
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [cgroup('a').workers(n, o.work), cgroup('b').workers(n, o.work)],
      runOpts(o, () => [at(frac(ctx, o, 1 / 3)).resize('a', a), at(frac(ctx, o, 1 / 3)).resize('b', b)]),
    );
  },
  /** Cpusets removed mid-run: confined workers spread back over the machine. */
  cpusetClear: (ctx, o = {}) => {
    needCpus(ctx, 2, 'cpusetClear');
    const [a, b] = half(ctx.topo.all());
    const n = o.workers ?? ctx.topo.cpus;
    const all = ctx.topo.all();
    return ctx.run(
      [cgroup('a').cpuset(a).workers(n, o.work), cgroup('b').cpuset(b).workers(n, o.work)],
      runOpts(o, () => [at(frac(ctx, o, 1 / 2)).resize('a', all), at(frac(ctx, o, 1 / 2)).resize('b', all)]),
    );
  },
  /** A cpuset shrunk, then grown: workers follow it in each phase. */
  cpusetResize: (ctx, o = {}) => {
    needCpus(ctx, 2, 'cpusetResize');
    const all = ctx.topo.all();
    const [a] = half(all);
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [cgroup('a').workers(n, o.work), cgroup('b').workers(n, o.work)],
      runOpts(o, () => [at(frac(ctx, o, 1 / 3)).resize('a', a), at(frac(ctx, o, 2 / 3)).resize('a', all)]),
    );
  },
  /** A cgroup appears mid-run: its workers get CPU at once; the others keep going. */
  cgroupAdd: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [cgroup('a').workers(n, o.work), cgroup('b').workers(n, o.work)],
      runOpts(o, () => [at(frac(ctx, o, 1 / 2)).add(cgroup('c').workers(n, o.work))]),
    );
  },
  /** A cgroup vanishes mid-run (workers stopped, directory removed): the rest take over its CPU. */
  cgroupRemove: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [cgroup('a').workers(n, o.work), cgroup('b').workers(n, o.work)],
      runOpts(o, () => [at(frac(ctx, o, 1 / 2)).remove('b')]),
    );
  },
  /** Random CPU affinities applied four times: workers always run inside the current one. */
  affinityChange: (ctx, o = {}) => {
    needCpus(ctx, 2, 'affinityChange');
    const rnd = lcg(0x6b747374);
    const all = ctx.topo.all();
    const pick = (): number[] => {
      const s = all.filter(() => rnd() < 0.5);
      return s.length > 0 ? s : [all[Math.floor(rnd() * all.length)]];
    };
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [cgroup('a').workers(n, o.work), cgroup('b').workers(n, o.work)],
      runOpts(o, () =>
        [1, 2, 3, 4].flatMap((k) => [
          at(frac(ctx, o, k / 5)).affinity('a', pick()),
          at(frac(ctx, o, k / 5)).affinity('b', pick()),
        ]),
      ),
    );
  },
  /** Everyone pinned to two CPUs: heavy contention on them, none elsewhere. */
  affinityPinned: (ctx, o = {}) => {
    needCpus(ctx, 2, 'affinityPinned');
    const two = ctx.topo.all().slice(0, 2);
    const n = o.workers ?? 4;
    return ctx.run(
      [cgroup('a').affinity(two).workers(n, o.work), cgroup('b').affinity(two).workers(n, o.work)],
      runOpts(o),
    );
  },
  /** Cgroup workers against unconstrained workers of the root-level `host` cgroup: both make progress. */
  hostContention: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [cgroup('a').workers(n, o.work), cgroup('host').policy('normal').workers(n, work.spin())],
      runOpts(o),
    );
  },
  /** Heavy spinners, bursty and IO-like sleepers side by side: the sleepers' wakeups stay prompt. */
  mixedWorkloads: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [
        cgroup('heavy').workers(n, work.spin()),
        cgroup('bursty').workers(n, work.burst()),
        cgroup('io').workers(n, work.sleepy({ runUs: 200, sleepUs: 2000 })),
      ],
      runOpts(o),
    );
  },
  /** A two-level hierarchy of spinners: shares hold through nesting. */
  nestedSteady: (ctx, o = {}) => {
    const n = o.workers ?? Math.max(1, Math.floor(ctx.topo.cpus / 2));
    return ctx.run(
      [
        cgroup('p0').children(cgroup('c0').workers(n, o.work), cgroup('c1').workers(n, o.work)),
        cgroup('p1').children(cgroup('c0').workers(n, o.work), cgroup('c1').workers(n, o.work)),
      ],
      runOpts(o),
    );
  },
  /** Workers moved between nested cgroups mid-run keep running without a gap. */
  nestedTaskMove: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [
        cgroup('p0').children(cgroup('c0').workers(n, o.work), cgroup('c1').workers(1, o.work)),
        cgroup('p1').children(cgroup('c0').workers(1, o.work)),
      ],
      runOpts(o, () => [
        at(frac(ctx, o, 1 / 3)).moveWorkers('p0/c0', 'p0/c1', Math.max(1, Math.floor(n / 2))),
        at(frac(ctx, o, 2 / 3)).moveWorkers('p0/c1', 'p1/c0', 1),
      ]),
    );
  },
  /** cpu.weight 1:2:4 on three cgroups of spinners: CPU time follows the weights. */
  weights: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [100, 200, 400].map((w) => cgroup(`w${w}`).weight(w).workers(n, o.work)),
      runOpts(o),
    );
  },
  /** Pipe ping-pong pairs across the machine: wakeup latency p99 stays low. */
  wakeupStorm: (ctx, o = {}) => {
    const pairs = o.workers ?? ctx.topo.cpus;
    return ctx.run([cgroup('storm').workers(pairs * 2, work.pipePingPong())], runOpts(o));
  },
  /** fork + exec churn beside spinners: task creation neither stalls nor starves anyone. */
  forkStorm: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run([cgroup('forkers').workers(n, work.forkExec()), cgroup('spin').workers(n, work.spin())], runOpts(o));
  },
  /** Mostly sleeping workers: every sleep ends in a wakeup (none lost), promptly. */
  idleMostly: (ctx, o = {}) => {
    const n = o.workers ?? ctx.topo.cpus * 2;
    return ctx.run([cgroup('idle').workers(n, work.sleepy({ runUs: 100, sleepUs: 10_000 }))], runOpts(o));
  },
  /** The scheduler replaced mid-run, then detached back to EEVDF: no worker stalls across either switch. */
  schedulerSwap: (ctx, o = {}) => {
    if (ctx.scheduler === null)
      ctx.skip('schedulerSwap needs a sched_ext scheduler under test (this test runs under EEVDF)');
    const n = o.workers ?? ctx.topo.cpus;
    return ctx.run(
      [cgroup('a').workers(n, o.work), cgroup('b').workers(n, o.work)],
      runOpts(o, () => [
        at(frac(ctx, o, 1 / 3)).replaceScheduler(ctx.scheduler as string),
        at(frac(ctx, o, 2 / 3)).detachScheduler(),
      ]),
    );
  },
} satisfies Record<string, Scenario>;

export type ScenarioName = keyof typeof scenarios;
export type { CgroupDef };
