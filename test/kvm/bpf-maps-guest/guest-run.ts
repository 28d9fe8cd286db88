// The guest side of test/kvm/bpf-maps-dump.test.ts: an initramfs with busybox, Debian's
// bpftool (with its shared-library closure), scx_qmap and scx_ktstr, whose /init creates a
// few maps of its own with bpftool (hash, lru_hash, percpu_hash, array and a 5000-element
// hash filled by `bpftool batch`), then runs one scheduler: attach, let it work,
// `bpftool -j map show` and `bpftool -j map dump id N` for every map (gzip+base64 on one
// console line each), then waits on the console until the host has dumped guest memory over
// QMP. The host side runs QEMU (any accelerator) and collects the bpftool output per phase.

import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createConnection } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { CpioWriter, FileSink } from '../../../src/guest/cpio.js';
import { sharedLibraryClosure } from '../../../src/guest/elf-deps.js';

/** The big hash map bpftool fills from a batch file: key i (u32) -> value i * 0x1_0000_0001 (u64). */
export const BIG_ENTRIES = 5000;
export const BIG_MAX = 8192;
export const bigValue = (i: number): bigint => BigInt(i) * 0x1_0000_0001n;

function bytesArg(v: bigint, size: number): string {
  const out: string[] = [];
  for (let i = 0; i < size; i++) out.push(String(Number((v >> BigInt(8 * i)) & 0xffn)));
  return out.join(' ');
}

/** The maps /init creates, and what it writes into them. */
export const CREATED = {
  h_small: {
    type: 'hash',
    key: 4,
    value: 8,
    entries: 16,
    flags: 1,
    data: [
      [1n, 0x1111n],
      [2n, 0x2222n],
      [7n, 0xdead_beef_0000_0007n],
    ],
  },
  lru_small: {
    type: 'lru_hash',
    key: 8,
    value: 16,
    entries: 32,
    flags: 0,
    data: [
      [0x0102_0304_0506_0708n, 42n],
      [9n, (1n << 100n) + 5n],
    ],
  },
  pch: { type: 'percpu_hash', key: 4, value: 8, entries: 8, flags: 0, data: [[3n, 333n]] },
  arr12: { type: 'array', key: 4, value: 12, entries: 4, flags: 0, data: [[2n, 0xaabb_ccdd_eeff_0011_2233n]] },
} as const;

export function batchFile(): string {
  const lines: string[] = [];
  for (const [name, m] of Object.entries(CREATED)) {
    lines.push(
      `map create /sys/fs/bpf/${name} type ${m.type} key ${m.key} value ${m.value} entries ${m.entries} name ${name} flags ${m.flags}`,
    );
    for (const [k, v] of m.data)
      lines.push(`map update pinned /sys/fs/bpf/${name} key ${bytesArg(k, m.key)} value ${bytesArg(v, m.value)}`);
  }
  lines.push(`map create /sys/fs/bpf/big type hash key 4 value 8 entries ${BIG_MAX} name big flags 0`);
  for (let i = 0; i < BIG_ENTRIES; i++)
    lines.push(`map update pinned /sys/fs/bpf/big key ${bytesArg(BigInt(i), 4)} value ${bytesArg(bigValue(i), 8)}`);
  return lines.join('\n') + '\n';
}

