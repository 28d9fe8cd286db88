// checkTestFacts: a test cell's facts come from the guest, which the host does not trust.
// A well-formed report is accepted as it is; every hostile variant (NaN, negative, fractional,
// huge arrays, wrong types, missing fields, over-long strings) is refused with the path of the
// first thing wrong, so the test fails with a reason instead of crashing the host.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkTestFacts } from '../../src/cell/test-facts-check.js';
import { RunBuilder } from './run-builder.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Good facts: two runs of real-looking records, logs, liveness, a latency summary. */
function good(): Obj {
  const r1 = new RunBuilder({
    phases: [
      ['start', 0],
      ['resize a to 0-1', 5000],
    ],
  })
    .workers('a', 2)
    .worker('b', { work: 'sleepy', wakeP99Ns: 200_000, stopPhase: 1 })
    .build() as unknown as Obj;
  r1.cpuStat = { busyMs: 100, idleMs: 5, stealMs: 0, windowMs: 10_000 };
  r1.cgroups[0].weight = 200;
  r1.cgroups[1].max = { quotaUs: 50_000, periodUs: 100_000 };
  const r2 = new RunBuilder().workers('c', 1).build() as unknown as Obj;
  r2.label = 'second';
  return {
    runs: [
      { record: r1, checks: null },
      { record: r2, checks: { gaps: false } },
    ],
    error: null,
    skipped: null,
    bodyMs: 20_123.5,
    logs: ['one', 'two'],
    stateAtEnd: 'enabled',
    schedulerAlive: true,
    detachedOnPurpose: false,
  };
}

/** checkTestFacts on good facts changed by `f`. */
const check = (f: (v: Obj) => void): unknown => {
  const v = good();
  f(v);
  return checkTestFacts(v);
};
const w0 = (v: Obj): Obj => v.runs[0].record.workers[0];

test('good facts are accepted and returned as they are', () => {
  const v = good();
  assert.is(checkTestFacts(v), v);
  // the optional fields may be absent; the nullable ones may be set
  for (const f of [
    (x: Obj) => {
      delete x.stateAtEnd;
      delete x.schedulerAlive;
      delete x.detachedOnPurpose;
    },
    (x: Obj) => {
      x.error = { message: 'boom', stack: 'Error: boom\n    at body (file:///t.ktstr.ts:3:1)' };
    },
    (x: Obj) => {
      x.skipped = 'needs 2 LLCs';
      x.runs = [];
    },
    (x: Obj) => {
      w0(x).nice = -20;
      w0(x).maxGapCpu = -1;
      w0(x).policy = -1;
      w0(x).error = 'sched_setattr: Invalid argument';
    },
    (x: Obj) => {
      x.runs[0].record.cpuStat = null;
      x.runs[0].record.cgroups[0].weight = null;
    },
    (x: Obj) => {
      x.logs = Array.from({ length: 1000 }, () => 'x'.repeat(4000));
    },
    (x: Obj) => {
      x.runs = Array.from({ length: 64 }, () => x.runs[1]);
    },
  ]) {
    const r = check(f);
    assert.type(r, 'object', String(f));
  }
});

test('not an object, or runs not a bounded array', () => {
  for (const v of [null, undefined, 3, 'facts', [], true])
    assert.is(checkTestFacts(v), 'test: not an object', String(v));
  assert.is(
    check((v) => {
      delete v.runs;
    }),
    'test.runs',
  );
  assert.is(
    check((v) => {
      v.runs = {};
    }),
    'test.runs',
  );
  assert.is(
    check((v) => {
      v.runs = Array.from({ length: 65 }, () => v.runs[1]);
    }),
    'test.runs',
  );
});

