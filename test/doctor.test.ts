// `ktstr-wasm doctor` on this machine: the KVM kind it names, the measured calibration
// figure in --json, and the advice it gives for PVM.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { probeKvm } from '../src/doctor/kvm-kind.js';
import { repoRoot } from './helpers/repo.js';

const bin = `${repoRoot()}/bin/ktstr-wasm`;

test('probeKvm: a missing device is reported as absent', () => {
  const probe = probeKvm('/nonexistent/kvm');
  assert.is(probe.kind, 'absent');
  assert.match(probe.detail, /does not exist/);
});

test('doctor --json carries the KVM kind, a measured calibration and where VMs run', () => {
  const run = spawnSync(process.execPath, [bin, 'doctor', '--json'], { encoding: 'utf8', timeout: 120_000 });
  assert.ok(run.status === 0 || run.status === 1, `exit ${run.status}: ${run.stderr}`);
  const report = JSON.parse(run.stdout);
  assert.type(report.kvm.kind, 'string');
  assert.ok(['kvm', 'test-host', 'none'].includes(report.path));
  assert.is(run.status, report.path === 'none' ? 1 : 0);
  if (existsSync('/sys/module/kvm_pvm') && existsSync('/dev/kvm')) {
    // this machine kind: PVM, measured slow, test host recommended
    assert.is(report.kvm.kind, 'pvm');
    assert.ok(report.calibration.ok, `calibration failed: ${report.calibration.error}`);
    assert.ok(report.calibration.instructionsPerSecond > 1e5, 'the calibration guest ran');
    assert.ok(report.calibration.instructionsPerSecond < 1e8, 'PVM is far below hardware speed');
    assert.ok(
      report.advice.some((a: string) => /PVM/.test(a) && /test host/.test(a)),
      'recommends the test host',
    );
    if (report.qemu.found) assert.is(report.path, 'test-host');
  }
});

test('doctor prints a readable report without colour when not on a terminal', () => {
  const run = spawnSync(process.execPath, [bin, 'doctor'], { encoding: 'utf8', timeout: 120_000 });
  assert.match(run.stdout, /\/dev\/kvm/);
  assert.match(run.stdout, /VMs run on/);
  assert.not.match(run.stdout, /\x1b\[/);
});

test.run();
