// The tests of a run as cells: each declared test x scheduler (its own option, or every
// --scheduler; `eevdf` means none) x kernel (its `kernels` option, or --kernel, or the
// default), with its topology, memory and timeout resolved. --filter keeps the tests whose
// "file › name" contains the text. Usage problems are MatrixErrors (exit 2); a cell that
// exists but cannot run keeps its setup problem and fails as `setup`.

import type { ResolveOptions } from '../kernel/resolve.js';
import type { Registry, SchedulerDecl } from '../scheduler/registry.js';
import { findBinary, kernelProblems, MatrixError, resolveKernels, type KernelInfo } from '../sweep/matrix.js';
import { defaultMemoryMiB, loadPresets, Topology, TopologyError } from '../vmm/topology/index.js';
import { topologyOf } from '../test-api/options.js';
import { toMs } from '../test-api/duration.js';
import type { CollectedTest } from './collect.js';
import { basename, join } from 'node:path';
import { existsSync } from 'node:fs';
import { findOnPath } from '../paths.js';
import { PAYLOAD_STAGE_ENV } from './payload-stage.js';

export const EEVDF = 'eevdf';
export const DEFAULT_DURATION_MS = 3000;
export const DEFAULT_TIMEOUT_MS = 180_000;

export interface TestCell {
  /** `test/<file>/<name>/<scheduler>/<kernel>/<topology>`. */
  id: string;
  test: CollectedTest;
  /** null: EEVDF. */
  scheduler: SchedulerDecl | null;
  binary: string | null;
  kernel: KernelInfo['kernel'];
  topologyName: string;
  topology: Topology;
  memoryMiB: number;
  durationMs: number;
  timeoutMs: number;
  /** Schedulers the body may switch to: registry name -> binary and arguments (those with a binary on this kernel). */
  switchable: Record<string, { binary: string; args: string[] }>;
  /** The payload's host binary and its arguments, files and cgroup (from the test's options). */
  payload?: {
    binary: string;
    args: string[];
    files: Record<string, string>;
    cgroup: string | null;
    libraryPath?: string;
  };
  setupProblem: string | null;
  /** Relative cost for sharding: vCPUs plus a boot's fixed part, scaled by the duration. */
  cost: number;
}

export interface TestMatrixRequest {
  tests: CollectedTest[];
  registry: Registry;
  /** --scheduler (repeatable; `eevdf` for none): overrides each test's own. */
  schedulers: string[];
  kernels: string[];
  filter?: string;
  resolveOptions?: ResolveOptions;
  /** Payload binaries staged by an outer run (test host): `<dir>/bin/<name>`, `<dir>/lib/`. */
  payloadStage?: string;
}

function topologyFor(t: CollectedTest): { name: string; topology: Topology; memoryMiB: number } {
  const o = topologyOf(t.options);
  try {
    if ('preset' in o) {
      const p = loadPresets().find((x) => x.name === o.preset);
      if (p === undefined) throw new MatrixError(`${t.fileName} › ${t.name}: unknown preset '${o.preset}'`);
      return { name: p.name, topology: new Topology(p.topology), memoryMiB: t.options.memory ?? p.memoryMiB };
    }
    const topology = new Topology(o.spec);
    const preset = loadPresets().find((x) => x.topology === topology.toString());
    return {
      name: preset?.name ?? topology.toString(),
      topology,
      memoryMiB: t.options.memory ?? defaultMemoryMiB(topology),
    };
  } catch (e) {
    if (e instanceof TopologyError) throw new MatrixError(`${t.fileName} › ${t.name}: ${e.message}`);
    throw e;
  }
}

const FILE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;

/** The payload of a test's options, its binary found on this machine; a string: why it cannot run. */
function payloadFor(t: CollectedTest, stage: string | undefined): TestCell['payload'] | string | undefined {
  const p = t.options.payload;
  if (p === undefined) return undefined;
  // staged by the outer run for the test host (src/test/payload-stage.ts): binary and libraries
  const staged = stage === undefined ? undefined : join(stage, 'bin', basename(p.cmd[0]));
  if (staged !== undefined && existsSync(staged))
    return {
      binary: staged,
      args: p.cmd.slice(1),
      files: { ...(p.files ?? {}) },
      cgroup: p.cgroup ?? null,
      libraryPath: join(stage!, 'lib'),
    };
  const binary = findOnPath(p.cmd[0]);
  if (binary === undefined)
    return `payload ${p.cmd[0]}: not found on this machine's PATH (e.g. apt-get install ${basename(p.cmd[0])})`;
  for (const name of Object.keys(p.files ?? {})) {
    if (!FILE_NAME_RE.test(name))
      throw new MatrixError(
        `${t.fileName} › ${t.name}: payload file name "${name}": a plain file name (it lands in the payload's directory in the guest)`,
      );
  }
  return { binary, args: p.cmd.slice(1), files: { ...(p.files ?? {}) }, cgroup: p.cgroup ?? null };
}

