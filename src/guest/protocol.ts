// The host <-> guest-agent protocol on COM2 (docs/guest-protocol.md): one message per line,
//
//     @KTSTR1 <nonce> <seq> <length> <crc32> <json>\n
//
// where <nonce> is the cell's random hex token (only the host and the agent's plan know it),
// <seq> counts the sender's messages from 0, <length> is the JSON's byte length and <crc32>
// its CRC-32 (IEEE, 8 hex digits). A line that is not exactly that — wrong nonce, a gap in
// seq, bad length or CRC, not an object with a string `type` — is stray output, never a
// message: the kernel, a scheduler or a workload printing to the serial port cannot forge one.
// Used on both sides (the agent runs this module inside the guest); no Node APIs here.

export const FRAME_TAG = '@KTSTR1';
/** A frame line longer than this is refused (the JSON of one message; bulk text goes by the ring). */
export const MAX_FRAME_BYTES = 1 << 20;

export interface Message {
  type: string;
  [key: string]: unknown;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib's crc32). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A nonce for a cell: 16 random hex digits (crypto.getRandomValues: Node and browsers). */
export function newNonce(): string {
  const b = new Uint8Array(8);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** One message as its frame line (newline included). */
export function encodeFrame(nonce: string, seq: number, message: Message): Uint8Array {
  const json = encoder.encode(JSON.stringify(message));
  if (json.length > MAX_FRAME_BYTES)
    throw new RangeError(
      `message ${message.type} is ${json.length} bytes (max ${MAX_FRAME_BYTES}): send it by the ring`,
    );
  const head = encoder.encode(
    `${FRAME_TAG} ${nonce} ${seq} ${json.length} ${crc32(json).toString(16).padStart(8, '0')} `,
  );
  const out = new Uint8Array(head.length + json.length + 1);
  out.set(head, 0);
  out.set(json, head.length);
  out[out.length - 1] = 10;
  return out;
}

export type FrameEvent =
  | { kind: 'message'; seq: number; message: Message }
  /** A line that looked like a frame of this nonce but was damaged or out of order. */
  | { kind: 'corrupt'; reason: string }
  /** Bytes that are not frames (shown to a person on --verbose; never interpreted). */
  | { kind: 'stray'; text: string };

const FRAME_RE = /^@KTSTR1 ([0-9a-f]{1,64}) (\d{1,10}) (\d{1,8}) ([0-9a-f]{8}) /;

/**
 * Turns the byte stream of one direction into events. Fed chunks split anywhere; a line
 * longer than MAX_FRAME_BYTES + header is dropped as stray without being held whole.
 */
export class FrameReader {
  private pending: number[] | Uint8Array = new Uint8Array(0);
  private pendingLength = 0;
  private overflowing = false;
  private nextSeq: number;

  /** `firstSeq`: the sender's next message number (a VM restored from a snapshot has sent some before). */
  constructor(
    private readonly nonce: string,
    firstSeq = 0,
  ) {
    this.nextSeq = firstSeq;
  }

  /** The number the sender's next message must carry. */
  get expectedSeq(): number {
    return this.nextSeq;
  }

  feed(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 10) continue;
      this.append(chunk.subarray(start, i));
      start = i + 1;
      if (!this.overflowing) {
        const ev = this.line(this.take());
        if (ev) events.push(ev);
      } else {
        events.push({ kind: 'stray', text: '[an over-long line was dropped]' });
      }
      this.pendingLength = 0;
      this.overflowing = false;
    }
    this.append(chunk.subarray(start));
    return events;
  }

  private append(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.overflowing) return;
    const limit = MAX_FRAME_BYTES + 128;
    if (this.pendingLength + bytes.length > limit) {
      this.overflowing = true;
      this.pendingLength = 0;
      return;
    }
    const buf = this.pending as Uint8Array;
    if (buf.length < this.pendingLength + bytes.length) {
      const grown = new Uint8Array(Math.max(this.pendingLength + bytes.length, buf.length * 2, 256));
      grown.set(buf.subarray(0, this.pendingLength));
      this.pending = grown;
    }
    (this.pending as Uint8Array).set(bytes, this.pendingLength);
    this.pendingLength += bytes.length;
  }

  private take(): Uint8Array {
    return (this.pending as Uint8Array).subarray(0, this.pendingLength);
  }

  private line(raw: Uint8Array): FrameEvent | undefined {
    // the UART may deliver a CR before the LF (tty output processing); the frame never holds one
    const bytes = raw.length > 0 && raw[raw.length - 1] === 13 ? raw.subarray(0, raw.length - 1) : raw;
    if (bytes.length === 0) return undefined;
    const headText = String.fromCharCode(...bytes.subarray(0, Math.min(bytes.length, 128)));
    const m = FRAME_RE.exec(headText);
    if (!m) return { kind: 'stray', text: safeText(bytes) };
    if (m[1] !== this.nonce) return { kind: 'stray', text: safeText(bytes) };
    const seq = Number(m[2]);
    const length = Number(m[3]);
    const json = bytes.subarray(m[0].length);
    if (json.length !== length)
      return { kind: 'corrupt', reason: `frame ${seq}: ${json.length} bytes of JSON, header says ${length}` };
    if (crc32(json).toString(16).padStart(8, '0') !== m[4])
      return { kind: 'corrupt', reason: `frame ${seq}: CRC mismatch` };
    if (seq !== this.nextSeq) return { kind: 'corrupt', reason: `frame ${seq}: expected frame ${this.nextSeq}` };
    let message: unknown;
    try {
      message = JSON.parse(decoder.decode(json));
    } catch {
      return { kind: 'corrupt', reason: `frame ${seq}: not JSON` };
    }
    if (
      typeof message !== 'object' ||
      message === null ||
      Array.isArray(message) ||
      typeof (message as Message).type !== 'string'
    ) {
      return { kind: 'corrupt', reason: `frame ${seq}: not a message object` };
    }
    this.nextSeq++;
    return { kind: 'message', seq, message: message as Message };
  }
}

function safeText(bytes: Uint8Array): string {
  const text = new TextDecoder('utf-8').decode(bytes.subarray(0, 4096));
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '?');
}

/** Writes frames with consecutive sequence numbers. */
export class FrameWriter {
  private seq = 0;

  constructor(
    private readonly nonce: string,
    private readonly write: (bytes: Uint8Array) => void,
  ) {}

  send(message: Message): void {
    this.write(encodeFrame(this.nonce, this.seq++, message));
  }
}
