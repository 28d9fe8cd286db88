// The shell initramfs's /init protocol as the host reads it: the exit line on the console
// (the fallback where the guest kernel has no /dev/port) and the script that prints it.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXIT_LINE, initScript, printedExitCode } from '../../src/guest/shell-initramfs.js';

test('printedExitCode: the last KTSTR_EXIT line, whole lines only, low 8 bits', () => {
  assert.is(printedExitCode('boot...\nKTSTR_EXIT=7\n[ 1.0] reboot: Power down\n'), 7);
  assert.is(printedExitCode('KTSTR_EXIT=1\r\nKTSTR_EXIT=0\r\n'), 0, 'the last one, CRLF console');
  assert.is(printedExitCode('KTSTR_EXIT=300\n'), 300 & 255);
  assert.is(printedExitCode('no line here\n'), undefined);
  assert.is(printedExitCode('echo "KTSTR_EXIT=$rc"\nxKTSTR_EXIT=3\n'), undefined, 'not mid-line, not a variable');
});

test('/init prints the exit line before it tries the exit port', () => {
  const s = initScript();
  const line = s.indexOf(`echo "${EXIT_LINE}$rc"`);
  assert.ok(line > 0, s);
  assert.ok(line < s.indexOf('of=/dev/port'), 'line first, then /dev/port');
});

test.run();