export function buildTestMatrix(req: TestMatrixRequest): TestCell[] {
  const byName = new Map(req.registry.schedulers.map((s) => [s.name, s]));
  const known = (n: string): void => {
    if (n !== EEVDF && !byName.has(n))
      throw new MatrixError(
        `unknown scheduler '${n}'; ${req.registry.path} declares: ${[...byName.keys()].join(', ')} (or ${EEVDF})`,
      );
  };
  for (const n of req.schedulers) known(n);
  const tests =
    req.filter === undefined ? req.tests : req.tests.filter((t) => `${t.fileName} › ${t.name}`.includes(req.filter!));
  if (tests.length === 0)
    throw new MatrixError(req.filter === undefined ? 'no tests declared' : `no test matches --filter '${req.filter}'`);
  const kernelCache = new Map<string, KernelInfo[]>();
  const kernelsFor = (specs: string[]): KernelInfo[] => {
    const key = specs.join('\0');
    let k = kernelCache.get(key);
    if (k === undefined) {
      k = resolveKernels(specs, req.resolveOptions ?? {});
      kernelCache.set(key, k);
    }
    return k;
  };
  const cells: TestCell[] = [];
  for (const t of tests) {
    const names = req.schedulers.length > 0 ? req.schedulers : [t.options.scheduler ?? EEVDF];
    for (const n of names) known(n);
    const topo = topologyFor(t);
    let durationMs: number;
    let timeoutMs: number;
    try {
      durationMs = t.options.duration === undefined ? DEFAULT_DURATION_MS : toMs(t.options.duration, 'duration');
      timeoutMs = t.options.timeout === undefined ? DEFAULT_TIMEOUT_MS : toMs(t.options.timeout, 'timeout');
    } catch (e) {
      throw new MatrixError(`${t.fileName} › ${t.name}: ${(e as Error).message}`);
    }
    const payload = payloadFor(t, req.payloadStage ?? process.env[PAYLOAD_STAGE_ENV]);
    const kernels = kernelsFor(req.kernels.length > 0 ? req.kernels : (t.options.kernels ?? []));
    for (const name of names) {
      const decl = name === EEVDF ? null : byName.get(name)!;
      for (const k of kernels) {
        const problems: string[] = [];
        let binary: string | null = null;
        if (decl !== null) {
          problems.push(...kernelProblems(k, topo));
          const b = findBinary(decl, k.kernel);
          binary = b.binary;
          if (b.problem !== null) problems.push(b.problem);
        }
        const switchable: TestCell['switchable'] = {};
        for (const s of req.registry.schedulers) {
          const b = findBinary(s, k.kernel);
          if (b.binary !== null && !s.fixture) switchable[s.name] = { binary: b.binary, args: s.args };
        }
        if (decl !== null && binary !== null) switchable[decl.name] = { binary, args: decl.args };
        const args = decl === null ? [] : [...decl.args, ...(t.options.args ?? [])];
        const scheduler = decl === null ? null : { ...decl, args };
        if (typeof payload === 'string') problems.push(payload);
        const setupProblem = problems.length === 0 ? null : problems.join('; ');
        cells.push({
          id: `test/${t.fileName}/${t.name}/${name}/${k.kernel.label}/${topo.name}`,
          test: t,
          scheduler,
          binary,
          kernel: k.kernel,
          topologyName: topo.name,
          topology: topo.topology,
          memoryMiB: topo.memoryMiB,
          durationMs,
          timeoutMs,
          switchable,
          setupProblem,
          ...(payload === undefined || typeof payload === 'string' ? {} : { payload }),
          cost: setupProblem === null ? topo.topology.numCpus + 4 + durationMs / 1000 : 0,
        });
      }
    }
  }
  return cells;
}