test("a run's checks and record: wrong types, NaN, negatives, long labels", () => {
  const cases: [(v: Obj) => void, string][] = [
    [
      (v) => {
        v.runs[1] = null;
      },
      'test.runs[1].checks',
    ],
    [
      (v) => {
        v.runs[0].checks = [];
      },
      'test.runs[0].checks',
    ],
    [
      (v) => {
        v.runs[0].checks = 'all';
      },
      'test.runs[0].checks',
    ],
    [
      (v) => {
        delete v.runs[0].checks;
      },
      'test.runs[0].checks',
    ],
    [
      (v) => {
        v.runs[0].record = null;
      },
      'test.runs[0].record.not an object',
    ],
    [
      (v) => {
        v.runs[0].record = [1];
      },
      'test.runs[0].record.not an object',
    ],
    [
      (v) => {
        v.runs[0].record.label = 'x'.repeat(201);
      },
      'test.runs[0].record.label/durationMs/spawnMs',
    ],
    [
      (v) => {
        v.runs[0].record.label = 7;
      },
      'test.runs[0].record.label/durationMs/spawnMs',
    ],
    [
      (v) => {
        v.runs[0].record.durationMs = NaN;
      },
      'test.runs[0].record.label/durationMs/spawnMs',
    ],
    [
      (v) => {
        v.runs[1].record.durationMs = -1;
      },
      'test.runs[1].record.label/durationMs/spawnMs',
    ],
    [
      (v) => {
        v.runs[0].record.spawnMs = Infinity;
      },
      'test.runs[0].record.label/durationMs/spawnMs',
    ],
    [
      (v) => {
        v.runs[0].record.spawnMs = '40';
      },
      'test.runs[0].record.label/durationMs/spawnMs',
    ],
    [
      (v) => {
        v.runs[0].record.cpus = [0, -1];
      },
      'test.runs[0].record.cpus',
    ],
    [
      (v) => {
        v.runs[0].record.cpus = [4096];
      },
      'test.runs[0].record.cpus',
    ],
    [
      (v) => {
        v.runs[0].record.cpus = [0.5];
      },
      'test.runs[0].record.cpus',
    ],
    [
      (v) => {
        v.runs[0].record.cpus = Array.from({ length: 4097 }, () => 0);
      },
      'test.runs[0].record.cpus',
    ],
    [
      (v) => {
        v.runs[0].record.cpuStat = { busyMs: NaN, idleMs: 0, stealMs: 0, windowMs: 1 };
      },
      'test.runs[0].record.cpuStat',
    ],
    [
      (v) => {
        v.runs[0].record.cpuStat = { busyMs: 1, idleMs: 0, stealMs: -5, windowMs: 1 };
      },
      'test.runs[0].record.cpuStat',
    ],
    [
      (v) => {
        delete v.runs[0].record.cpuStat;
      },
      'test.runs[0].record.cpuStat',
    ],
    [
      (v) => {
        v.runs[0].record.phases[1].label = 'x'.repeat(2001);
      },
      'test.runs[0].record.phases',
    ],
    [
      (v) => {
        v.runs[0].record.phases[0].atMs = -1;
      },
      'test.runs[0].record.phases',
    ],
    [
      (v) => {
        v.runs[0].record.phases[0].phase = 1.5;
      },
      'test.runs[0].record.phases',
    ],
    [
      (v) => {
        v.runs[0].record.phases = Array.from({ length: 1025 }, (_, i) => ({ phase: i + 1, label: 'p', atMs: i }));
      },
      'test.runs[0].record.phases',
    ],
    [
      (v) => {
        v.runs[0].record.cgroups[0].weight = 1.5;
      },
      'test.runs[0].record.cgroups',
    ],
    [
      (v) => {
        v.runs[0].record.cgroups[0].name = 'x'.repeat(301);
      },
      'test.runs[0].record.cgroups',
    ],
    [
      (v) => {
        v.runs[0].record.cgroups[1].max = { quotaUs: -1, periodUs: 100_000 };
      },
      'test.runs[0].record.cgroups',
    ],
    [
      (v) => {
        v.runs[0].record.cgroups[1].max = 'max';
      },
      'test.runs[0].record.cgroups',
    ],
    [
      (v) => {
        v.runs[0].record.cgroups[0].workers = ['0'];
      },
      'test.runs[0].record.cgroups',
    ],
    [
      (v) => {
        delete v.runs[0].record.cgroups[0].weight;
      },
      'test.runs[0].record.cgroups',
    ],
    [
      (v) => {
        v.runs[0].record.workers = {};
      },
      'test.runs[0].record.workers',
    ],
    [
      (v) => {
        v.runs[0].record.workers = Array.from({ length: 8193 }, () => null);
      },
      'test.runs[0].record.workers',
    ],
  ];
  for (const [f, path] of cases) assert.is(check(f), path, path + ' ' + String(f));
});

