// Where snapshots live: one directory per key under a root (the kernel cache's snapshots/),
// holding `ram` (ram-file.ts), `state` (state-file.ts) and `key.json`. An entry appears only
// whole: it is written in a staging directory `.tmp-<pid>-<n>` beside it and renamed into
// place, so a save killed half-way leaves no entry, only a staging directory the next saver
// removes. Savers of one root are serialised by a lock file (O_EXCL, holding the owner's pid;
// a lock whose process is gone is stale; threads of one process wait on each other's lock too).
// A save keeps the `keep` most recently used entries and removes older ones. An entry that fails its checks on open (state
// checksum, RAM file size, key) is removed and reported as damaged, so the caller rebuilds it.

import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { KtstrError } from '../../errors.js';
import { pidAlive, tryLockFile } from '../../lock-file.js';
import { decodeState, type StateValue } from './state-file.js';

/** What a snapshot was taken of: a restored VM is only ever this machine (kernel, topology, memory, agent, command line). */
export type SnapshotKey = Readonly<Record<string, string | number>>;

export const RAM_FILE = 'ram';
export const STATE_FILE = 'state';
export const KEY_FILE = 'key.json';
const LOCK_FILE = '.lock';
const STAGING_PREFIX = '.tmp-';

export class SnapshotStoreError extends KtstrError {}

/** The key's entry name: SHA-256 of its fields in name order, 20 hex digits. */
export function snapshotId(key: SnapshotKey): string {
  const canonical = JSON.stringify(
    Object.keys(key)
      .sort()
      .map((k) => [k, key[k]]),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 20);
}

/** A whole snapshot on disk, its state read and checked. */
export interface StoredSnapshot {
  id: string;
  dir: string;
  ramPath: string;
  state: StateValue;
  key: SnapshotKey;
  /** The RAM file's length and the disk it takes (sparse: holes cost nothing). */
  ramBytes: number;
  diskBytes: number;
}

