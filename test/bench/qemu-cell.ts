// One sweep cell with QEMU as the VMM instead of ours, for bench:sweep's comparison: the same
// kernel (its bzImage: QEMU's microvm boots an ELF vmlinux only with a PVH note), the same
// initramfs and guest agent, the same plan (without the shared ring, which is ours: the agent
// then sends its output inline on COM2), the same verdict. QEMU: `-M microvm -enable-kvm`,
// COM1 the console (to a file), COM2 a second 16550 at 0x2f8 on QEMU's stdio, talking the
// agent's framed protocol with this process, and isa-debug-exit at the agent's exit port.
// QEMU is killed and the temporary directory removed on every path.

import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentImageCache, schedulerGuestPath } from '../../src/guest/agent-initramfs.js';
import { encodeFrame, FrameReader, newNonce } from '../../src/guest/protocol.js';
import { PLAN_VERSION, type AgentFacts, type AgentMessage, type AgentPlan } from '../../src/guest/plan.js';
import { AGENT_MEMORY_MIB, CELL_CMDLINE, DEFAULT_TIMEOUTS, type CellSpec } from '../../src/cell/run-cell.js';
import { judgeCell } from '../../src/cell/verdict.js';
import { EXIT_PORT } from '../../src/vmm/index.js';
import { Topology } from '../../src/vmm/topology/index.js';

export interface QemuCellResult {
  passed: boolean;
  reason: string;
  wallMs: number;
  /** ms from spawning QEMU to the agent's hello, and to the `probe` phase (attached). */
  helloMs?: number;
  attachMs?: number;
  facts: AgentFacts | null;
}

const images = new AgentImageCache();

export async function runCellInQemu(spec: CellSpec, o: { qemu?: string; bzImage: string; timeoutMs?: number }): Promise<QemuCellResult> {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...spec.timeouts };
  const nonce = newNonce();
  const plan: AgentPlan = {
    version: PLAN_VERSION, nonce, cell: spec.id,
    scheduler: { name: spec.scheduler.name, path: schedulerGuestPath(spec.scheduler.binary!), args: spec.scheduler.args },
    attachTimeoutMs: timeouts.attachMs, probeMs: timeouts.probeMs, stopTimeoutMs: timeouts.stopMs, hostReadTimeoutMs: 30_000,
    ring: null,
  };
  const topo = new Topology(spec.topology).spec;
  const cpus = topo.llcs * topo.coresPerLlc * topo.threadsPerCore;
  const dir = mkdtempSync(join(tmpdir(), 'ktstr-qemu-cell-'));
  const t0 = performance.now();
  try {
    const initrd = join(dir, 'initrd.cpio');
    // QEMU takes one initrd file: the cached base archive and the plan, concatenated
    const [base, planArchive] = await images.initrd(spec.scheduler.binary, plan);
    copyFileSync(base, initrd);
    appendFileSync(initrd, planArchive);
    const child = spawn(o.qemu ?? 'qemu-system-x86_64', [
      '-enable-kvm', '-cpu', 'host', '-smp', `${cpus},sockets=1,cores=${cpus / topo.threadsPerCore},threads=${topo.threadsPerCore}`,
      '-m', String(spec.memoryMiB + AGENT_MEMORY_MIB), '-M', 'microvm,isa-serial=on,rtc=on,pit=on',
      '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
      '-serial', `file:${join(dir, 'console.log')}`,
      '-chardev', 'stdio,id=com2,signal=off', '-device', 'isa-serial,chardev=com2,iobase=0x2f8,irq=3',
      '-device', `isa-debug-exit,iobase=0x${EXIT_PORT.toString(16)},iosize=1`,
      '-kernel', o.bzImage, '-initrd', initrd, '-append', CELL_CMDLINE,
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    const reader = new FrameReader(nonce);
    let hostSeq = 0;
    let facts: AgentFacts | null = null;
    let agentError: string | null = null;
    let helloMs: number | undefined;
    let attachMs: number | undefined;
    const reply = (type: 'continue' | 'done'): void => { child.stdin.write(encodeFrame(nonce, hostSeq++, { type })); };
    child.stdout.on('data', (chunk: Buffer) => {
      for (const ev of reader.feed(chunk)) {
        if (ev.kind !== 'message') continue;
        const m = ev.message as AgentMessage;
        if (m.type === 'hello') helloMs = performance.now() - t0;
        else if (m.type === 'phase' && m.phase === 'probe') attachMs = performance.now() - t0;
        else if (m.type === 'probed') reply('continue');
        else if (m.type === 'result') { facts = m.facts; reply('done'); }
        else if (m.type === 'agent-error') { agentError = m.message; reply('done'); }
      }
    });
    child.stdin.on('error', () => { /* QEMU gone */ });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
    const timeoutMs = o.timeoutMs ?? timeouts.cellMs;
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
      child.on('error', () => { clearTimeout(timer); resolve(null); });
    });
    let consoleText = '';
    try { consoleText = readFileSync(join(dir, 'console.log'), 'latin1'); } catch { /* none */ }
    const panic = consoleText.split('\n').find((l) => l.includes('Kernel panic'))?.trim() ?? null;
    const reason = code === null ? 'killed' : code === 1 ? 'exit' : `qemu exit ${code}${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`;
    const verdict = judgeCell({ facts, vmEnd: { reason: panic ? 'panic' : reason, detail: reason }, agentError, consoleLine: panic });
    return { passed: verdict.passed, reason: verdict.failure ? `${verdict.failure.kind}: ${verdict.failure.message}` : 'passed', wallMs: performance.now() - t0, helloMs, attachMs, facts };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
