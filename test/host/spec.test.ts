// Test host pieces that need no VM: the environment passed in, the run spec as L1's init
// decodes and evaluates it (with busybox sh), the generated /init (syntax), the output
// marker hold-back, QEMU's command line, and availability.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { guestEnvironment, shQuote, specLine, specScript } from '../../src/host/env.js';
import { testHostAvailable } from '../../src/host/index.js';
import { initScript } from '../../src/host/init-script.js';
import { holdback, L1_CMDLINE, OUTPUT_PORT, qemuArgs } from '../../src/host/run.js';
import { measureHostTscKhz } from '../../src/host/clock.js';
import type { TestHostImage } from '../../src/host/image.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

test('guestEnvironment: KTSTR_*, the default names and --keep-env names only', () => {
  const env = guestEnvironment(
    {
      KTSTR_DEBUG: '1',
      KTSTR_KERNEL: '/k',
      CI: 'true',
      NO_COLOR: '1',
      HOME: '/home/x',
      PATH: '/x',
      SECRET: 's',
      MY_VAR: 'm',
      TERM: 'xterm',
      NODE_OPTIONS: '--max-old-space-size=100',
    },
    ['MY_VAR', 'ABSENT'],
  );
  assert.equal(env, {
    KTSTR_DEBUG: '1',
    KTSTR_KERNEL: '/k',
    CI: 'true',
    NO_COLOR: '1',
    MY_VAR: 'm',
    NODE_OPTIONS: '--max-old-space-size=100',
  });
});

test('shQuote and specScript reject what sh cannot carry', () => {
  assert.is(shQuote("it's"), `'it'\\''s'`);
  assert.throws(() => specScript({ nonce: 'n', cwd: '/', env: { 'BAD-NAME': 'x' }, argv: ['true'] }), /not usable/);
  assert.throws(() => specScript({ nonce: 'n', cwd: '/', env: {}, argv: ['a\0b'] }), /NUL/);
});

test('the run spec survives base64 + eval in busybox sh: argv, env, cwd byte for byte', () => {
  if (BUSYBOX === undefined) {
    console.log('  (busybox not installed: skipped)');
    return;
  }
  const argv = ['printf', '%s|', "it's", 'two words', '$HOME', '`id`', '"quoted"', 'back\\slash', 'new\nline', '', 'ü'];
  const env = { KTSTR_X: "a'b c$d", FOO: '' };
  const line = specLine({ nonce: 'ktstr0123', cwd: '/work/some dir', env, argv });
  assert.ok(/^[A-Za-z0-9+/=]+\n$/.test(line), 'one base64 line');
  // what init does with the line (see src/host/init-script.ts)
  const script = `read -r ktstr_spec
ktstr_spec=$(echo "$ktstr_spec" | base64 -d)
eval "$ktstr_spec"
echo "nonce=$ktstr_nonce cwd=$ktstr_cwd"
echo "KTSTR_X=$KTSTR_X FOO=[$FOO] exported=$(env | grep -c '^KTSTR_X=')"
"$@"`;
  const r = spawnSync(BUSYBOX, ['sh', '-c', script], { input: line, encoding: 'utf8', env: {} });
  assert.is(r.status, 0, r.stderr);
  const [first, second, third] = r.stdout.split('\n');
  assert.is(first, 'nonce=ktstr0123 cwd=/work/some dir');
  assert.is(second, "KTSTR_X=a'b c$d FOO=[] exported=1");
  assert.is(
    r.stdout.slice(first!.length + second!.length + 2),
    argv
      .slice(2)
      .map((a) => `${a}|`)
      .join(''),
  );
  assert.is(third, 'it\'s|two words|$HOME|`id`|"quoted"|back\\slash|new');
});

