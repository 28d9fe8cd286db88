// The guest agent: the program /init execs as PID 1 in every cell (after mounting /proc,
// /sys, /dev, /tmp). It reads the plan, says hello on COM2, carries the plan out, sends the
// facts, and powers the guest off with its status on the exit port. Runs under Node in the
// guest; bundled into one script (dist/src/guest/agent/main.bundle.cjs) by the build.

import { openSync, readFileSync, writeSync, closeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { native } from '../../kvm/native.js';
import { EXIT_PORT } from '../../vmm/devices/ports.js';
import { PLAN_PATH, PLAN_VERSION, type AgentFacts, type AgentPlan } from '../plan.js';
import { listStructOpsPrograms } from './bpf-programs.js';
import { AgentChannel } from './channel.js';
import { BulkRegion } from './bulk.js';
import { receiveCell } from './cell-handoff.js';
import { HostRequests } from './host-requests.js';

/** Output sent inline on COM2 when the ring is unavailable: well under the frame limit. */
const INLINE_OUTPUT_MAX = 256 * 1024;
const RESULT_ACK_TIMEOUT_MS = 30_000;
import { parseCpuList } from './probe.js';
import { runPlan } from './run-plan.js';

/** Writes the status to the VMM's exit port; else (no /dev/port) busybox powers off. Never returns. */
function powerOff(status: number): never {
  try {
    const fd = openSync('/dev/port', 'w');
    writeSync(fd, Uint8Array.of(status & 255), 0, 1, EXIT_PORT);
    closeSync(fd);
  } catch {
    /* no /dev/port in this kernel */
  }
  spawnSync('/bin/busybox', ['poweroff', '-f'], { stdio: 'ignore' });
  for (;;) spawnSync('/bin/busybox', ['sleep', '1000']);
}

/**
 * Sends the facts: as JSON in the shared region when there is one (every byte on COM2 costs
 * the guest a VM exit or more: a 4 KiB report took 1.3-2.3 s to cross in the emulated test
 * host), else inline, the scheduler output cut to fit the serial channel.
 */
function sendResult(plan: AgentPlan, chan: AgentChannel, facts: AgentFacts): void {
  const region = BulkRegion.open(plan, native());
  try {
    const record = region?.write('result', Buffer.from(JSON.stringify(facts), 'utf8')) ?? null;
    if (record !== null) {
      chan.send({ type: 'result', record });
      return;
    }
  } finally {
    region?.close();
  }
  if (facts.output.length > INLINE_OUTPUT_MAX) {
    facts.output = `${facts.output.slice(0, INLINE_OUTPUT_MAX / 2)}\n[ktstr: output cut to fit the serial channel]\n${facts.output.slice(-INLINE_OUTPUT_MAX / 2)}`;
  }
  chan.send({ type: 'result', facts });
}

function uptimeMs(): number {
  try {
    return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
  } catch {
    return -1;
  }
}

async function main(): Promise<number> {
  const base = JSON.parse(readFileSync(PLAN_PATH, 'utf8')) as AgentPlan;
  if (base.version !== PLAN_VERSION) throw new Error(`plan version ${base.version}, this agent reads ${PLAN_VERSION}`);
  const chan = new AgentChannel(base.nonce);
  let plan = base;
  try {
    const cpus = parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8')).length;
    chan.send({ type: 'hello', node: process.version, kernel: release(), cpus, uptimeMs: uptimeMs() });
    try {
      if (base.awaitCell === true) {
        const mailbox = new HostRequests(base, chan, native);
        try {
          plan = await receiveCell(base, chan, mailbox);
        } finally {
          mailbox.close();
        }
      }
      const addon = process.env.KTSTR_NATIVE_ADDON ?? '';
      const facts = await runPlan(plan, chan, { addon, listPrograms: () => listStructOpsPrograms(native()) });
      sendResult(plan, chan, facts);
      // written is not transmitted: the UART sends from the tty buffer after writeSync returns,
      // so power-off waits until the host says it has the result
      await chan.next('done', RESULT_ACK_TIMEOUT_MS);
      return 0;
    } catch (e) {
      chan.send({ type: 'agent-error', message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) });
      await chan.next('done', RESULT_ACK_TIMEOUT_MS);
      return 1;
    }
  } finally {
    chan.close();
  }
}

main().then(powerOff, (e: unknown) => {
  process.stderr.write(`ktstr agent: ${e instanceof Error ? e.stack : String(e)}\n`);
  powerOff(2);
});
