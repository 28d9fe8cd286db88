// Issue 6, the VM check: our own VMM (bootVm, one vCPU) boots the sched_ext kernel with an
// initramfs holding scx_simple (the kernel tree's example, from the kernel's schedulers/)
// and scx_ktstr (the project's fixture scheduler, built against the same kernel by the host
// test test/scheduler/scx-ktstr-build.test.ts, or found in the kernel's cache entry). In
// one guest: each scheduler reaches /sys/kernel/sched_ext/state "enabled" and SIGINT
// unregisters it; scx_ktstr --fail-verify and --verify-loop exit non-zero with the verifier's
// rejection between the log markers; --crash-after 1 ends with the scx_bpf_error message;
// --degrade and --slow attach and detach; --stall is ended by the sched_ext watchdog.
// Kernel: KTSTR_KERNEL, else the prebuilt 6.12.117-sched_ext (see src/kernel/resolve.ts).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { collapseBytes, createCollapser } from '../../src/collapse/index.js';
import { resolveKernel } from '../../src/kernel/resolve.js';
import { buildSchedulerInitramfs } from '../../src/scheduler/guest-initramfs.js';
import { SCX_KTSTR_BINARY, scxKtstrTestBuildDir } from '../../src/kernel/scx-ktstr.js';
import { bootVm, DEFAULT_CMDLINE } from '../../src/vmm/index.js';
import { appOutput } from '../../src/guest/shell-initramfs.js';

const PREBUILT = '6.12.117-sched_ext';
const TIMEOUT_MS = 150_000;
// a periodic tick even on an idle CPU: with --stall nothing runs, and the watchdog's check
// that its own work item still runs happens from the scheduler tick
const NOHZ_OFF = 'nohz=off';

// each run_sched: start it, poll the state (<= 20 s guest time), show it, SIGINT, show the exit
const GUEST_CMD = `
run_sched() {
  name=$1; shift
  "$@" >/tmp/$name.log 2>&1 &
  pid=$!
  state=; i=0
  while [ $i -lt 200 ]; do
    state=$(cat /sys/kernel/sched_ext/state 2>/dev/null)
    [ "$state" = enabled ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
  done
  echo "$name.state=$state"
  echo "$name.ops=$(cat /sys/kernel/sched_ext/root/ops 2>/dev/null)"
  kill -INT $pid 2>/dev/null; wait $pid
  echo "$name.exit=$?"
  echo "$name.after=$(cat /sys/kernel/sched_ext/state 2>/dev/null)"
  sed "s/^/$name.log: /" /tmp/$name.log
}
run_sched simple /sched/scx_simple
run_sched ktstr /sched/scx_ktstr
run_sched degrade /sched/scx_ktstr --degrade
run_sched slow /sched/scx_ktstr --slow
/sched/scx_ktstr --fail-verify >/tmp/fv.out 2>/tmp/fv.err; echo "fv.exit=$?"
echo "fv.state=$(cat /sys/kernel/sched_ext/state)"
echo '=== fail-verify stderr'; cat /tmp/fv.err; echo '=== end'
/sched/scx_ktstr --verify-loop >/tmp/vl.out 2>/tmp/vl.err; echo "vl.exit=$?"
echo '=== verify-loop stderr'; cat /tmp/vl.err; echo '=== end'
/sched/scx_ktstr --crash-after 1 >/tmp/crash.out 2>&1; echo "crash.exit=$?"
sed 's/^/crash.log: /' /tmp/crash.out
echo "crash.after=$(cat /sys/kernel/sched_ext/state)"
/sched/scx_ktstr --stall >/tmp/stall.out 2>&1; echo "stall.exit=$?"
sed 's/^/stall.log: /' /tmp/stall.out
`;

function field(out: string, name: string): string | undefined {
  return new RegExp(`^${name.replace('.', '\\.')}=(.*)$`, 'm').exec(out)?.[1]?.trim();
}

function section(out: string, title: string): string {
  const start = out.indexOf(`=== ${title}\n`);
  if (start < 0) return '';
  const end = out.indexOf('=== end', start);
  return out.slice(start + title.length + 5, end < 0 ? undefined : end);
}