test('the generated /init is valid sh and loads the modules in order', () => {
  const text = initScript({ modules: ['/m/irqbypass.ko', '/m/kvm.ko', '/m/kvm-amd.ko'], path: '/usr/bin:/bin' });
  assert.ok(text.startsWith('#!/bin/busybox sh\n'));
  const order = ['irqbypass', 'kvm.ko', 'kvm-amd'].map((m) => text.indexOf(`insmod /m/${m}`));
  assert.ok(order.every((i) => i > 0) && order[0]! < order[1]! && order[1]! < order[2]!, order.join(','));
  assert.ok(text.includes('[ -c /dev/kvm ]'));
  if (BUSYBOX !== undefined) {
    const r = spawnSync(BUSYBOX, ['sh', '-n', '-c', text], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
  }
});

test('holdback keeps only what could start the end marker', () => {
  const mark = Buffer.from('ktstrabc:exit:');
  const hb = (s: string): string => s.slice(0, holdback(Buffer.from(s), mark));
  assert.is(hb('hello\n'), 'hello\n', 'a trailing newline is not held');
  assert.is(hb('hello k'), 'hello ', 'a possible marker start is held');
  assert.is(hb('hello ktstrab'), 'hello ');
  assert.is(hb('hello ktstrax'), 'hello ktstrax', 'not a marker prefix');
  assert.is(hb(''), '');
});

test('qemuArgs: TCG with emulated SVM, microvm with a PIT, initrd from fd 3', () => {
  const image = { kernel: { bootImage: '/c/vmlinux' } } as unknown as TestHostImage;
  const args = qemuArgs(image, 2048, 2, {}, 2_999_987);
  const after = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
  assert.is(after('-accel'), 'tcg');
  assert.is(after('-cpu'), 'EPYC,+svm,+npt');
  assert.match(after('-M')!, /^microvm,.*pit=on/);
  assert.is(after('-m'), '2048');
  assert.is(after('-smp'), '2');
  assert.is(after('-kernel'), '/c/vmlinux');
  assert.is(after('-initrd'), '/dev/fd/3');
  // a fixed TSC rate: L1 does not calibrate it against the PIT
  assert.is(after('-append'), `${L1_CMDLINE} tsc_early_khz=2999987`);
  assert.ok(args.includes('-no-reboot'));
  assert.is(
    qemuArgs(image, 2048, 2, { KTSTR_HOST_CMDLINE_EXTRA: 'loglevel=7' }, null)[args.indexOf('-append') + 1],
    `${L1_CMDLINE} loglevel=7`,
  );
});

test('qemuArgs with an output file: a virtio serial port named ktstr.out on a virtio-mmio slot (never PCIe); none without', () => {
  const image = { kernel: { bootImage: '/c/vmlinux' } } as unknown as TestHostImage;
  const plain = qemuArgs(image, 2048, 2, {}, null);
  assert.not.ok(plain.some((a) => a.includes('virtserialport')));
  assert.not.match(plain[plain.indexOf('-M') + 1], /pcie=on/);
  const args = qemuArgs(image, 2048, 2, {}, null, '/tmp/x/port.out');
  assert.not.match(args[args.indexOf('-M') + 1], /pcie=on/, 'QEMU 10 leaves L1 hung with pcie=on');
  assert.ok(args.includes('virtio-serial-device,id=ktvs'));
  assert.ok(args.includes('file,id=ktout,path=/tmp/x/port.out'));
  assert.ok(args.some((a) => a.startsWith('virtserialport,') && a.endsWith(`name=${OUTPUT_PORT}`)));
});

test('measureHostTscKhz: a plausible rate that agrees with itself', () => {
  const a = measureHostTscKhz();
  if (a === undefined) {
    console.log('  (no TSC on this host: skipped)');
    return;
  }
  const b = measureHostTscKhz();
  assert.ok(a > 100_000 && a < 20_000_000, `${a} kHz`);
  assert.ok(Math.abs(a - b!) / a < 0.02, `${a} vs ${b} kHz`);
});

test('testHostAvailable: missing qemu is reported with the install command', () => {
  const r = testHostAvailable({ PATH: '/nonexistent' });
  assert.is(r.ok, false);
  assert.match(r.reason ?? '', /apt-get install qemu-system-x86/);
});

test.run();
