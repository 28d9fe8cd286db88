// `ktstr-wasm/test`: what a scheduler test file imports — ktstrTest, cgroup, work, at,
// scenarios and the types of ctx, options and reports (docs/test-api.md).

export { ktstrTest, type DeclaredTest, type TestBody } from './registry.js';
export { cgroup, CgroupDef, type CgroupSpec, type CpuSet, type Policy } from './cgroup.js';
export { work, type WorkSpec } from './work.js';
export { at, type OpSpec } from './ops.js';
export { scenarios, type ScenarioOptions, type ScenarioName } from './scenarios.js';
export type { TestContext, RunOptions } from './context.js';
export type { TestOptions, PayloadSpec, CheckOverrides } from './options.js';
export type { TopologyView } from './topology.js';
export type { Duration } from './duration.js';
export type { RunRecord, WorkerReport, RunPhase, CgroupRecord, WorkKind } from './record.js';
export {
  Snapshot,
  MapView,
  MapEntry,
  SnapshotPathError,
  getPath,
  type SnapshotData,
  type CapturedCpu,
  type CapturedMap,
} from './snapshot.js';
export { Watch, type WatchOptions, type WatchHit, type WatchMode } from './watch.js';
