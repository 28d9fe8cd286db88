// The native syscall binding on the plain host, no KVM needed: errno-named errors, ioctl
// argument passing (numbers, bigints, views on ArrayBuffer and SharedArrayBuffer, at an
// offset), the _IOC size guard, mmap/munmap, SharedArrayBuffer addresses of shared WASM
// memory, eventfd, loading in a worker thread, and that nothing leaks an fd; the guest
// agent's calls: sched_setattr/getattr (SCHED_OTHER with nice; SCHED_EXT taken or EINVAL),
// affinity round trip, the thread CPU clock, raw bpf(2).

import { closeSync, mkdtempSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KVM_IOCTL } from '../../src/kvm/ioctl.js';
import { isErrnoError, native } from '../../src/kvm/native.js';

/** FIONREAD: on a regular file, the bytes from the file position to its end (an int). */
const FIONREAD = 0x541b;

const openFds = (): number => readdirSync('/proc/self/fd').length;

let tmp = '';
let file = '';
let fdsBefore = 0;
test.before(() => {
  native();
  fdsBefore = openFds();
  tmp = mkdtempSync(join(tmpdir(), 'ktstr-native-'));
  file = join(tmp, 'data');
  writeFileSync(file, Buffer.alloc(1234, 1));
});
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function mapped(address: bigint): boolean {
  const hex = address.toString(16);
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .some((l) => l.startsWith(hex + '-') || l.startsWith(hex.padStart(8, '0') + '-'));
}

test('exports and constants', () => {
  const n = native();
  for (const f of [
    'open',
    'close',
    'ioctl',
    'mmap',
    'munmap',
    'sharedBufferAddress',
    'eventfd',
    'gettid',
    'tgkill',
    'setNoopSignalHandler',
    'unblockSignal',
    'schedSetattr',
    'schedGetPolicy',
    'schedSetaffinity',
    'schedGetaffinity',
    'threadCpuTimeNs',
    'bpf',
    'setRealtimeMs',
  ]) {
    assert.type((n as unknown as Record<string, unknown>)[f], 'function', f);
  }
  assert.is(n.constants.O_RDWR, 2);
  assert.is(n.constants.MAP_SHARED, 1);
  assert.ok(n.constants.SIGRTMIN >= 32 && n.constants.SIGRTMIN < n.constants.SIGRTMAX);
  assert.is(n.constants.PAGE_SIZE % 4096, 0);
  assert.is(n.constants.SCHED_OTHER, 0);
  assert.is(n.constants.SCHED_EXT, 7);
});

test('open/close and errno errors: .code, .errno, .syscall', () => {
  const n = native();
  try {
    n.open(join(tmp, 'missing'), n.constants.O_RDONLY);
    assert.unreachable();
  } catch (e) {
    assert.ok(isErrnoError(e, 'ENOENT'));
    const err = e as Error & { errno: number; syscall: string; path: string };
    assert.is(err.errno, 2);
    assert.is(err.syscall, 'open');
    assert.is(err.path, join(tmp, 'missing'));
    assert.match(err.message, /ENOENT/);
  }
  const fd = n.open(file, n.constants.O_RDONLY | n.constants.O_CLOEXEC);
  assert.ok(fd > 2);
  n.close(fd);
  assert.throws(
    () => n.close(fd),
    (e: unknown) => isErrnoError(e, 'EBADF') && (e as { syscall: string }).syscall === 'close',
  );
  assert.throws(() => n.open(42 as unknown as string, 0), TypeError);
  assert.throws(() => n.close(-1), RangeError);
  assert.throws(() => n.close(1.5), TypeError);
});

test('ioctl: views on ArrayBuffer and SharedArrayBuffer (at an offset), DataView, bigint address', () => {
  const n = native();
  const fd = n.open(file, n.constants.O_RDONLY | n.constants.O_CLOEXEC);
  try {
    const plain = new Int32Array(4);
    assert.is(n.ioctl(fd, FIONREAD, plain.subarray(2)), 0);
    assert.equal([...plain], [0, 0, 1234, 0]);
    const again = new Int32Array(1);
    assert.is(n.ioctlInterruptible(fd, FIONREAD, again), 0, 'the interruptible variant issues the same call');
    assert.is(again[0], 1234);
    assert.throws(
      () => n.ioctlInterruptible(fd, KVM_IOCTL.KVM_GET_REGS, new Uint8Array(143)),
      /143 bytes/,
      'and checks its argument the same way',
    );

    const sab = new SharedArrayBuffer(64);
    const shared = new Int32Array(sab, 16, 4);
    n.ioctl(fd, FIONREAD, shared.subarray(1));
    assert.is(new Int32Array(sab)[5], 1234);

    const dv = new DataView(sab, 40, 8);
    n.ioctl(fd, FIONREAD, dv);
    assert.is(dv.getInt32(0, true), 1234);

    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const addr = n.sharedBufferAddress(mem.buffer as unknown as SharedArrayBuffer);
    n.ioctl(fd, FIONREAD, addr + 100n);
    assert.is(new DataView(mem.buffer).getInt32(100, true), 1234);

    // The position counts: FIONREAD reports what is left.
    readSync(fd, Buffer.alloc(34));
    n.ioctl(fd, FIONREAD, plain);
    assert.is(plain[0], 1200);
  } finally {
    n.close(fd);
  }
});

