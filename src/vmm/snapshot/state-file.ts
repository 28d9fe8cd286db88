// A snapshot's machine state as one JSON file: the vCPUs' and the VM's KVM state, the
// devices' state and the layout of guest RAM, with its SHA-256 so a damaged or hand-edited
// file is caught before any of it reaches KVM. Byte blobs (KVM structs as KVM filled them)
// are base64, 64-bit values decimal strings, each tagged so they come back as what they were.

import { createHash } from 'node:crypto';
import { KtstrError } from '../../errors.js';

/** The file's format; a file of another format is not read. */
export const STATE_FORMAT = 1;

/** A state value: plain data, KVM blobs and 64-bit integers included. */
export type StateValue =
  | null
  | boolean
  | number
  | string
  | bigint
  | Uint8Array
  | readonly StateValue[]
  | { readonly [key: string]: StateValue };

/** A state file that cannot be used (damaged, another format): the snapshot is rebuilt. */
export class SnapshotStateError extends KtstrError {}

const BYTES_TAG = '$bytes';
const BIGINT_TAG = '$bigint';

function toJson(v: StateValue): unknown {
  if (v instanceof Uint8Array)
    return { [BYTES_TAG]: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (typeof v === 'bigint') return { [BIGINT_TAG]: v.toString() };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, StateValue>).map(([k, x]) => [k, toJson(x)]));
  }
  if (typeof v === 'number' && !Number.isFinite(v)) throw new SnapshotStateError(`a state number is ${v}`);
  return v;
}

function fromJson(v: unknown, depth = 0): StateValue {
  if (depth > 32) throw new SnapshotStateError('snapshot state nests too deep');
  if (Array.isArray(v)) return v.map((x) => fromJson(x, depth + 1));
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === BYTES_TAG && typeof o[BYTES_TAG] === 'string') {
      return new Uint8Array(Buffer.from(o[BYTES_TAG], 'base64'));
    }
    if (keys.length === 1 && keys[0] === BIGINT_TAG && typeof o[BIGINT_TAG] === 'string') {
      if (!/^-?\d{1,20}$/.test(o[BIGINT_TAG])) throw new SnapshotStateError(`bad 64-bit value ${o[BIGINT_TAG]}`);
      return BigInt(o[BIGINT_TAG]);
    }
    return Object.fromEntries(keys.map((k) => [k, fromJson(o[k], depth + 1)]));
  }
  return v as StateValue;
}

/** The state file's text: format, checksum of the body, body. */
export function encodeState(state: StateValue): string {
  const body = JSON.stringify(toJson(state));
  const sha256 = createHash('sha256').update(body).digest('hex');
  return `${JSON.stringify({ format: STATE_FORMAT, sha256 })}\n${body}\n`;
}

/** The state back from encodeState's text; throws SnapshotStateError when the file is damaged or of another format. */
export function decodeState(text: string): StateValue {
  const newline = text.indexOf('\n');
  if (newline < 0) throw new SnapshotStateError('snapshot state file has no header line');
  let header: { format?: unknown; sha256?: unknown };
  try {
    header = JSON.parse(text.slice(0, newline)) as typeof header;
  } catch {
    throw new SnapshotStateError('snapshot state header is not JSON');
  }
  if (header.format !== STATE_FORMAT) {
    throw new SnapshotStateError(`snapshot state format ${String(header.format)}, this version reads ${STATE_FORMAT}`);
  }
  const body = text.slice(newline + 1).replace(/\n$/, '');
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (sha256 !== header.sha256) throw new SnapshotStateError('snapshot state checksum mismatch: the file is damaged');
  try {
    return fromJson(JSON.parse(body));
  } catch (e) {
    if (e instanceof SnapshotStateError) throw e;
    throw new SnapshotStateError(`snapshot state body is not JSON: ${(e as Error).message}`);
  }
}