test('scx_simple and scx_ktstr attach in our VMM; scx_ktstr --fail-verify/--verify-loop/--crash-after fail as designed', async () => {
  assert.ok(existsSync('/dev/kvm'), '/dev/kvm is missing: run test/kvm/ where KVM works or inside the test host');
  const kernel = resolveKernel(process.env.KTSTR_KERNEL ? undefined : PREBUILT);
  const simple = kernel.schedulersDir === undefined ? undefined : join(kernel.schedulersDir, 'scx_simple');
  assert.ok(simple !== undefined && existsSync(simple), `${kernel.label}: schedulers/scx_simple is missing`);
  const candidates = [
    kernel.schedulersDir === undefined ? undefined : join(kernel.schedulersDir, SCX_KTSTR_BINARY),
    join(scxKtstrTestBuildDir(kernel.label), SCX_KTSTR_BINARY),
  ].filter((p): p is string => p !== undefined);
  const ktstr = candidates.find((p) => existsSync(p));
  assert.ok(
    ktstr !== undefined,
    `scx_ktstr not built for ${kernel.label}: looked at ${candidates.join(', ')} ` +
      '(the host test test/scheduler/scx-ktstr-build.test.ts builds it; npm test runs it first)',
  );

  const initrd = await buildSchedulerInitramfs({ exec: GUEST_CMD, schedulers: [simple, ktstr] });
  let com2 = '';
  const verbose = process.env.KTSTR_TEST_VERBOSE === '1';
  console.log(
    `  booting ${kernel.label} (${kernel.origin}) with scx_simple and ${ktstr} (initramfs ${(initrd.length / 1024 ** 2).toFixed(1)} MiB)`,
  );
  const r = await bootVm({
    kernel: kernel.bzImage,
    initrd,
    cmdline: `${DEFAULT_CMDLINE} quiet ${NOHZ_OFF}`,
    memoryMiB: 512,
    timeoutMs: TIMEOUT_MS,
    onApp: (c) => {
      const text = Buffer.from(c).toString('latin1');
      com2 += text;
      if (verbose) process.stdout.write(text);
    },
    onConsole: verbose ? (c) => process.stdout.write(c) : undefined,
  });
  const out = appOutput(com2).replace(/\r/g, '');
  const tail = `\n--- guest output ---\n${out.split('\n').slice(-60).join('\n')}\n--- console ---\n${r.consoleTail.split('\n').slice(-20).join('\n')}`;
  console.log(
    `  ${kernel.label}: guest ${r.reason} ${r.exitCode ?? ''} after ${(r.timings.totalMs / 1000).toFixed(1)} s`,
  );
  assert.is(r.reason, 'exit', `the guest command ran to its end (${r.detail})${tail}`);

  assert.is(field(out, 'simple.state'), 'enabled', `scx_simple attached${tail}`);
  assert.is(field(out, 'simple.ops'), 'simple', tail);
  assert.is(field(out, 'simple.after'), 'disabled', `SIGINT unregisters scx_simple${tail}`);

  assert.is(field(out, 'ktstr.state'), 'enabled', `scx_ktstr attached${tail}`);
  assert.is(field(out, 'ktstr.ops'), 'ktstr', tail);
  assert.is(field(out, 'ktstr.exit'), '0', `scx_ktstr exits 0 after SIGINT${tail}`);
  assert.is(field(out, 'ktstr.after'), 'disabled', tail);
  assert.match(
    out,
    /^ktstr\.log: EXIT: .*unregistered from user space/m,
    `scx_ktstr reports the unregistration${tail}`,
  );

  for (const knob of ['degrade', 'slow']) {
    assert.is(field(out, `${knob}.state`), 'enabled', `scx_ktstr --${knob} attached${tail}`);
    assert.is(field(out, `${knob}.exit`), '0', `scx_ktstr --${knob} exits 0 after SIGINT${tail}`);
  }

  assert.is(field(out, 'fv.exit'), '1', `--fail-verify: the loader exits 1${tail}`);
  assert.is(field(out, 'fv.state'), 'disabled', tail);
  const fv = section(out, 'fail-verify stderr');
  const fvLog = /^-- BEGIN PROG LOAD LOG --\n([\s\S]*?)^-- END PROG LOAD LOG --$/m.exec(fv)?.[1];
  assert.ok(fvLog !== undefined, `--fail-verify: the verifier log sits between the markers${tail}`);
  assert.match(fvLog, /invalid mem access 'scalar'/, `--fail-verify: the verifier rejects the null store${tail}`);

  assert.is(field(out, 'vl.exit'), '1', `--verify-loop: the loader exits 1${tail}`);
  const vlLog =
    /^-- BEGIN PROG LOAD LOG --\n([\s\S]*?)^-- END PROG LOAD LOG --$/m.exec(section(out, 'verify-loop stderr'))?.[1] ??
    '';
  assert.match(vlLog, /invalid mem access 'scalar'/, tail);
  const ktimeCalls = vlLog.split('\n').filter((l) => /call bpf_ktime_get_ns/.test(l)).length;
  assert.ok(
    ktimeCalls >= 8,
    `--verify-loop: the unrolled loop's 8 bpf_ktime_get_ns calls are in the log (saw ${ktimeCalls})${tail}`,
  );
  // the real log feeds cycle collapse: the loop body is shown once, as 8x
  const collapsed = Buffer.from(
    collapseBytes(Buffer.from(vlLog, 'latin1'), (sink) => createCollapser('ts', sink)),
  ).toString('latin1');
  assert.match(
    collapsed,
    /^--- 8x of the following \d+ lines ---$/m,
    `--verify-loop: collapse finds the 8 iterations\n${collapsed}`,
  );

  assert.is(field(out, 'crash.exit'), '1', `--crash-after 1: the loader exits 1${tail}`);
  assert.match(
    out,
    /^crash\.log: EXIT: .*--crash-after 1 s reached/m,
    `--crash-after: the scx_bpf_error message comes back${tail}`,
  );
  assert.is(field(out, 'crash.after'), 'disabled', tail);

  assert.is(field(out, 'stall.exit'), '1', `--stall: the watchdog ends the scheduler, the loader exits 1${tail}`);
  assert.match(out, /^stall\.log: EXIT: runnable task stall/m, `--stall: the sched_ext watchdog fired${tail}`);
});

test.run();
