// checkSchedDomains on domain hierarchies as a 6.12 guest built them (shapes read from live
// tiny-2llc and smt-2llc cells): the declared topology passes; a wrong LLC, SMT or NUMA
// declaration is flagged with the CPU and what it expected.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkSchedDomains, type CpuDomains, type CpuPlace } from '../../src/monitor/sched-domains.js';

const LLC = ['SD_BALANCE_NEWIDLE', 'SD_SHARE_LLC'];
const SMT = ['SD_BALANCE_NEWIDLE', 'SD_SHARE_CPUCAPACITY', 'SD_SHARE_LLC'];
const PKG = ['SD_BALANCE_NEWIDLE'];
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

function places(nodes: number, llcsPerNode: number, cores: number, threads: number): CpuPlace[] {
  const out: CpuPlace[] = [];
  for (let n = 0; n < nodes; n++)
    for (let l = 0; l < llcsPerNode; l++)
      for (let c = 0; c < cores; c++)
        for (let t = 0; t < threads; t++) {
          out.push({ cpu: out.length, node: n, llc: n * llcsPerNode + l, core: c, thread: t });
        }
  return out;
}

/** tiny-2llc: MC over each LLC pair, PKG over all four. */
const tiny2: CpuDomains[] = range(0, 3).map((cpu) => ({
  cpu,
  domains: [
    { level: 2, flags: 0, flagNames: LLC, span: cpu < 2 ? [0, 1] : [2, 3] },
    { level: 3, flags: 0, flagNames: PKG, span: [0, 1, 2, 3] },
  ],
}));

/** smt-2llc: SMT pairs, MC over each LLC of 4, PKG over 8. */
const smt2: CpuDomains[] = range(0, 7).map((cpu) => ({
  cpu,
  domains: [
    { level: 0, flags: 0, flagNames: SMT, span: cpu % 2 === 0 ? [cpu, cpu + 1] : [cpu - 1, cpu] },
    { level: 2, flags: 0, flagNames: LLC, span: cpu < 4 ? range(0, 3) : range(4, 7) },
    { level: 3, flags: 0, flagNames: PKG, span: range(0, 7) },
  ],
}));

test('the declared topologies pass', () => {
  assert.equal(checkSchedDomains(tiny2, places(1, 2, 2, 1)), { ok: true, problems: [] });
  assert.equal(checkSchedDomains(smt2, places(1, 2, 2, 2)), { ok: true, problems: [] });
});

test('a wrong LLC is flagged: one LLC over all, interleaved LLCs, one-CPU LLCs', () => {
  const one = checkSchedDomains(tiny2, places(1, 1, 4, 1));
  assert.is(one.ok, false);
  assert.match(
    one.problems[0],
    /^cpu 0: no sched domain with SD_SHARE_LLC spans its LLC 0-3 \(domains: llc2=0-1 lvl3=0-3\)/,
  );
  const interleaved = checkSchedDomains(
    tiny2,
    range(0, 3).map((cpu) => ({ cpu, node: 0, llc: cpu % 2, core: cpu, thread: 0 })),
  );
  assert.match(interleaved.problems[0], /^cpu 0: no sched domain with SD_SHARE_LLC spans its LLC 0,2/);
  const singles = checkSchedDomains(tiny2, places(1, 4, 1, 1));
  assert.match(singles.problems.join('\n'), /cpu 0: level 2 shares an LLC over 0-1, beyond its declared LLC 0/);
});

test('a wrong SMT or NUMA declaration is flagged; an unreadable walk is a problem, not a pass', () => {
  const noSmt = checkSchedDomains(tiny2, places(1, 2, 1, 2));
  assert.match(noSmt.problems[0], /cpu 0: no sched domain with SD_SHARE_CPUCAPACITY spans its SMT siblings 0-1/);
  const numa = checkSchedDomains(tiny2, places(2, 1, 2, 1));
  assert.is(numa.ok, true, 'two nodes of one LLC each: the node is the LLC domain');
  const numa4 = checkSchedDomains(smt2, places(2, 1, 2, 2));
  assert.is(numa4.ok, true);
  const broken: CpuDomains[] = [{ cpu: 0, domains: [], error: 'rq->sd unreadable' }, ...tiny2.slice(1)];
  assert.match(checkSchedDomains(broken, places(1, 2, 2, 1)).problems[0], /^cpu 0: rq->sd unreadable/);
  assert.match(checkSchedDomains(tiny2.slice(1), places(1, 2, 2, 1)).problems[0], /^cpu 0: no domains read/);
});

test.run();
