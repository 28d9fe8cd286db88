// One sweep cell with QEMU as the VMM (bench:sweep's baseline): the same kernel build, the
// same initramfs (AgentImageCache's base archive + the plan, concatenated into one temporary
// file, since QEMU takes one initrd), the same guest agent and plan, judged by the same
// judgeCell. The plan has no shared ring (that region is our VMM's), so the agent sends its
// output inline on COM2. QEMU: `-M microvm -enable-kvm -cpu host`; COM1 (the console) on
// QEMU's stdout; COM2 a second 16550 at 0x2f8/irq 3 on a unix socket this process serves,
// talking the framed protocol (`continue` after `probed`, `done` after `result`);
// isa-debug-exit at the agent's exit port (0x501), so QEMU exits when the agent writes its
// status (exit code status*2+1); without it the agent's `busybox poweroff -f` also ends QEMU
// through microvm's default ACPI (with acpi=off the guest hangs), and -no-reboot turns a guest
// reboot into an exit. The vmlinux has no PVH note, so QEMU boots the bzImage beside it. Times
// are from QEMU's spawn. QEMU is killed and the temporary directory removed on every path.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AgentImageCache, AGENT_START_MARKER } from '../../src/guest/agent-initramfs.js';
import { encodeFrame, FrameReader, newNonce, type Message } from '../../src/guest/protocol.js';
import type { AgentFacts, AgentMessage } from '../../src/guest/plan.js';
import { AGENT_MEMORY_MIB, CELL_CMDLINE, cellPlan, DEFAULT_TIMEOUTS, type CellSpec } from '../../src/cell/run-cell.js';
import type { CellPhases } from '../../src/cell/result.js';
import { checkFacts } from '../../src/cell/facts-check.js';
import { judgeCell } from '../../src/cell/verdict.js';
import { ElfFile } from '../../src/elf/file.js';
import { withFileSource } from '../../src/elf/file-source.js';
import { findOnPath } from '../../src/host/paths.js';
import { EXIT_PORT, PANIC_TEXT } from '../../src/vmm/index.js';
import { Topology } from '../../src/vmm/topology/index.js';

export interface QemuCellOptions {
  /** QEMU binary (default: qemu-system-x86_64 on PATH). */
  qemu?: string;
  /** Console (COM1) bytes as they arrive. */
  onConsole?: (chunk: Uint8Array) => void;
  /** The whole QEMU run (default: the spec's cell timeout). */
  timeoutMs?: number;
  /** 'kvm' (default) or 'tcg' (only for trying the plumbing where /dev/kvm is missing). */
  accel?: 'kvm' | 'tcg';
  signal?: AbortSignal;
  /** isa-debug-exit at the exit port (default true); false: the agent's busybox power-off ends QEMU. */
  debugExit?: boolean;
  /** Extra words for -M microvm (e.g. 'acpi=off'). */
  machine?: string;
}

/** Agent events, ms from QEMU's spawn. */
export interface QemuCellMarks {
  agentStart?: number;
  hello?: number;
  verify?: number;
  attach?: number;
  probe?: number;
  stop?: number;
  result?: number;
  exit?: number;
}

export interface QemuCellResult {
  passed: boolean;
  /** Spawn of QEMU to its exit. */
  wallMs: number;
  /** Spawn to the agent's hello. */
  helloMs?: number;
  /** Spawn to attached (the agent's `probe` phase: state read `enabled`). */
  attachMs?: number;
  /** 'passed', or `<failure kind>: <message>`. */
  reason: string;
  facts: AgentFacts | null;
  /** Writing the temporary initrd (before the spawn; not in wallMs). */
  prepareMs: number;
  /** The same breakdown as CellResult.phases (boot counted from QEMU's spawn). */
  phases: CellPhases;
  marks: QemuCellMarks;
  /** How QEMU ended: 'exit' (the agent's status on the exit port), 'poweroff', 'timeout', ... */
  end: { reason: string; detail: string; guestStatus: number | null };
  /** QEMU's peak RSS (VmHWM) when the result arrived, or at the last sample. */
  qemuRssBytes: number | null;
  /** The image QEMU booted. */
  kernel: string;
  argv: string[];
  consoleTail: string;
}

