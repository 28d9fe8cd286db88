// The agent's facts arrive from the guest, which the host does not trust: a damaged or hostile
// agent could send anything that parses as JSON. checkFacts() accepts only the shape the
// verdict reads (types, array lengths, finite numbers), so a bad report fails its cell with
// a reason instead of throwing in the host. factsFromRegion() reads a report the agent left in
// the shared region, its record checked before a byte of it is used.

import type { AgentFacts } from '../guest/plan.js';
import { readRecord, type BulkRecord } from '../guest/ring.js';
import type { LiveVm } from '../vmm/index.js';

const MAX_WORKERS = 4096;
const MAX_PROGRAMS = 65536;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const numOrNull = (v: unknown): boolean => v === null || num(v);
const str = (v: unknown): boolean => typeof v === 'string';
const end = (v: unknown): boolean =>
  v === null || (isObj(v) && numOrNull(v.code) && (v.signal === null || str(v.signal)));

/** The facts, or why they are not acceptable. */
export function checkFacts(v: unknown): AgentFacts | string {
  if (!isObj(v)) return 'not an object';
  if (typeof v.schedExt !== 'boolean') return 'schedExt';
  if (!(v.setupError === null || str(v.setupError))) return 'setupError';
  for (const k of ['verifyMs', 'attachMs']) if (!numOrNull(v[k])) return k;
  for (const k of ['stateAtAttach', 'ops', 'output']) if (!str(v[k])) return k;
  if (!num(v.outputDropped)) return 'outputDropped';
  if (!end(v.endedBeforeAttach)) return 'endedBeforeAttach';
  if (v.probe !== null) {
    const p = v.probe;
    if (
      !isObj(p) ||
      !Array.isArray(p.workers) ||
      p.workers.length > MAX_WORKERS ||
      !num(p.ms) ||
      !str(p.stateAfter) ||
      typeof p.schedulerAlive !== 'boolean'
    )
      return 'probe';
    if (
      !p.workers.every(
        (w) =>
          isObj(w) &&
          num(w.cpu) &&
          num(w.iterations) &&
          num(w.cpuTimeNs) &&
          num(w.policy) &&
          (w.tid === undefined || num(w.tid)),
      )
    )
      return 'probe.workers';
  }
  if (v.stop !== null) {
    const s = v.stop;
    if (!isObj(s) || !end(s.end) || typeof s.timedOut !== 'boolean' || !str(s.stateAfter) || !num(s.ms)) return 'stop';
  }
  if (!Array.isArray(v.guestPrograms) || v.guestPrograms.length > MAX_PROGRAMS) return 'guestPrograms';
  if (
    !v.guestPrograms.every(
      (p) =>
        isObj(p) && num(p.id) && str(p.name) && num(p.verifiedInsns) && numOrNull(p.runCount) && numOrNull(p.runTimeNs),
    )
  )
    return 'guestPrograms[]';
  return v as unknown as AgentFacts;
}

/**
 * The facts the agent wrote into the shared region as JSON (`record`: where, as its `result`
 * message says), not yet checked (checkFacts), or why they cannot be read: the record is checked (its fields, bounds and
 * CRC) before a byte of it is used.
 */
export function factsFromRegion(
  live: Pick<LiveVm, 'memory' | 'sharedRegion'> | undefined,
  record: unknown,
): { value: unknown } | string {
  const r = record as Record<string, unknown> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.key !== 'string' ||
    !Number.isSafeInteger(r.offset) ||
    !Number.isSafeInteger(r.length) ||
    !Number.isSafeInteger(r.crc)
  )
    return 'its record is malformed';
  const region = live?.sharedRegion;
  if (live === undefined || !region) return 'no shared region';
  try {
    const bytes = readRecord(live.memory.slice(region.guestPhysAddr, region.size), r as unknown as BulkRecord);
    return { value: JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown };
  } catch (e) {
    return `its record is unreadable: ${e instanceof Error ? e.message : String(e)}`;
  }
}
