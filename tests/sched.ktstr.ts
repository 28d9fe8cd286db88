// The three tests: steady on scx-ktstr, two cgroups under EEVDF, and pinned halves
// that must stay on their LLC while sharing it fairly.
import { ktstrTest, scenarios, cgroup, work } from 'ktstr-wasm/test';

ktstrTest('steady', { llcs: 1, cores: 2, threads: 1, scheduler: 'scx-ktstr' }, (ctx) => scenarios.steady(ctx));

ktstrTest('two cgroups share the box', { llcs: 2, cores: 2 }, (ctx) =>
  ctx.run([cgroup('cg_0').workers(2), cgroup('cg_1').workers(2)]),
);

ktstrTest('pinned halves stay home', { llcs: 2, cores: 2, scheduler: 'scx-ktstr', duration: '5s' }, (ctx) =>
  ctx.run(
    [
      cgroup('a').cpuset(ctx.topo.llc(0)).workers(4, work.spin()),
      cgroup('b').cpuset(ctx.topo.llc(1)).workers(4, work.yieldHeavy()),
    ],
    { checks: { isolation: true, fairness: { maxSpreadPct: 25 } } },
  ),
);
