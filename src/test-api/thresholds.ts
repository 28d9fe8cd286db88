// The thresholds of the checks: every field with its default, and the merge of the three
// layers a test is judged with (library defaults <- the scheduler's registry entry <- the
// test itself; the last layer that sets a field wins). Layers come from configuration files
// and test code, so each is validated field by field: an unknown key, a negative or
// non-finite number or a wrong type throws an Error that names the key path. The checks
// (src/test/checks) judge with them; they sit in the test API because a test's options
// (CheckOverrides) override them.

export interface Thresholds {
  /** Phases shorter than this are not judged on their own by starvation (fair share) and fairness (spread, weights); ms. Default 500. */
  minPhaseMs: number;
  starvation: {
    /** Default true. */
    enabled: boolean;
    /** A CPU-bound worker fails when its CPU time in a phase is below this fraction of its fair share (0..1). Default 0.1. */
    minShare: number;
  };
  gaps: {
    /** Default true. */
    enabled: boolean;
    /** Longest off-CPU gap while runnable a worker may see; ms. Default 2000. */
    maxGapMs: number;
  };
  fairness: {
    /** Default true. */
    enabled: boolean;
    /** Largest (max-min)/max of CPU time among comparable workers of a cgroup, or among comparable cgroups of equal weight; percent. Default 15. */
    maxSpreadPct: number;
    /** Cgroups of unequal cpu.weight on the same CPUs: largest relative deviation of a cgroup's share of CPU time from its share by weight (0.25 = 25 %). Default 0.25. */
    weightTolerance: number;
  };
  isolation: {
    /** Every CPU a worker had time on in a phase must be in its allowed set for that phase. Default true. */
    enabled: boolean;
  };
  benchmark: {
    /** Opt-in. Default false. */
    enabled: boolean;
    /** Lowest iterations per second of wall time per worker; undefined: not judged. Default undefined. */
    minIterationsPerSec?: number;
    /** Highest p99 wake-up latency per worker (work types with wake-ups); µs; undefined: not judged. Default undefined. */
    maxWakeP99Us?: number;
    /** Highest coefficient of variation of the iteration rate across a cgroup's workers of one work type; percent; undefined: not judged. Default undefined. */
    maxCvPct?: number;
  };
  migration: {
    /** Opt-in. Default false. */
    enabled: boolean;
    /** Highest migrations per iteration per worker. Default 0.05. */
    maxMigrationRatio: number;
  };
  liveness: {
    /** The sched_ext scheduler must still be attached at the end. Default true. */
    enabled: boolean;
  };
  stall: {
    /** Judged from the host monitor's samples. Default true. */
    enabled: boolean;
    /** Longest a task may wait on a CPU's sched_ext runnable list without running; ms. Default 2000. */
    maxRunnableMs: number;
  };
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type ThresholdOverrides = DeepPartial<Thresholds>;

export const DEFAULT_THRESHOLDS: Thresholds = Object.freeze({
  minPhaseMs: 500,
  starvation: Object.freeze({ enabled: true, minShare: 0.1 }),
  gaps: Object.freeze({ enabled: true, maxGapMs: 2000 }),
  fairness: Object.freeze({ enabled: true, maxSpreadPct: 15, weightTolerance: 0.25 }),
  isolation: Object.freeze({ enabled: true }),
  benchmark: Object.freeze({ enabled: false }),
  migration: Object.freeze({ enabled: false, maxMigrationRatio: 0.05 }),
  liveness: Object.freeze({ enabled: true }),
  stall: Object.freeze({ enabled: true, maxRunnableMs: 2000 }),
}) as Thresholds;

/** What a field holds: a flag, a number >= 0, a fraction 0..1, or a number >= 0 that may be left unset. */
type Kind = 'flag' | 'number' | 'fraction' | 'bound';

const SECTIONS: Record<string, Record<string, Kind>> = {
  starvation: { enabled: 'flag', minShare: 'fraction' },
  gaps: { enabled: 'flag', maxGapMs: 'number' },
  fairness: { enabled: 'flag', maxSpreadPct: 'number', weightTolerance: 'number' },
  isolation: { enabled: 'flag' },
  benchmark: { enabled: 'flag', minIterationsPerSec: 'bound', maxWakeP99Us: 'bound', maxCvPct: 'bound' },
  migration: { enabled: 'flag', maxMigrationRatio: 'number' },
  liveness: { enabled: 'flag' },
  stall: { enabled: 'flag', maxRunnableMs: 'number' },
};
const TOP: Record<string, Kind> = { minPhaseMs: 'number' };

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const shown = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

function checkValue(path: string, kind: Kind, v: unknown, n: number): void {
  if (kind === 'flag') {
    if (typeof v !== 'boolean')
      throw new Error(`threshold ${path} must be true or false (got ${shown(v)}, layer ${n})`);
    return;
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new Error(`threshold ${path} must be a finite number >= 0 (got ${shown(v)}, layer ${n})`);
  }
  if (kind === 'fraction' && v > 1) throw new Error(`threshold ${path} must be from 0 to 1 (got ${v}, layer ${n})`);
}

/** Throws when a layer has an unknown key or a bad value; `undefined` values mean "not set here". */
function validateLayer(layer: unknown, n: number): asserts layer is ThresholdOverrides {
  if (!isPlainObject(layer))
    throw new Error(
      `thresholds layer ${n} must be an object (got ${Array.isArray(layer) ? 'an array' : shown(layer)})`,
    );
  for (const key of Object.keys(layer)) {
    const v = layer[key];
    if (v === undefined) continue;
    if (has(TOP, key)) {
      checkValue(key, TOP[key], v, n);
      continue;
    }
    if (!has(SECTIONS, key)) throw new Error(`threshold ${key}: unknown key (layer ${n})`);
    if (!isPlainObject(v)) throw new Error(`threshold ${key} must be an object (got ${shown(v)}, layer ${n})`);
    const fields = SECTIONS[key];
    for (const f of Object.keys(v)) {
      if (!has(fields, f)) throw new Error(`threshold ${key}.${f}: unknown key (layer ${n})`);
      if (v[f] === undefined) continue;
      checkValue(`${key}.${f}`, fields[f], v[f], n);
    }
  }
}

/**
 * The thresholds of one test: DEFAULT_THRESHOLDS overlaid by each layer in order (typically the
 * scheduler's registry entry, then the test's own); a field a layer leaves undefined is
 * inherited. Throws an Error naming the key path on an unknown key or a bad value.
 */
export function mergeThresholds(...layers: (ThresholdOverrides | undefined)[]): Thresholds {
  const out: Record<string, unknown> = { minPhaseMs: DEFAULT_THRESHOLDS.minPhaseMs };
  for (const s of Object.keys(SECTIONS)) out[s] = { ...(DEFAULT_THRESHOLDS as unknown as Record<string, object>)[s] };
  layers.forEach((layer, i) => {
    if (layer === undefined) return;
    validateLayer(layer, i + 1);
    const l = layer as Record<string, unknown>;
    for (const key of Object.keys(l)) {
      const v = l[key];
      if (v === undefined) continue;
      if (has(TOP, key)) {
        out[key] = v;
        continue;
      }
      const section = out[key] as Record<string, unknown>;
      for (const [f, fv] of Object.entries(v as Record<string, unknown>)) if (fv !== undefined) section[f] = fv;
    }
  });
  return out as unknown as Thresholds;
}