const GUEST_INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t bpf bpf /sys/fs/bpf
B=/usr/sbin/bpftool
$B batch file /maps.batch >/tmp/batch.log 2>&1
echo "BATCH_EXIT=$?"
tail -3 /tmp/batch.log
big=$($B map show name big | sed -n 's/^\\([0-9]*\\):.*/\\1/p')
phase() {
  n=$1; shift
  "$@" >/tmp/sched$n.log 2>&1 &
  pid=$!
  i=0
  while [ $i -lt 300 ]; do
    [ "$(cat /sys/kernel/sched_ext/state 2>/dev/null)" = enabled ] && break
    sleep 0.1
    i=$((i + 1))
  done
  echo "PHASE$n.state=$(cat /sys/kernel/sched_ext/state 2>&1)"
  i=0; while [ $i -lt 100 ]; do ls / >/dev/null; i=$((i + 1)); done
  $B -j map show >/tmp/show.json 2>&1
  echo "@@SHOW $n $(gzip -c /tmp/show.json | base64 -w0)"
  for id in $($B map list | sed -n 's/^\\([0-9]*\\):.*/\\1/p'); do
    [ "$id" = "$big" ] && continue
    $B -j map dump id $id >/tmp/d.json 2>&1
    echo "@@DUMP $n $id $? $(gzip -c /tmp/d.json | base64 -w0)"
  done
  echo "@@READY $n"
  read go
  kill -INT $pid
  wait $pid
  echo "PHASE$n.exit=$?"
  tail -5 /tmp/sched$n.log
}
phase 0 "$SCHED"
echo "@@DONE"
sleep 600
`;

/** Where the host stages the guest's dynamically linked tools: the test host (L1) has
 * neither bpftool nor its libraries, only the project tree. */
export const STAGE_DIR = join('build', 'bpf-maps-guest', 'root');

/**
 * Copies each `guestPath -> hostPath` tool and the shared libraries it needs (at their own
 * absolute paths) under `root`, which is emptied first. Returns the staged guest paths.
 */
export function stageTools(root: string, tools: Record<string, string>): string[] {
  rmSync(root, { recursive: true, force: true });
  const closure = sharedLibraryClosure(Object.values(tools));
  if (closure.missing.length > 0) throw new Error(`missing libraries: ${closure.missing.join(', ')}`);
  const files = new Map<string, string>(Object.entries(tools));
  for (const f of [...closure.interpreters, ...closure.libraries.map((l) => l.path)]) files.set(f, f);
  for (const [guest, host] of files) {
    mkdirSync(dirname(join(root, guest)), { recursive: true });
    copyFileSync(host, join(root, guest)); // dereferences library symlinks
  }
  return [...files.keys()];
}

function* walk(dir: string, prefix = ''): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path, `${prefix}/${name}`);
    else yield `${prefix}/${name}`;
  }
}

/** An initramfs whose /init runs `scheduler`: the staged tree (bpftool, scx_qmap and their
 * libraries), busybox, the static scx_ktstr. One scheduler per boot, so none is detached
 * while the guest runs. */
export async function buildInitramfs(
  path: string,
  files: { stage: string; ktstr: string },
  scheduler: 'qmap' | 'ktstr',
): Promise<void> {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (busybox === undefined) throw new Error('busybox not found');
  const staged = [...walk(files.stage)];
  for (const need of ['/usr/sbin/bpftool', '/sched/scx_qmap'])
    if (!staged.includes(need)) throw new Error(`${need} is not staged in ${files.stage}`);
  const handle = await open(path, 'w');
  try {
    const sink = new FileSink(handle);
    const w = new CpioWriter(sink);
    const dirs = new Set(['/proc', '/sys', '/dev', '/tmp', '/bin', '/sched']);
    for (const f of staged) for (let d = dirname(f); d !== '/'; d = dirname(d)) dirs.add(d);
    for (const d of [...dirs].sort()) await w.directory(d);
    await w.charDevice('/dev/console', 5, 1);
    await w.charDevice('/dev/null', 1, 3, { mode: 0o666 });
    for (const f of staged) await w.hostFile(f, join(files.stage, f), { mode: 0o755 });
    await w.hostFile('/bin/busybox', busybox, { mode: 0o755 });
    await w.hostFile('/sched/scx_ktstr', files.ktstr, { mode: 0o755 });
    await w.file('/maps.batch', batchFile());
    await w.file('/init', GUEST_INIT.replace('"$SCHED"', `/sched/scx_${scheduler}`), { mode: 0o755 });
    await w.finish();
    await sink.flush();
  } finally {
    await handle.close();
  }
}

/** One QMP command per connection (QEMU serves the next connection after this one closes). */
async function qmp(socket: string, command: object): Promise<unknown> {
  const conn = createConnection(socket);
  let buffered = '';
  return new Promise((resolve, reject) => {
    let stage = 0;
    conn.on('error', (err) => {
      if (stage === 3) resolve(undefined);
      else reject(err);
    });
    conn.on('close', () => {
      if (stage === 3) resolve(undefined);
    });
    conn.on('data', (d: Buffer) => {
      buffered += d.toString('utf8');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
        buffered = buffered.slice(nl + 1);
        if ('event' in msg) continue;
        if ('error' in msg) {
          conn.destroy();
          reject(new Error(`QMP ${JSON.stringify(command)}: ${JSON.stringify(msg.error)}`));
          return;
        }
        if (stage === 0) {
          stage = 1;
          conn.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        } else if (stage === 1) {
          stage = (command as { execute: string }).execute === 'quit' ? 3 : 2;
          conn.write(JSON.stringify(command) + '\n');
        } else if (stage === 2) {
          conn.end();
          resolve(msg.return);
          return;
        }
      }
    });
  });
}

export interface GuestPhase {
  /** `bpftool -j map show`. */
  show: Record<string, unknown>[];
  /** `bpftool -j map dump id N` by id; `exit` is bpftool's status. */
  dumps: Map<number, { exit: number; json: unknown; text: string }>;
}

export interface GuestRun {
  output: string;
  phases: GuestPhase[];
}

function unpack(b64: string): string {
  return gunzipSync(Buffer.from(b64, 'base64')).toString('utf8');
}

/** Boots QEMU, dumps guest memory to cores[n] at phase n's @@READY, then quits. */
export async function runGuest(o: {
  qemu: string;
  accel: string;
  cpu: string;
  bzImage: string;
  initrd: string;
  cores: string[];
  socket: string;
  timeoutMs: number;
  smp?: number;
  onProgress?: (what: string) => void;
}): Promise<GuestRun> {
  const args = [
    '-accel',
    o.accel,
    '-cpu',
    o.cpu,
    '-M',
    'microvm,isa-serial=on,rtc=on',
    '-smp',
    String(o.smp ?? 2),
    '-m',
    '256',
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-serial',
    'stdio',
    '-no-reboot',
    '-qmp',
    `unix:${o.socket},server=on,wait=off`,
    '-kernel',
    o.bzImage,
    '-initrd',
    o.initrd,
    '-append',
    'console=ttyS0 quiet loglevel=4 panic=-1',
  ];
  const child = spawn(o.qemu, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let scanned = 0;
  const phases: GuestPhase[] = [];
  let chain = Promise.resolve();
  let failure: Error | undefined;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`guest did not finish within ${o.timeoutMs / 1000} s\n${output.slice(-3000)}`));
    }, o.timeoutMs);
    const onLine = (line: string): void => {
      if (line.includes('Kernel panic - not syncing')) {
        failure ??= new Error('the guest kernel panicked');
        setTimeout(() => child.kill('SIGKILL'), 500);
      }
      const m = /^@@(SHOW|DUMP|READY|DONE)\s*(.*)$/.exec(line);
      if (m === null) return;
      const [kind, rest] = [m[1], m[2].split(' ')];
      const n = Number(rest[0]);
      phases[n] ??= { show: [], dumps: new Map() };
      if (kind === 'SHOW') phases[n].show = JSON.parse(unpack(rest[1])) as Record<string, unknown>[];
      else if (kind === 'DUMP') {
        const text = unpack(rest[3] ?? '');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* an error message */
        }
        phases[n].dumps.set(Number(rest[1]), { exit: Number(rest[2]), json, text });
      } else if (kind === 'READY') {
        chain = chain
          .then(async () => {
            o.onProgress?.(`phase ${n}: dump-guest-memory over QMP`);
            await qmp(o.socket, {
              execute: 'dump-guest-memory',
              arguments: { paging: false, protocol: `file:${o.cores[n]}` },
            });
            child.stdin!.write('go\n');
          })
          .catch((err: Error) => {
            failure = err;
            child.kill('SIGKILL');
          });
      } else if (kind === 'DONE') {
        chain = chain
          .then(() => qmp(o.socket, { execute: 'quit' }).then(() => undefined))
          .catch((err: Error) => {
            failure = err;
            child.kill('SIGKILL');
          });
      }
    };
    const onData = (d: Buffer): void => {
      output += d.toString('latin1').replace(/\r/g, '');
      let nl;
      while ((nl = output.indexOf('\n', scanned)) >= 0) {
        onLine(output.slice(scanned, nl));
        scanned = nl + 1;
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', () => {
      clearTimeout(timer);
      void chain.then(() => {
        if (failure !== undefined) reject(failure);
        else resolve({ output, phases });
      });
    });
  });
}
