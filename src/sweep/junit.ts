// The sweep as JUnit XML (--junit): one <testcase> per cell (classname sweep.<scheduler>,
// name <kernel>/<topology>), a failed cell as <failure type="<kind>"> with its report. Every
// text is escaped, and characters XML 1.0 forbids (NUL, most C0 controls, lone surrogates)
// are replaced, so any scheduler output still makes a well-formed file.

import type { SweepResult } from './result.js';
import type { CellResult } from '../cell/result.js';
import { failureBlock } from './report.js';

/** Text safe in XML 1.0 content and attribute values. */
export function xmlEscape(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd')
      .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

/** An attribute value: xmlEscape, and tab, newline and CR as references (a parser turns literal ones into spaces). */
export function xmlAttribute(s: string): string {
  return xmlEscape(s).replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}

function testcase(c: CellResult): string {
  const head = `  <testcase classname="${xmlAttribute(`sweep.${c.scheduler}`)}" name="${xmlAttribute(`${c.kernel}/${c.topology}`)}" time="${(c.wallMs / 1000).toFixed(3)}"`;
  if (c.passed) return `${head}/>\n`;
  const kind = c.failure?.kind ?? 'unknown';
  return `${head}>\n    <failure type="${xmlAttribute(kind)}" message="${xmlAttribute(`${kind}: ${c.failure?.message ?? ''}`)}">${xmlEscape(failureBlock(c))}</failure>\n  </testcase>\n`;
}

export function sweepJunit(r: SweepResult): string {
  const failures = r.cells.filter((c) => !c.passed).length;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<testsuites name="ktstr-wasm sweep" tests="${r.cells.length}" failures="${failures}" time="${(r.wallMs / 1000).toFixed(3)}">\n` +
    `<testsuite name="ktstr-wasm sweep" tests="${r.cells.length}" failures="${failures}" errors="0" skipped="0" time="${(r.wallMs / 1000).toFixed(3)}" timestamp="${xmlAttribute(r.startedAt)}">\n` +
    r.cells.map(testcase).join('') +
    '</testsuite>\n</testsuites>\n'
  );
}