function readHead(path: string, n: number): Uint8Array {
  return withFileSource(path, (src) => src.read(0, Math.min(n, src.size)));
}

/** A PT_NOTE "Xen" note of type 18 (XEN_ELFNOTE_PHYS32_ENTRY): QEMU's -kernel boots such an ELF through PVH. */
export function hasPvhEntry(path: string): boolean {
  return withFileSource(path, (src) => new ElfFile(src, path).notes().some((n) => n.name === 'Xen' && n.type === 18));
}

/**
 * What QEMU's -kernel can boot for a cell's image: a bzImage as it is; a vmlinux only with a
 * PVH entry note, else the bzImage beside it.
 */
export function qemuKernelImage(image: string): string {
  const h = readHead(image, 4);
  const elf = h.length === 4 && h[0] === 0x7f && h[1] === 0x45 && h[2] === 0x4c && h[3] === 0x46;
  if (!elf || hasPvhEntry(image)) return image;
  const bz = join(dirname(image), 'bzImage');
  if (existsSync(bz)) return bz;
  throw new Error(
    `${image} is a vmlinux without a PVH entry note (CONFIG_PVH unset), which QEMU cannot boot, and there is no bzImage beside it`,
  );
}

/** -smp for a topology: one socket, every core of every LLC, threads per core. */
export function qemuSmp(topology: string): string {
  const t = new Topology(topology).spec;
  const cores = t.numaNodes * t.llcs * t.coresPerLlc;
  return `${cores * t.threadsPerCore},sockets=1,cores=${cores},threads=${t.threadsPerCore}`;
}