test('ioctl: errors and the _IOC size guard', () => {
  const n = native();
  const fd = n.open('/dev/null', n.constants.O_RDWR | n.constants.O_CLOEXEC);
  try {
    assert.throws(
      () => n.ioctl(fd, 0x5401 /* TCGETS */, new Uint8Array(64)),
      (e: unknown) => isErrnoError(e, 'ENOTTY'),
    );
    // KVM_GET_REGS encodes 144 bytes: a shorter view is refused before the syscall.
    assert.throws(() => n.ioctl(fd, KVM_IOCTL.KVM_GET_REGS, new Uint8Array(143)), /143 bytes; the request encodes 144/);
    assert.throws(
      () => n.ioctl(fd, KVM_IOCTL.KVM_GET_REGS, new Uint8Array(144)),
      (e: unknown) => isErrnoError(e, 'ENOTTY'),
    );
    assert.throws(() => n.ioctl(fd, 2 ** 32, 0), RangeError);
    assert.throws(() => n.ioctl(fd, 0x5401, 'x' as unknown as number), TypeError);
    assert.throws(() => n.ioctl(fd, 0x5401, -1n), RangeError);
  } finally {
    n.close(fd);
  }
});

test('mmap returns an ArrayBuffer over the mapping; munmap unmaps at once and detaches', () => {
  const n = native();
  const c = n.constants;
  const fd = n.open(file, c.O_RDONLY | c.O_CLOEXEC);
  let buf: ArrayBuffer;
  try {
    buf = n.mmap(fd, 4096, c.PROT_READ, c.MAP_SHARED, 0);
  } finally {
    n.close(fd);
  }
  assert.is(buf.byteLength, 4096);
  const bytes = new Uint8Array(buf);
  assert.is(bytes[0], 1);
  assert.is(bytes[1233], 1);
  assert.is(bytes[1234], 0);
  const addr = n.sharedBufferAddress(buf);
  assert.ok(mapped(addr), 'mapping is listed in /proc/self/maps');
  n.munmap(buf);
  assert.is(buf.byteLength, 0);
  assert.is(bytes.length, 0);
  assert.not.ok(mapped(addr), 'mapping is gone after munmap');
  n.munmap(buf); // a detached buffer is ignored

  const anon = n.mmap(-1, 8192, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, 0);
  new Uint8Array(anon)[8191] = 7;
  assert.is(new Uint8Array(anon)[8191], 7);
  n.munmap(anon);
  assert.throws(
    () => n.mmap(-1, 4096, c.PROT_READ, c.MAP_SHARED, 0),
    (e: unknown) => isErrnoError(e) && (e as { syscall: string }).syscall === 'mmap',
  );
  assert.throws(() => n.munmap(new SharedArrayBuffer(8) as unknown as ArrayBuffer), TypeError);
});

test('sharedBufferAddress: page-aligned shared WASM memory, stable across reads', () => {
  const n = native();
  const mem = new WebAssembly.Memory({ initial: 4, maximum: 16, shared: true });
  const a = n.sharedBufferAddress(mem.buffer as unknown as SharedArrayBuffer);
  assert.is(typeof a, 'bigint');
  assert.is(a % 4096n, 0n);
  assert.is(n.sharedBufferAddress(mem.buffer as unknown as SharedArrayBuffer), a);
  mem.grow(1); // shared memory with a maximum is reserved up front: growing does not move it
  assert.is(n.sharedBufferAddress(mem.buffer as unknown as SharedArrayBuffer), a);
  assert.throws(() => n.sharedBufferAddress(new Uint8Array(4) as unknown as ArrayBuffer), TypeError);
});