test("a worker report: each bad field named, with the worker's position", () => {
  const W = 'test.runs[0].record.workers[0].';
  const cases: [(w: Obj) => void, string][] = [
    [
      (w) => {
        w.index = -1;
      },
      'index',
    ],
    [
      (w) => {
        w.pid = 2 ** 53;
      },
      'pid',
    ],
    [
      (w) => {
        w.iterations = NaN;
      },
      'iterations',
    ],
    [
      (w) => {
        w.cpuTimeNs = 1.5;
      },
      'cpuTimeNs',
    ],
    [
      (w) => {
        w.wallNs = '1';
      },
      'wallNs',
    ],
    [
      (w) => {
        delete w.migrations;
      },
      'migrations',
    ],
    [
      (w) => {
        w.voluntarySwitches = -3;
      },
      'voluntarySwitches',
    ],
    [
      (w) => {
        w.maxGapNs = Infinity;
      },
      'maxGapNs',
    ],
    [
      (w) => {
        w.wakeups = null;
      },
      'wakeups',
    ],
    [
      (w) => {
        w.startPhase = -1;
      },
      'startPhase',
    ],
    [
      (w) => {
        w.nice = 21;
      },
      'nice',
    ],
    [
      (w) => {
        w.nice = -21;
      },
      'nice',
    ],
    [
      (w) => {
        w.nice = 0.5;
      },
      'nice',
    ],
    [
      (w) => {
        w.policy = 7.5;
      },
      'policy',
    ],
    [
      (w) => {
        w.policy = '7';
      },
      'policy',
    ],
    [
      (w) => {
        w.maxGapCpu = -2;
      },
      'maxGapCpu',
    ],
    [
      (w) => {
        w.maxGapCpu = 4096;
      },
      'maxGapCpu',
    ],
    [
      (w) => {
        w.cgroup = 'x'.repeat(301);
      },
      'cgroup/work',
    ],
    [
      (w) => {
        w.work = 42;
      },
      'cgroup/work',
    ],
    [
      (w) => {
        w.work = 'x'.repeat(21);
      },
      'cgroup/work',
    ],
    [
      (w) => {
        w.stopPhase = -1;
      },
      'stopPhase',
    ],
    [
      (w) => {
        delete w.stopPhase;
      },
      'stopPhase',
    ],
    [
      (w) => {
        w.error = 'e'.repeat(2001);
      },
      'error',
    ],
    [
      (w) => {
        w.error = { message: 'x' };
      },
      'error',
    ],
    [
      (w) => {
        w.cpus = [{ cpu: 4096, ns: 1 }];
      },
      'cpus',
    ],
    [
      (w) => {
        w.cpus = [{ cpu: 0, ns: -1 }];
      },
      'cpus',
    ],
    [
      (w) => {
        w.cpus = [{ cpu: 0 }];
      },
      'cpus',
    ],
    [
      (w) => {
        w.cpus = [null];
      },
      'cpus',
    ],
    [
      (w) => {
        w.cpus = Array.from({ length: 4097 }, () => ({ cpu: 0, ns: 0 }));
      },
      'cpus',
    ],
    [
      (w) => {
        w.phases = [{ phase: 1, iterations: NaN, cpus: [] }];
      },
      'phases',
    ],
    [
      (w) => {
        w.phases = [{ phase: 1, iterations: 1, cpus: [{ cpu: -1, ns: 0 }] }];
      },
      'phases',
    ],
    [
      (w) => {
        w.phases = Array.from({ length: 1025 }, () => ({ phase: 1, iterations: 0, cpus: [] }));
      },
      'phases',
    ],
    [
      (w) => {
        w.allowed = [{ phase: 1, cpus: [0, 4096] }];
      },
      'allowed',
    ],
    [
      (w) => {
        w.allowed = [{ phase: 1 }];
      },
      'allowed',
    ],
    [
      (w) => {
        w.allowed = null;
      },
      'allowed',
    ],
    [
      (w) => {
        w.wakeLatencyNs = { samples: 1, p50: -1, p99: 1, max: 1 };
      },
      'wakeLatencyNs',
    ],
    [
      (w) => {
        w.wakeLatencyNs = { samples: 1, p50: 1, p99: 1 };
      },
      'wakeLatencyNs',
    ],
    [
      (w) => {
        w.wakeLatencyNs = 5;
      },
      'wakeLatencyNs',
    ],
  ];
  for (const [f, field] of cases)
    assert.is(
      check((v) => f(w0(v))),
      W + field,
      field + ' ' + String(f),
    );
  assert.is(
    check((v) => {
      v.runs[0].record.workers[2] = 'w';
    }),
    'test.runs[0].record.workers[2].not an object',
  );
  assert.is(
    check((v) => {
      v.runs[0].record.workers[2].pid = -1;
    }),
    'test.runs[0].record.workers[2].pid',
  );
  assert.is(
    check((v) => {
      v.runs[1].record.workers[0].iterations = -1;
    }),
    'test.runs[1].record.workers[0].iterations',
  );
});

