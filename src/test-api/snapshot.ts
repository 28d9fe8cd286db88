// What ctx.capture() returns: the host's view of the guest at one moment, read from guest
// memory -- every CPU's runqueue, sched_ext's state, and the attached scheduler's maps and
// global variables rendered with their BTF -- as a typed view: `snap.var('nr_cpus')`,
// `snap.map('task_ctx').find((e) => e.get('tid') === pid)?.get('weight')`, dotted paths
// through nested structs. A path that does not exist throws an error naming the component
// that failed and the fields that do exist there.

export class SnapshotPathError extends Error {
  override name = 'SnapshotPathError';
}

import type { CapturedCpu, SnapshotData } from './capture.js';
export type { SnapshotData, CapturedCpu, CapturedMap } from './capture.js';

function describe(v: unknown): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  return typeof v;
}

/** Follows `path` (dot-separated; array indexes as numbers) from `root`, named `rootName` in errors. */
export function getPath(root: unknown, path: string, rootName: string): unknown {
  let cur = root;
  let where = rootName;
  for (const part of path.split('.')) {
    if (part === '') throw new SnapshotPathError(`${rootName}: empty component in path "${path}"`);
    if (Array.isArray(cur)) {
      const i = Number(part);
      if (!Number.isInteger(i) || i < 0 || i >= cur.length)
        throw new SnapshotPathError(`${where} has no element "${part}" (it is ${describe(cur)})`);
      cur = cur[i];
    } else if (typeof cur === 'object' && cur !== null) {
      const o = cur as Record<string, unknown>;
      if (!Object.prototype.hasOwnProperty.call(o, part))
        throw new SnapshotPathError(`${where} has no field "${part}" (fields: ${Object.keys(o).join(', ') || 'none'})`);
      cur = o[part];
    } else {
      throw new SnapshotPathError(`${where} is ${describe(cur)}, not a struct: cannot take "${part}"`);
    }
    where = `${where}.${part}`;
  }
  return cur;
}

/** One map entry: its key and value, with dotted-path access into the value (or the key with `key.`). */
export class MapEntry {
  constructor(
    readonly map: string,
    readonly key: unknown,
    readonly value: unknown,
  ) {}
  get(path: string): unknown {
    if (path === 'key') return this.key;
    if (path.startsWith('key.')) return getPath(this.key, path.slice(4), `${this.map}[key]`);
    return getPath(this.value, path, `${this.map}[value]`);
  }
}

export class MapView {
  readonly entries: MapEntry[];
  constructor(
    readonly name: string,
    readonly type: string,
    entries: { key: unknown; value: unknown }[],
  ) {
    this.entries = entries.map((e) => new MapEntry(name, e.key, e.value));
  }
  find(pred: (e: MapEntry) => boolean): MapEntry | undefined {
    return this.entries.find(pred);
  }
  filter(pred: (e: MapEntry) => boolean): MapEntry[] {
    return this.entries.filter(pred);
  }
  get size(): number {
    return this.entries.length;
  }
}

export class Snapshot {
  constructor(readonly data: SnapshotData) {}
  get label(): string {
    return this.data.label;
  }
  get cpus(): readonly CapturedCpu[] {
    return this.data.cpus;
  }
  /** A global variable of the attached scheduler (`nr_cpus`, `stats.dispatched`). */
  var(path: string): unknown {
    return getPath(this.data.globals, path, 'globals');
  }
  /** A map of the attached scheduler by name (the name libbpf gave it, e.g. `task_ctx`). */
  map(name: string): MapView {
    const m = this.data.maps.find((x) => x.name === name);
    if (m === undefined)
      throw new SnapshotPathError(
        `no map "${name}" in the capture (maps: ${this.data.maps.map((x) => x.name).join(', ') || 'none'})`,
      );
    return new MapView(m.name, m.type, m.entries);
  }
}