function peakRss(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

let setprivPath: string | null | undefined;
/** util-linux setpriv when it has --pdeathsig (busybox's, as in the test host, has not). */
function pdeathsigWrapper(): string | undefined {
  if (setprivPath === undefined) {
    const p = findOnPath('setpriv');
    const help = p === undefined ? null : spawnSync(p, ['--help'], { encoding: 'utf8', timeout: 5000 });
    setprivPath = p !== undefined && help !== null && `${help.stdout}${help.stderr}`.includes('--pdeathsig') ? p : null;
  }
  return setprivPath ?? undefined;
}

let images: AgentImageCache | undefined;

export async function runCellInQemu(spec: CellSpec, o: QemuCellOptions = {}): Promise<QemuCellResult> {
  const marks: QemuCellMarks = {};
  const out: QemuCellResult = {
    passed: false,
    wallMs: 0,
    reason: '',
    facts: null,
    prepareMs: 0,
    phases: {},
    marks,
    end: { reason: 'not-started', detail: '', guestStatus: null },
    qemuRssBytes: null,
    kernel: '',
    argv: [],
    consoleTail: '',
  };
  const fail = (kind: string, message: string): QemuCellResult => {
    out.reason = `${kind}: ${message}`;
    return out;
  };
  if (spec.setupProblem !== null) return fail('setup', spec.setupProblem);
  if (spec.scheduler.binary === null) return fail('setup', `${spec.scheduler.name}: no scheduler binary`);
  const qemu = findOnPath(o.qemu ?? 'qemu-system-x86_64');
  if (qemu === undefined) return fail('setup', `${o.qemu ?? 'qemu-system-x86_64'}: not found or not executable`);
  try {
    out.kernel = qemuKernelImage(spec.kernel.image);
  } catch (e) {
    return fail('setup', e instanceof Error ? e.message : String(e));
  }

  const timeouts = { ...DEFAULT_TIMEOUTS, ...spec.timeouts };
  const nonce = newNonce();
  // the plan runCell gives the agent, without the shared region: output then comes inline
  const plan = cellPlan(spec, nonce, null);

  const dir = mkdtempSync(join(tmpdir(), 'ktstr-qemu-cell-'));
  let child: ChildProcess | undefined;
  let server: Server | undefined;
  let conn: Socket | undefined;
  const killChild = (): void => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killChild);
  try {
    // the one initrd file: the cached base archive, then the plan archive
    const tp = performance.now();
    const initrd = join(dir, 'initrd.cpio');
    try {
      images ??= new AgentImageCache();
      const [base, planArchive] = await images.initrd(spec.scheduler.binary, plan);
      copyFileSync(base, initrd);
      appendFileSync(initrd, planArchive);
    } catch (e) {
      return fail('setup', `cannot build the guest image: ${e instanceof Error ? e.message : String(e)}`);
    }
    out.prepareMs = performance.now() - tp;

    // COM2: QEMU connects to this socket as a client when it starts, before the guest runs
    const sock = join(dir, 'com2.sock');
    const reader = new FrameReader(nonce);
    let hostSeq = 0;
    let agentError: string | null = null;
    let corrupt = 0;
    const send = (m: Message): void => {
      conn?.write(encodeFrame(nonce, hostSeq++, m));
    };
    let t0 = 0;
    const since = (): number => performance.now() - t0;
    const handle = (m: AgentMessage): void => {
      switch (m.type) {
        case 'hello':
          marks.hello ??= since();
          break;
        case 'phase':
          if (m.phase === 'verify' || m.phase === 'attach' || m.phase === 'probe' || m.phase === 'stop')
            marks[m.phase] ??= since();
          break;
        case 'probed':
          send({ type: 'continue' });
          break; // nothing to read from guest RAM here
        case 'result': {
          marks.result ??= since();
          out.qemuRssBytes = peakRss(child?.pid) ?? out.qemuRssBytes;
          // no shared region under QEMU: the facts come inline
          const checked = 'facts' in m ? checkFacts(m.facts) : 'a record in a shared region QEMU does not have';
          if (typeof checked === 'string') agentError = `the agent's report is malformed (${checked})`;
          else out.facts = checked;
          send({ type: 'done' });
          break;
        }
        case 'agent-error':
          agentError = typeof m.message === 'string' ? m.message.slice(0, 4096) : 'the agent failed';
          send({ type: 'done' });
          break;
      }
    };
    server = createServer((s) => {
      if (conn !== undefined) {
        s.destroy();
        return;
      }
      conn = s;
      s.on('data', (chunk: Buffer) => {
        for (const ev of reader.feed(chunk)) {
          if (ev.kind === 'message') handle(ev.message as AgentMessage);
          else if (ev.kind === 'corrupt') corrupt++;
        }
      });
      s.on('error', () => {
        /* QEMU went away */
      });
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(sock, () => resolve());
    });

    const args = [
      '-M',
      `microvm,isa-serial=on,rtc=on,pit=on${o.machine ? `,${o.machine}` : ''}`,
      ...(o.accel === 'tcg' ? ['-accel', 'tcg', '-cpu', 'max'] : ['-enable-kvm', '-cpu', 'host']),
      '-smp',
      qemuSmp(spec.topology),
      '-m',
      String(spec.memoryMiB + AGENT_MEMORY_MIB),
      '-nodefaults',
      '-no-user-config',
      '-nographic',
      '-no-reboot',
      '-serial',
      'stdio',
      '-chardev',
      `socket,id=com2,path=${sock}`,
      '-device',
      'isa-serial,chardev=com2,iobase=0x2f8,irq=3',
      ...(o.debugExit === false ? [] : ['-device', `isa-debug-exit,iobase=0x${EXIT_PORT.toString(16)},iosize=1`]),
      '-kernel',
      out.kernel,
      '-initrd',
      initrd,
      '-append',
      CELL_CMDLINE,
    ];
    // QEMU dies with this process even on SIGKILL where util-linux setpriv exists
    const setpriv = pdeathsigWrapper();
    const argv = setpriv !== undefined ? [setpriv, '--pdeathsig', 'KILL', '--', qemu, ...args] : [qemu, ...args];
    out.argv = [qemu, ...args];
    let consoleTail = '';
    let stderr = '';
    let timedOut = false;
    let aborted = false;
    t0 = performance.now();
    const proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    child = proc;
    proc.stdin!.on('error', () => {
      /* gone */
    });
    proc.stdout!.on('data', (chunk: Buffer) => {
      o.onConsole?.(chunk);
      consoleTail = (consoleTail + chunk.toString('latin1')).slice(-16384);
      if (marks.agentStart === undefined && consoleTail.includes(AGENT_START_MARKER)) marks.agentStart = since();
    });
    proc.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-4096);
    });
    const rssTimer = setInterval(() => {
      out.qemuRssBytes = peakRss(proc.pid) ?? out.qemuRssBytes;
    }, 1000);
    const onAbort = (): void => {
      aborted = true;
      killChild();
    };
    o.signal?.addEventListener('abort', onAbort);
    if (o.signal?.aborted) onAbort();
    const ended = await new Promise<{ code: number | null; sig: string | null; error?: string }>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        killChild();
      }, o.timeoutMs ?? timeouts.cellMs);
      proc.once('error', (e) => {
        clearTimeout(timer);
        resolve({ code: null, sig: null, error: e.message });
      });
      proc.once('close', (code, sig) => {
        clearTimeout(timer);
        resolve({ code, sig });
      });
    });
    marks.exit = since();
    clearInterval(rssTimer);
    o.signal?.removeEventListener('abort', onAbort);
    out.wallMs = marks.exit;
    out.helloMs = marks.hello;
    out.attachMs = marks.probe;

    const lastErr =
      stderr
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .pop() ?? '';
    const end = out.end;
    if (ended.error !== undefined)
      Object.assign(end, { reason: 'error', detail: `cannot run ${qemu}: ${ended.error}` });
    else if (timedOut)
      Object.assign(end, {
        reason: 'timeout',
        detail: `no end within ${Math.round((o.timeoutMs ?? timeouts.cellMs) / 1000)} s`,
      });
    else if (aborted) Object.assign(end, { reason: 'stopped', detail: 'interrupted' });
    else if (ended.sig !== null) Object.assign(end, { reason: 'killed', detail: `QEMU killed by ${ended.sig}` });
    else if (ended.code === 0)
      Object.assign(end, { reason: 'poweroff', detail: 'the guest powered off or rebooted (-no-reboot)' });
    else if (ended.code !== null && ended.code % 2 === 1 && marks.hello !== undefined) {
      Object.assign(end, {
        reason: 'exit',
        detail: `exit port status ${(ended.code - 1) / 2}`,
        guestStatus: (ended.code - 1) / 2,
      });
    } else Object.assign(end, { reason: 'error', detail: `QEMU exit ${ended.code}${lastErr ? `: ${lastErr}` : ''}` });

    const lines = consoleTail.split('\n');
    const panicLine = lines.find((l) => l.includes(PANIC_TEXT))?.trim() ?? null;
    if (panicLine !== null && out.facts === null) end.reason = 'panic';
    const verdict = judgeCell({
      facts: out.facts,
      vmEnd: { reason: end.reason, detail: end.detail },
      agentError,
      consoleLine:
        panicLine ??
        lines
          .filter((l) => l.trim() !== '')
          .slice(-1)[0]
          ?.trim() ??
        null,
    });
    out.passed = verdict.passed;
    out.reason = verdict.failure ? `${verdict.failure.kind}: ${verdict.failure.message}` : 'passed';
    if (corrupt > 0) out.reason += ` (${corrupt} damaged frames ignored)`;
    out.consoleTail = lines.slice(-40).join('\n');

    const span = (a: number | undefined, b: number | undefined): number | undefined =>
      a === undefined || b === undefined ? undefined : b - a;
    const p = out.phases;
    p.boot = marks.hello;
    p.agentReady = span(marks.agentStart, marks.hello);
    p.verify = span(marks.verify, marks.attach ?? marks.probe ?? marks.result);
    p.attach = span(marks.attach ?? marks.verify, marks.probe ?? marks.result);
    p.probe = span(marks.probe, marks.stop ?? marks.result);
    p.teardown = span(marks.stop ?? marks.result, marks.exit);
    return out;
  } finally {
    killChild();
    process.off('exit', killChild);
    conn?.destroy();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