test("the body's error, skip reason, time, logs and liveness fields", () => {
  const cases: [(v: Obj) => void, string][] = [
    [
      (v) => {
        v.error = 'boom';
      },
      'test.error',
    ],
    [
      (v) => {
        v.error = { message: 1, stack: '' };
      },
      'test.error',
    ],
    [
      (v) => {
        v.error = { message: 'm' };
      },
      'test.error',
    ],
    [
      (v) => {
        v.error = { message: 'm'.repeat(16385), stack: '' };
      },
      'test.error',
    ],
    [
      (v) => {
        v.error = { message: 'm', stack: 's'.repeat(65537) };
      },
      'test.error',
    ],
    [
      (v) => {
        delete v.error;
      },
      'test.error',
    ],
    [
      (v) => {
        v.skipped = true;
      },
      'test.skipped',
    ],
    [
      (v) => {
        v.skipped = 'x'.repeat(2001);
      },
      'test.skipped',
    ],
    [
      (v) => {
        delete v.skipped;
      },
      'test.skipped',
    ],
    [
      (v) => {
        v.bodyMs = NaN;
      },
      'test.bodyMs',
    ],
    [
      (v) => {
        v.bodyMs = -1;
      },
      'test.bodyMs',
    ],
    [
      (v) => {
        delete v.bodyMs;
      },
      'test.bodyMs',
    ],
    [
      (v) => {
        v.logs = 'log';
      },
      'test.logs',
    ],
    [
      (v) => {
        v.logs = [1];
      },
      'test.logs',
    ],
    [
      (v) => {
        v.logs = ['x'.repeat(4001)];
      },
      'test.logs',
    ],
    [
      (v) => {
        v.logs = Array.from({ length: 1001 }, () => '');
      },
      'test.logs',
    ],
    [
      (v) => {
        delete v.logs;
      },
      'test.logs',
    ],
    [
      (v) => {
        v.stateAtEnd = 'x'.repeat(41);
      },
      'test.stateAtEnd',
    ],
    [
      (v) => {
        v.stateAtEnd = null;
      },
      'test.stateAtEnd',
    ],
    [
      (v) => {
        v.schedulerAlive = 'yes';
      },
      'test.schedulerAlive',
    ],
    [
      (v) => {
        v.schedulerAlive = null;
      },
      'test.schedulerAlive',
    ],
    [
      (v) => {
        v.detachedOnPurpose = 1;
      },
      'test.detachedOnPurpose',
    ],
  ];
  for (const [f, path] of cases) assert.is(check(f), path, path + ' ' + String(f));
});

test('the first problem is the one named (runs before the error, workers in order)', () => {
  assert.is(
    check((v) => {
      v.bodyMs = NaN;
      v.runs[1].record.cpus = [-1];
    }),
    'test.runs[1].record.cpus',
  );
  assert.is(
    check((v) => {
      v.runs[0].record.workers[1].pid = -1;
      v.runs[0].record.workers[2].pid = -1;
    }),
    'test.runs[0].record.workers[1].pid',
  );
  // JSON-parsed hostile input (what the host actually receives) is judged the same
  const text = JSON.stringify(good()).replace('"bodyMs":20123.5', '"bodyMs":1e400');
  assert.is(checkTestFacts(JSON.parse(text)), 'test.bodyMs');
});

test.run();
