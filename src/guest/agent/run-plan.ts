// One cell's plan, carried out inside the guest: start the scheduler, watch it verify and
// attach (a test cell: then say `attached` and take the test from the host), run the dispatch
// probe or the test, let the host read guest memory, stop the scheduler, and collect every
// fact on the way. Nothing is judged here (src/cell/verdict.ts does that);
// every wait is bounded by the plan's timeouts.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AgentFacts, AgentPlan, ProgramReport } from '../plan.js';
import type { AgentChannel } from './channel.js';
import { parseCpuList, ProbeWorkers } from './probe.js';
import { schedExtAvailable, schedExtEnableSeq, schedExtOps, schedExtState } from './sched-ext.js';
import { SchedulerProcess } from './scheduler-process.js';
import { runTest } from './test-runner.js';
import { HostRequests } from './host-requests.js';
import { receiveBody } from './cell-handoff.js';
import { native } from '../../kvm/native.js';
import type { SchedulerControl } from './workload/run-workers.js';

export interface AgentEnv {
  /** The native addon's path in the guest. */
  addon: string;
  /** The struct_ops programs the guest kernel has loaded (bpf(2)). */
  listPrograms: () => ProgramReport[];
}

const POLL_MS = 25;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function emptyFacts(): AgentFacts {
  return {
    schedExt: schedExtAvailable(),
    setupError: null,
    verifyMs: null,
    attachMs: null,
    stateAtAttach: '',
    ops: '',
    endedBeforeAttach: null,
    probe: null,
    stop: null,
    guestPrograms: [],
    output: '',
    outputDropped: 0,
    test: null,
  };
}

export async function runPlan(plan: AgentPlan, chan: AgentChannel, env: AgentEnv): Promise<AgentFacts> {
  const facts = emptyFacts();
  if (!facts.schedExt) {
    facts.setupError = 'kernel has no sched_ext (/sys/kernel/sched_ext is missing)';
    return facts;
  }
  const online = (): number[] => parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
  const host = new HostRequests(plan, chan, native);
  try {
    return await runPlanWith(plan, chan, env, facts, online, host);
  } finally {
    host.close();
  }
}

async function runPlanWith(
  plan: AgentPlan,
  chan: AgentChannel,
  env: AgentEnv,
  facts: AgentFacts,
  online: () => number[],
  host: HostRequests,
): Promise<AgentFacts> {
  if (plan.scheduler === null) {
    if (plan.test !== null) {
      // EEVDF: the body runs at once; a scheduler it attaches is its own business
      const control = new SwitchableScheduler(null, plan);
      chan.send({ type: 'phase', phase: 'body', atMs: performance.now(), wallClockMs: Date.now() });
      try {
        facts.test = await runTest(plan.test, {
          online: online(),
          schedExt: true,
          scheduler: control,
          log: () => {},
          host,
        });
        facts.test.stateAtEnd = schedExtState();
        facts.test.schedulerAlive = false;
        facts.test.detachedOnPurpose = control.switched;
      } finally {
        await control.stopAll(plan.stopTimeoutMs);
      }
    }
    return facts;
  }
  if (!existsSync(plan.scheduler.path)) {
    facts.setupError = `scheduler binary ${plan.scheduler.path} is missing in the guest`;
    return facts;
  }
  try {
    writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
  } catch {
    /* run counts stay 0 */
  }

  const list = (): ProgramReport[] => {
    try {
      return env.listPrograms();
    } catch {
      return [];
    }
  };
  const before = new Set(list().map((p) => p.id));
  const ours = (): ProgramReport[] => list().filter((p) => !before.has(p.id));

  // the probe's workers start now, parked, so their start-up overlaps the scheduler's load
  const cpus = online();
  const workers = plan.test === null && plan.awaitBody !== true ? new ProbeWorkers({ addon: env.addon, cpus }) : null;
  // enable_seq counts successful enables: it tells an attach the agent was too starved to see
  // (a scheduler that stalls or errors out right after enabling takes the agent down with it)
  const seqBefore = schedExtEnableSeq();
  const attachedSince = (): boolean => seqBefore >= 0 && schedExtEnableSeq() > seqBefore;
  chan.send({ type: 'phase', phase: 'verify', atMs: performance.now(), wallClockMs: Date.now() });
  let sched = new SchedulerProcess(plan.scheduler.path, plan.scheduler.args);
  let control: SwitchableScheduler | null = null;
  try {
    // verify and attach: poll until enabled, the process ends, or the window closes
    const deadline = sched.startedAt + plan.attachTimeoutMs;
    let state = schedExtState();
    while (performance.now() < deadline) {
      if (facts.verifyMs === null && ours().length > 0) {
        facts.verifyMs = performance.now() - sched.startedAt;
        chan.send({ type: 'phase', phase: 'attach', atMs: performance.now() });
      }
      state = schedExtState();
      if (state === 'enabled') break;
      if (!sched.alive) break;
      // enabled once (enable_seq moves early in the enable path) and already back to disabled
      if (state === 'disabled' && attachedSince()) break;
      await sleep(POLL_MS);
    }
    facts.stateAtAttach = state;
    if (state === 'enabled' || attachedSince()) {
      facts.attachMs = performance.now() - sched.startedAt;
      facts.verifyMs ??= facts.attachMs;
      facts.ops = schedExtOps();
    }
    if (state !== 'enabled') {
      // never attached, or attached and already gone: no probe
      await Promise.race([sched.ended, sleep(2000)]); // let a dying loader's last words arrive
      facts.endedBeforeAttach = sched.end;
      return facts;
    }

    // a test cell's scheduler is up: the test comes now (a snapshot of this point serves every
    // test of this scheduler, arguments and machine)
    if (plan.awaitBody === true) plan = await receiveBody(plan, chan, host);

    if (workers !== null) {
      chan.send({ type: 'phase', phase: 'probe', atMs: performance.now() });
      const probe = await workers.run(plan.probeMs, plan.attachTimeoutMs);
      await workers.close();
      facts.probe = { ...probe, stateAfter: schedExtState(), schedulerAlive: sched.alive };
    } else if (plan.test !== null) {
      chan.send({ type: 'phase', phase: 'body', atMs: performance.now(), wallClockMs: Date.now() });
      control = new SwitchableScheduler(sched, plan);
      facts.test = await runTest(plan.test, { online: cpus, schedExt: true, scheduler: control, log: () => {}, host });
      facts.test.stateAtEnd = schedExtState();
      facts.test.schedulerAlive = control.current?.alive ?? false;
      facts.test.detachedOnPurpose = control.switched;
      sched = control.current ?? sched;
    }
    facts.guestPrograms = ours();
    if (sched.alive) {
      chan.send({ type: 'probed' });
      await chan.next('continue', plan.hostReadTimeoutMs);
    }
    chan.send({ type: 'phase', phase: 'stop', atMs: performance.now() });
    const t0 = performance.now();
    const stopped = await sched.stop(plan.stopTimeoutMs);
    let stateAfter = schedExtState();
    for (let i = 0; i < 40 && stateAfter !== 'disabled'; i++) {
      await sleep(POLL_MS);
      stateAfter = schedExtState();
    }
    facts.stop = { end: stopped.end, timedOut: stopped.timedOut, stateAfter, ms: performance.now() - t0 };
    return facts;
  } finally {
    await workers?.close();
    if (sched.alive) await sched.stop(1000);
    await control?.stopAll(1000);
    const out = control?.switched ? (control.current?.output() ?? { text: '', dropped: 0 }) : sched.output();
    facts.output = (control?.earlierOutput ?? '') + out.text;
    facts.outputDropped = out.dropped;
  }
}