export type OpenResult =
  | { kind: 'ok'; snapshot: StoredSnapshot }
  | { kind: 'missing' }
  /** The entry was unusable and has been removed: why. */
  | { kind: 'damaged'; reason: string };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class SnapshotStore {
  /** `keep`: how many entries a save leaves (the most recently used; a VM still running from a removed one keeps its mapping). */
  constructor(
    readonly root: string,
    readonly keep = 3,
  ) {}

  dir(key: SnapshotKey): string {
    return join(this.root, snapshotId(key));
  }

  /**
   * The snapshot of `key`, checked: its key file names this key, its state's checksum holds
   * and the RAM file has `ramBytes` bytes. A failing entry is removed ('damaged', with why).
   */
  open(key: SnapshotKey, ramBytes: number): OpenResult {
    const id = snapshotId(key);
    const dir = join(this.root, id);
    if (!existsSync(dir)) return { kind: 'missing' };
    const damaged = (reason: string): OpenResult => {
      this.removeDir(dir);
      return { kind: 'damaged', reason };
    };
    try {
      const stored = JSON.parse(readFileSync(join(dir, KEY_FILE), 'utf8')) as SnapshotKey;
      if (snapshotId(stored) !== id || JSON.stringify(stored) !== JSON.stringify(key)) {
        return damaged('its key file names another machine');
      }
      const ramPath = join(dir, RAM_FILE);
      const st = statSync(ramPath);
      if (st.size !== ramBytes) return damaged(`its RAM file is ${st.size} bytes, ${ramBytes} expected (truncated?)`);
      const state = decodeState(readFileSync(join(dir, STATE_FILE), 'utf8'));
      const now = new Date();
      utimesSync(join(dir, KEY_FILE), now, now); // used: the last to be pruned
      return { kind: 'ok', snapshot: { id, dir, ramPath, state, key, ramBytes: st.size, diskBytes: st.blocks * 512 } };
    } catch (e) {
      return damaged((e as Error).message);
    }
  }

  /**
   * Saves the snapshot of `key` unless one is already there: takes the lock (waiting up to
   * `waitMs` for another saver), then `write(staging)` fills a fresh staging directory with
   * RAM_FILE and STATE_FILE, and it is renamed into place with KEY_FILE. Returns false when
   * another saver had already made it. Nothing is left behind when `write` throws.
   */
  async save(key: SnapshotKey, write: (staging: string) => Promise<void> | void, waitMs = 120_000): Promise<boolean> {
    mkdirSync(this.root, { recursive: true });
    const release = await this.lock(waitMs);
    try {
      const target = this.dir(key);
      if (existsSync(target)) return false;
      const staging = join(this.root, `${STAGING_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
      mkdirSync(staging);
      try {
        await write(staging);
        for (const f of [RAM_FILE, STATE_FILE]) {
          if (!existsSync(join(staging, f))) throw new SnapshotStoreError(`snapshot save wrote no ${f}`);
        }
        writeFileSync(join(staging, KEY_FILE), JSON.stringify(key));
        renameSync(staging, target);
        this.prune(target);
        return true;
      } catch (e) {
        this.removeDir(staging);
        throw e;
      }
    } finally {
      release();
    }
  }

  /** Every whole entry: its id, key and disk use (for `kernel list`). */
  list(): { id: string; key: SnapshotKey | null; diskBytes: number }[] {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return [];
    }
    return names
      .filter((n) => !n.startsWith('.'))
      .map((id) => {
        let key: SnapshotKey | null = null;
        try {
          key = JSON.parse(readFileSync(join(this.root, id, KEY_FILE), 'utf8')) as SnapshotKey;
        } catch {
          /* a foreign directory */
        }
        let diskBytes = 0;
        for (const f of [RAM_FILE, STATE_FILE, KEY_FILE]) {
          try {
            diskBytes += statSync(join(this.root, id, f)).blocks * 512;
          } catch {
            /* missing */
          }
        }
        return { id, key, diskBytes };
      });
  }

  /** Removes the entry of `key` (a no-op when there is none). */
  remove(key: SnapshotKey): void {
    this.removeDir(this.dir(key));
  }

  /** Removes the entry named `id` (as list() gives it). */
  removeEntry(id: string): void {
    if (!/^[0-9a-f]{20}$/.test(id)) throw new SnapshotStoreError(`not a snapshot id: ${id}`);
    this.removeDir(join(this.root, id));
  }

  /** Removes the least recently used entries beyond `keep` (never `spare`). */
  private prune(spare: string): void {
    const entries = readdirSync(this.root)
      .filter((n) => !n.startsWith('.'))
      .map((n) => join(this.root, n))
      .filter((d) => d !== spare)
      .map((d) => ({ d, t: statSync(join(d, KEY_FILE), { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
      .sort((a, b) => b.t - a.t);
    for (const e of entries.slice(Math.max(0, this.keep - 1))) this.removeDir(e.d);
  }

  private removeDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
  }

  /** Takes the root's lock: breaks a stale one (and its owner's staging directories), waits for a live one. */
  private async lock(waitMs: number): Promise<() => void> {
    const path = join(this.root, LOCK_FILE);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const lock = tryLockFile(path);
      if (lock.taken) {
        this.removeStaleStaging();
        return lock.release;
      }
      if (Date.now() > deadline) {
        throw new SnapshotStoreError(
          `the snapshot store ${this.root} is locked by process ${lock.owner}; wait for it or stop it (the same process: another of its threads is saving)`,
        );
      }
      await sleep(100);
    }
  }

  /** Staging directories of processes that are gone (a save killed half-way). */
  private removeStaleStaging(): void {
    for (const n of readdirSync(this.root)) {
      if (!n.startsWith(STAGING_PREFIX)) continue;
      const pid = Number(n.slice(STAGING_PREFIX.length).split('-')[0]);
      if (pid !== process.pid && !pidAlive(pid)) this.removeDir(join(this.root, n));
    }
  }
}