test('eventfd: counter semantics through plain fs reads and writes', () => {
  const n = native();
  const fd = n.eventfd(3, n.constants.EFD_CLOEXEC | n.constants.EFD_NONBLOCK);
  try {
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(4n);
    writeSync(fd, v);
    readSync(fd, v);
    assert.is(v.readBigUInt64LE(), 7n);
    assert.throws(() => readSync(fd, v), /EAGAIN/);
  } finally {
    closeSync(fd);
  }
});

test('the binding loads and works in worker threads (context-aware), several at once', async () => {
  const url = new URL('../../src/kvm/native.js', import.meta.url).href;
  const src = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ native }) => {
      const n = native();
      const fd = n.eventfd(0, n.constants.EFD_CLOEXEC);
      n.close(fd);
      parentPort.postMessage({ tid: n.gettid(), fd });
    });`;
  const results = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<{ tid: number; fd: number }>((resolve, reject) => {
          const w = new Worker(src, { eval: true });
          let got: { tid: number; fd: number } | undefined;
          w.once('message', (m: { tid: number; fd: number }) => {
            got = m;
          });
          w.once('error', reject);
          // Wait for the thread to end: its event loop's own fds close with it.
          w.once('exit', () => (got ? resolve(got) : reject(new Error('worker exited without a message'))));
        }),
    ),
  );
  const tids = new Set(results.map((r) => r.tid));
  assert.is(tids.size, 3);
  assert.not.ok(tids.has(native().gettid()));
  for (const r of results) assert.ok(r.fd > 2);
});

test('schedSetaffinity/schedGetaffinity: round trip on the calling thread (tid 0 and its own tid)', () => {
  const n = native();
  const cpus = n.schedGetaffinity(0);
  assert.ok(cpus.length >= 1);
  assert.equal(
    cpus,
    [...cpus].sort((a, b) => a - b),
    'ascending CPU numbers',
  );
  assert.equal(n.schedGetaffinity(n.gettid()), cpus);
  const one = cpus[cpus.length - 1];
  try {
    n.schedSetaffinity(0, [one]);
    assert.equal(n.schedGetaffinity(0), [one]);
    assert.equal(n.schedGetaffinity(n.gettid()), [one]);
    if (cpus.length > 1) {
      n.schedSetaffinity(n.gettid(), [cpus[0], one]);
      assert.equal(n.schedGetaffinity(0), [cpus[0], one]);
    }
  } finally {
    n.schedSetaffinity(0, cpus);
  }
  assert.equal(n.schedGetaffinity(0), cpus);
  assert.throws(
    () => n.schedSetaffinity(0, []),
    (e: unknown) => isErrnoError(e, 'EINVAL') && (e as { syscall: string }).syscall === 'sched_setaffinity',
  );
  assert.throws(() => n.schedSetaffinity(0, [-1]), RangeError);
  assert.throws(() => n.schedSetaffinity(0, 3 as unknown as number[]), TypeError);
  assert.throws(
    () => n.schedGetaffinity(2 ** 31 - 1),
    (e: unknown) => isErrnoError(e, 'ESRCH'),
  );
});

test('schedSetattr: SCHED_OTHER with nice, read back by schedGetPolicy and getpriority', () => {
  const n = native();
  const c = n.constants;
  const niceBefore = getPriority(0); // the main thread's tid is the pid
  const policyBefore = n.schedGetPolicy(0);
  try {
    n.schedSetattr(0, c.SCHED_OTHER, 5);
    assert.is(n.schedGetPolicy(0), c.SCHED_OTHER);
    assert.is(n.schedGetPolicy(n.gettid()), c.SCHED_OTHER);
    assert.is(getPriority(0), 5);
    n.schedSetattr(n.gettid(), c.SCHED_OTHER, 3);
    assert.is(getPriority(0), 3);
  } finally {
    n.schedSetattr(0, policyBefore, niceBefore);
  }
  assert.is(getPriority(0), niceBefore);
  n.schedSetattr(0, c.SCHED_OTHER); // nice defaults to 0
  assert.is(getPriority(0), 0);
  n.schedSetattr(0, policyBefore, niceBefore);
  assert.throws(() => n.schedSetattr(0, -1), RangeError);
  assert.throws(() => n.schedSetattr(0, 0, 20), RangeError);
  assert.throws(() => n.schedSetattr(0, 0, -21), RangeError);
  assert.throws(() => n.schedSetattr(0, 2 ** 31), RangeError);
  assert.throws(() => n.schedSetattr(0, 0.5), TypeError);
  assert.throws(
    () => n.schedSetattr(0, 12345),
    (e: unknown) => isErrnoError(e, 'EINVAL') && (e as { syscall: string }).syscall === 'sched_setattr',
  );
  assert.throws(
    () => n.schedGetPolicy(2 ** 31 - 1),
    (e: unknown) => isErrnoError(e, 'ESRCH') && (e as { syscall: string }).syscall === 'sched_getattr',
  );
});

test('schedSetattr: SCHED_EXT is taken on a sched_ext kernel, else refused with EINVAL', () => {
  const n = native();
  const c = n.constants;
  let took = false;
  try {
    n.schedSetattr(0, c.SCHED_EXT);
    took = true;
  } catch (e) {
    assert.ok(isErrnoError(e, 'EINVAL'), `a kernel without sched_ext refuses policy 7 with EINVAL (got ${String(e)})`);
    assert.is((e as { errno: number }).errno, 22);
  }
  try {
    if (took) assert.is(n.schedGetPolicy(0), c.SCHED_EXT, 'read back as SCHED_EXT');
    else assert.is(n.schedGetPolicy(0), c.SCHED_OTHER, 'the refused call left the policy alone');
  } finally {
    if (took) n.schedSetattr(0, c.SCHED_OTHER);
  }
  console.log(`  (this host kernel ${took ? 'took' : 'refused'} SCHED_EXT)`);
});

test("setRealtimeMs: a bad time is refused before clock_settime (setting this host's clock is the guest agent's job: the KVM tests check the guest's skew)", () => {
  const n = native();
  assert.throws(() => n.setRealtimeMs(-1), /ms is out of range/);
  assert.throws(() => n.setRealtimeMs(2 ** 51), /ms is out of range/);
  assert.throws(() => n.setRealtimeMs('soon' as unknown as number), /ms must be a number/);
});

test('threadCpuTimeNs: a bigint that grows while this thread spins, not while it sleeps', () => {
  const n = native();
  const t0 = n.threadCpuTimeNs();
  assert.is(typeof t0, 'bigint');
  let x = 0;
  const until = Date.now() + 50;
  while (Date.now() < until) x += (x % 7) + 1;
  const t1 = n.threadCpuTimeNs();
  assert.ok(x > 0 && t1 - t0 >= 20_000_000n, `spinning 50 ms wall used ${t1 - t0} ns of CPU`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  const t2 = n.threadCpuTimeNs();
  assert.ok(t2 - t1 < 50_000_000n, `sleeping 100 ms used ${t2 - t1} ns of CPU`);
});

test("bpf: raw bpf(2) with the view's pointer (at an offset) and byte length; errno errors", () => {
  const n = native();
  // A bad command: EINVAL from the syscall itself.
  assert.throws(
    () => n.bpf(99999, new Uint8Array(16)),
    (e: unknown) =>
      isErrnoError(e, 'EINVAL') &&
      (e as { errno: number }).errno === 22 &&
      (e as { syscall: string }).syscall === 'bpf',
  );
  // The byte length is the size: a non-zero byte past union bpf_attr within it is E2BIG,
  // and so is a size over a page, before any command runs.
  const big = new Uint8Array(4096);
  big[4095] = 1;
  // (Node's own errno table has no E2BIG: the binding names it, in .code and the message)
  assert.throws(
    () => n.bpf(11, big),
    (e: unknown) =>
      isErrnoError(e, 'E2BIG') &&
      (e as { errno: number }).errno === 7 &&
      /^E2BIG, Argument list too long/.test((e as Error).message),
  );
  assert.throws(
    () => n.bpf(11, new Uint8Array(n.constants.PAGE_SIZE + 1)),
    (e: unknown) => isErrnoError(e, 'E2BIG'),
  );
  // BPF_PROG_GET_NEXT_ID (11) through a DataView at offset 8: next_id lands at the view's offset 4.
  const buf = new ArrayBuffer(32);
  new Uint8Array(buf).fill(0xee, 0, 8);
  const view = new DataView(buf, 8, 16);
  try {
    assert.is(n.bpf(11, view), 0);
    assert.ok(view.getUint32(4, true) > 0, 'the first program id');
  } catch (e) {
    assert.ok(isErrnoError(e, 'ENOENT'), `no program loaded: ENOENT (got ${String(e)})`);
  }
  assert.equal([...new Uint8Array(buf, 0, 8)], Array(8).fill(0xee), 'nothing written before the view');
  assert.throws(() => n.bpf(11, 5 as unknown as Uint8Array), TypeError);
  assert.throws(() => n.bpf(11, new ArrayBuffer(16) as unknown as Uint8Array), TypeError);
});

test('no fd left open by these tests', () => {
  assert.is(openFds(), fdsBefore);
});

test.run();
