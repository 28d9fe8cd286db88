// Issue 6: kernel labels (sanitised cache directory names, cell names) and version parsing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  compareVersions,
  isSanitizedLabel,
  kernelCellName,
  LabelError,
  parseVersion,
  sanitizeLabel,
  versionHasPrefix,
  versionOfLabel,
} from '../../src/kernel/label.js';

test('sanitizeLabel keeps safe labels and rewrites the rest into one path component', () => {
  assert.is(sanitizeLabel('6.12.117-sched_ext'), '6.12.117-sched_ext');
  assert.is(sanitizeLabel('my kernel/6.12'), 'my-kernel-6.12');
  assert.is(sanitizeLabel('../../etc/passwd'), 'etc-passwd');
  assert.is(sanitizeLabel('.hidden'), 'hidden');
  assert.is(sanitizeLabel('a\u0000b\nc'), 'a-b-c');
  assert.is(sanitizeLabel('x'.repeat(200)).length, 80);
  for (const bad of ['', '..', '///', '  ', '-.-'])
    assert.throws(
      () => sanitizeLabel(bad),
      (e: unknown) => e instanceof LabelError,
    );
  assert.ok(isSanitizedLabel('6.12.117-sched_ext'));
  assert.not.ok(isSanitizedLabel('a/b'));
  assert.not.ok(isSanitizedLabel('..'));
});

test('kernelCellName is an identifier', () => {
  assert.is(kernelCellName('6.14.2'), 'kernel_6_14_2');
  assert.is(kernelCellName('6.12.117-sched_ext'), 'kernel_6_12_117_sched_ext');
});

test('versions: parse, compare, prefixes, from labels', () => {
  assert.equal(parseVersion('6.12'), [6, 12]);
  assert.equal(parseVersion('v6.14.2'), [6, 14, 2]);
  assert.equal(parseVersion('6.14-rc3'), [6, 14]);
  assert.is(parseVersion('6'), undefined);
  assert.is(parseVersion('six.twelve'), undefined);
  assert.is(compareVersions([6, 12], [6, 12, 0]), 0);
  assert.is(compareVersions([6, 9], [6, 12]), -1);
  assert.is(compareVersions([7, 0], [6, 99, 1]), 1);
  assert.ok(versionHasPrefix([6, 12, 117], [6, 12]));
  assert.not.ok(versionHasPrefix([6, 12, 117], [6, 12, 1]));
  assert.not.ok(versionHasPrefix([6, 1], [6, 12]));
  assert.equal(versionOfLabel('6.12.117-sched_ext'), [6, 12, 117]);
  assert.is(versionOfLabel('my-kernel'), undefined);
});

test.run();