/**
 * The scheduler as a test body may switch it: replace (stop this one, start another and wait
 * for `enabled`), detach (stop it: EEVDF), attach (start one). Only schedulers the plan lists
 * can be started; the output of each one stopped is kept, in order.
 */
class SwitchableScheduler implements SchedulerControl {
  switched = false;
  earlierOutput = '';

  constructor(
    public current: SchedulerProcess | null,
    private readonly plan: AgentPlan,
  ) {}

  private async stopCurrent(): Promise<void> {
    const cur = this.current;
    if (cur === null) return;
    this.current = null;
    await cur.stop(this.plan.stopTimeoutMs);
    this.earlierOutput += `${cur.output().text}\n[ktstr: scheduler stopped by the test]\n`;
    for (let i = 0; i < 200 && schedExtState() !== 'disabled'; i++) await sleep(POLL_MS);
  }

  async detach(): Promise<void> {
    this.switched = true;
    await this.stopCurrent();
  }

  async attach(name: string, args: string[]): Promise<void> {
    this.switched = true;
    const entry = this.plan.test?.schedulers[name];
    if (entry === undefined)
      throw new Error(
        `scheduler ${name} is not in this test's guest (available: ${Object.keys(this.plan.test?.schedulers ?? {}).join(', ') || 'none'})`,
      );
    if (this.current !== null)
      throw new Error(`attach ${name}: a scheduler is attached already (use replaceScheduler)`);
    const seq = schedExtEnableSeq();
    const proc = new SchedulerProcess(entry.path, [...entry.args, ...args]);
    this.current = proc;
    const deadline = proc.startedAt + this.plan.attachTimeoutMs;
    while (
      performance.now() < deadline &&
      proc.alive &&
      schedExtState() !== 'enabled' &&
      !(seq >= 0 && schedExtEnableSeq() > seq)
    )
      await sleep(POLL_MS);
    if (schedExtState() !== 'enabled')
      throw new Error(
        `attach ${name}: not enabled within ${this.plan.attachTimeoutMs} ms (state ${schedExtState()}): ${proc.output().text.slice(-500)}`,
      );
  }

  async replace(name: string, args: string[]): Promise<void> {
    await this.stopCurrent();
    await this.attach(name, args);
  }

  async stopAll(graceMs: number): Promise<void> {
    const cur = this.current;
    if (cur !== null && cur.alive) await cur.stop(graceMs);
  }
}
