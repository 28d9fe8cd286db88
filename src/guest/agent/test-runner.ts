// One scheduler test inside the guest: loads the test file's bundle (which registers its
// tests), finds the test, builds `ctx` over the workload runner, and runs the body. The body's
// runs, logs and outcome (returned, threw, skipped) go back to the host as facts; the checks
// are judged there. Scheduler operations of the body (replace, detach, attach) go through the
// SchedulerControl the agent's plan runner provides.

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { makeContext } from '../../test-api/context.js';
import { openRegistry } from '../../test-api/registry.js';
import { TopologyView } from '../../test-api/topology.js';
import type { TestFacts, TestPlan } from '../plan.js';
import { WorkloadRunner, type SchedulerControl } from './workload/run-workers.js';
import type { HostRequests } from './host-requests.js';
import type { SnapshotData, WatchData, WatchHitData, WatchMode } from '../../test-api/capture.js';

export const RUN_DIR = '/tmp/ktstr-run';

function errorFacts(e: unknown): { message: string; stack: string } {
  if (e instanceof Error) return { message: e.message.slice(0, 4000), stack: (e.stack ?? '').slice(0, 16000) };
  return { message: String(e).slice(0, 4000), stack: '' };
}

function isSkip(e: unknown): e is { reason: string } {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'SkipTest' &&
    typeof (e as { reason?: unknown }).reason === 'string'
  );
}

export async function runTest(
  plan: TestPlan,
  o: {
    online: number[];
    schedExt: boolean;
    scheduler: SchedulerControl;
    log: (line: string) => void;
    host?: HostRequests;
  },
): Promise<TestFacts> {
  const facts: TestFacts = { runs: [], error: null, skipped: null, bodyMs: 0, logs: [] };
  const runner = new WorkloadRunner({
    online: o.online,
    schedExt: o.schedExt,
    scheduler: o.scheduler,
    runDir: RUN_DIR,
    log: o.log,
    payload: plan.payload,
  });
  const t0 = performance.now();
  try {
    mkdirSync(RUN_DIR, { recursive: true });
    process.setSourceMapsEnabled(true);
    const registry = openRegistry();
    createRequire('/ktstr/agent/agent.cjs')(plan.bundle);
    const test = registry.find((t) => t.name === plan.name);
    if (test === undefined)
      throw new Error(
        `test "${plan.name}" is not declared in ${plan.file} inside the guest (declared: ${registry.map((t) => t.name).join(', ') || 'none'})`,
      );
    const ctx = makeContext({
      name: plan.name,
      topo: new TopologyView(plan.places),
      scheduler: plan.scheduler,
      durationMs: plan.durationMs,
      runtime: {
        run: async (spec) => {
          const record = await runner.run(spec);
          facts.runs.push({ record, checks: spec.checks });
          return record;
        },
        log: (line) => runner.log(line),
        ...(o.host === undefined
          ? {}
          : {
              capture: async (label: string) => (await o.host!.ask({ kind: 'capture', label })) as SnapshotData,
              writeVar: async (name: string, value: number | string) => {
                await o.host!.ask({ kind: 'write-var', name, value });
              },
              watch: async (target: string, onWrite: WatchMode) =>
                (await o.host!.ask({ kind: 'watch', target, onWrite })) as WatchData,
              watches: {
                hits: async (id: number) =>
                  (await o.host!.ask({ kind: 'watch-hits', id })) as { watch: WatchData; hits: WatchHitData[] },
                unwatch: async (id: number) => (await o.host!.ask({ kind: 'unwatch', id })) as WatchData,
              },
            }),
      },
    });
    const value: unknown = await test.body(ctx);
    if (typeof value === 'object' && value !== null && typeof (value as { skip?: unknown }).skip === 'string')
      facts.skipped = (value as { skip: string }).skip;
  } catch (e) {
    if (isSkip(e)) facts.skipped = e.reason.slice(0, 1000);
    else facts.error = errorFacts(e);
  }
  facts.bodyMs = performance.now() - t0;
  facts.logs = runner.logs;
  return facts;
}
