// The --json file: a realistic sweep round-trips unchanged; other schemas and versions,
// garbage and damaged fields are refused with the file and the field's path named; fields a
// later version adds are ignored (docs/sweep-json.md's versioning rule); and the document
// names every field the writer writes.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseSweepResult, serializeSweepResult, SweepJsonError } from '../../src/sweep/json.js';
import { healthy, passedCell, rejected, stockSetupFailure, sweepResult } from './fake-cells.js';
import { repoPath } from '../helpers/repo.js';

const whole = sweepResult([...healthy, stockSetupFailure, rejected]);
const text = serializeSweepResult(whole);

/** The written file with `damage` applied to its parsed form. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- damage writes any field of the parsed JSON, with any value
function damaged(damage: (doc: any) => void): string {
  const doc = JSON.parse(text);
  damage(doc);
  return JSON.stringify(doc);
}

function refused(file: string, pattern: RegExp): void {
  try {
    parseSweepResult(file, 'shard-2.json');
  } catch (e) {
    assert.instance(e, SweepJsonError);
    assert.match((e as Error).message, pattern);
    assert.ok((e as Error).message.startsWith('shard-2.json'), `the file is named first: ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`accepted; expected ${pattern}`);
}

test('round trip: what serializeSweepResult writes parses back equal, nulls and optional fields included', () => {
  assert.ok(text.endsWith('\n'));
  assert.equal(parseSweepResult(text, 'r.json'), whole);
  const shard = sweepResult(healthy.slice(0, 2), {
    matrix: whole.matrix,
    shard: { index: 1, count: 3 },
    interrupted: true,
  });
  assert.equal(parseSweepResult(serializeSweepResult(shard), 'r.json'), shard);
  const guestFloats = passedCell('odd-3llc', { workers: [{ cpu: 0, iterations: 12.5, cpuTimeNs: 1e9, policy: 7 }] });
  assert.ok(
    parseSweepResult(serializeSweepResult(sweepResult([guestFloats])), 'r.json'),
    'a value the host accepted from the guest reads back',
  );
});

test('refused: not JSON, not an object, another schema, another version', () => {
  refused('{"schema":', /shard-2\.json: not JSON/);
  refused('[]', /not a sweep result \(expected a JSON object, found an array\)/);
  refused('null', /found null/);
  refused(
    damaged((d) => {
      d.schema = 'ktstr/verifier';
    }),
    /shard-2\.json\.schema: not a sweep result \(schema is "ktstr\/verifier"/,
  );
  refused(
    damaged((d) => {
      delete d.schema;
    }),
    /\.schema: .*schema is missing/,
  );
  refused(
    damaged((d) => {
      d.version = 2;
    }),
    /shard-2\.json\.version: sweep result version 2; this ktstr-wasm reads version 1/,
  );
  refused(
    damaged((d) => {
      d.version = '1';
    }),
    /\.version: sweep result version "1"/,
  );
});

test('refused: damaged fields, each named by its path', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each case writes any field of the parsed JSON, with any value
  const cases: [(d: any) => void, RegExp][] = [
    [
      (d) => {
        d.wallMs = 'long';
      },
      /shard-2\.json\.wallMs: expected a number, found string "long"/,
    ],
    [
      (d) => {
        d.interrupted = 0;
      },
      /\.interrupted: expected true or false/,
    ],
    [
      (d) => {
        d.shard = { index: 3, count: 2 };
      },
      /\.shard: index 3 is not from 1 to count 2/,
    ],
    [
      (d) => {
        d.shard = { index: 1.5, count: 2 };
      },
      /\.shard\.index: expected a whole number/,
    ],
    [
      (d) => {
        d.matrix = 'all';
      },
      /\.matrix: expected an array, found string/,
    ],
    [
      (d) => {
        d.matrix[2] = 7;
      },
      /\.matrix\[2\]: expected a cell id string/,
    ],
    [
      (d) => {
        d.matrix[3] = d.matrix[0];
      },
      /\.matrix\[3\]: cell sweep\/scx-ktstr\/6\.12\.117-sched_ext\/tiny-1llc is listed twice/,
    ],
    [
      (d) => {
        d.cells = {};
      },
      /\.cells: expected an array, found an object/,
    ],
    [
      (d) => {
        d.cells[1] = 'x';
      },
      /\.cells\[1\]: expected an object/,
    ],
    [
      (d) => {
        delete d.cells[0].kernel;
      },
      /\.cells\[0\]\.kernel: expected a string, found missing/,
    ],
    [
      (d) => {
        d.cells[2].programs[1].verifiedInsns = null;
      },
      /\.cells\[2\]\.programs\[1\]\.verifiedInsns: expected a number, found null/,
    ],
    [
      (d) => {
        d.cells[2].programs[0].runCount = 'many';
      },
      /\.cells\[2\]\.programs\[0\]\.runCount: expected a number or null/,
    ],
    [
      (d) => {
        d.cells[0].guestPrograms[0] = [];
      },
      /\.cells\[0\]\.guestPrograms\[0\]: expected an object, found an array/,
    ],
    [
      (d) => {
        d.cells[3].workers[5].iterations = '5767';
      },
      /\.cells\[3\]\.workers\[5\]\.iterations: expected a number/,
    ],
    [
      (d) => {
        d.cells[0].phases.boot = 'slow';
      },
      /\.cells\[0\]\.phases\.boot: expected a number/,
    ],
    [
      (d) => {
        d.cells[0].phases = null;
      },
      /\.cells\[0\]\.phases: expected an object, found null/,
    ],
    [
      (d) => {
        d.cells[5].verifier.totalStates = '7';
      },
      /\.cells\[5\]\.verifier\.totalStates: expected a number or null/,
    ],
    [
      (d) => {
        d.cells[5].failure.kind = 'oops';
      },
      /\.cells\[5\]\.failure\.kind: expected one of verify, attach, dispatch, crash, guest, setup, topology, found string "oops"/,
    ],
    [
      (d) => {
        delete d.cells[5].failure;
      },
      /\.cells\[5\]\.failure: missing on a cell that failed/,
    ],
    [
      (d) => {
        d.cells[0].failure = { kind: 'verify', message: 'x' };
      },
      /\.cells\[0\]\.failure: present on a cell that passed/,
    ],
    [
      (d) => {
        d.cells[0].exitMessage = 3;
      },
      /\.cells\[0\]\.exitMessage: expected a string/,
    ],
    [
      (d) => {
        d.cells[0].hostRssBytes = '1G';
      },
      /\.cells\[0\]\.hostRssBytes: expected a number or null/,
    ],
    [
      (d) => {
        d.cells[0].topology = 'odd-3llc';
      },
      /\.cells\[0\]\.id: "sweep\/scx-ktstr\/6\.12\.117-sched_ext\/tiny-1llc" does not name its cell/,
    ],
    [
      (d) => {
        d.matrix = d.matrix.slice(1);
      },
      /\.cells\[0\]: cell .*tiny-1llc is not in its matrix/,
    ],
    [
      (d) => {
        d.cells[1] = d.cells[0];
      },
      /\.cells\[1\]: cell .*tiny-1llc is in the file twice/,
    ],
  ];
  for (const [damage, pattern] of cases) refused(damaged(damage), pattern);
});

test('fields a later version adds are ignored (no version bump for additions)', () => {
  const extended = damaged((d) => {
    d.host = 'ci-7';
    d.cells[0].gpu = null;
  });
  const r = parseSweepResult(extended, 'r.json');
  assert.is(r.cells.length, whole.cells.length);
  assert.is(r.cells[4].failure?.kind, 'setup');
});

test('docs/sweep-json.md names every field the writer writes', () => {
  const doc = readFileSync(repoPath('docs', 'sweep-json.md'), 'utf8');
  const stalled = passedCell('tiny-1llc', { passed: false, failure: { kind: 'dispatch', message: 'x' } });
  const keys = new Set<string>([
    ...Object.keys(whole),
    ...Object.keys({ index: 1, count: 1 }),
    ...[...whole.cells, stalled].flatMap((c) => [
      ...Object.keys(c),
      ...Object.keys(c.phases),
      ...Object.keys(c.failure ?? {}),
      ...Object.keys(c.verifier ?? {}),
      ...c.programs.flatMap((p) => Object.keys(p)),
      ...c.workers.flatMap((w) => Object.keys(w)),
    ]),
  ]);
  const undocumented = [...keys].filter((k) => !doc.includes(`\`${k}\``));
  assert.equal(undocumented, []);
  assert.match(doc, /\*\*Versioning\.\*\*/);
});

test.run();
