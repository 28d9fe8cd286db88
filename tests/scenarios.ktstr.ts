// Every canned scenario on scx-ktstr, on a 2-LLC machine (steadyLlc needs two LLCs). The
// same suite on another scheduler: `ktstr-wasm test tests/scenarios.ktstr.ts --scheduler
// scx_simple` (or `--scheduler eevdf`, or `--compare-eevdf` for both side by side).
import { ktstrTest, scenarios, type ScenarioName } from 'ktstr-wasm/test';

const ALL: ScenarioName[] = [
  'steady',
  'steadyLlc',
  'oversubscribed',
  'cpusetApply',
  'cpusetClear',
  'cpusetResize',
  'cgroupAdd',
  'cgroupRemove',
  'affinityChange',
  'affinityPinned',
  'hostContention',
  'mixedWorkloads',
  'nestedSteady',
  'nestedTaskMove',
  'weights',
  'wakeupStorm',
  'forkStorm',
  'idleMostly',
  'schedulerSwap',
];

for (const name of ALL) {
  ktstrTest(`scenario ${name}`, { llcs: 2, cores: 2, scheduler: 'scx-ktstr', duration: '6s' }, (ctx) =>
    scenarios[name](ctx),
  );
}
