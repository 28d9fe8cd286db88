// The agent's side of a snapshot: a base image's agent says `ready` and waits for its cell.
// The host may save the VM right then (the quiet point), and every VM restored from that
// snapshot resumes here, in this wait. A test cell's agent waits once more, its scheduler
// attached, for the test (`attached`, then `body`): the second point a snapshot may be taken
// at. The `cell` (or `body`) message brings the real plan; before the
// plan runs, the guest's wall clock is set to the host's (a restored guest's clock goes on
// from the moment of the save), the kernel's RNG gets fresh random bytes (siblings of one
// snapshot would share its state), and the cell's files are unpacked from the mailbox
// (in the agent: unpack-archive.ts).

import { writeFileSync } from 'node:fs';
import type { AgentPlan, CellMessage } from '../plan.js';
import type { AgentChannel } from './channel.js';
import type { HostRequests } from './host-requests.js';
import { native } from '../../kvm/native.js';
import { unpackArchive } from './unpack-archive.js';

/** How long a waiting agent waits for its cell (guest time: a saved VM's clock stands still on disk). */
const CELL_WAIT_MS = 300_000;

export class CellHandoffError extends Error {}

/** Sets the wall clock to `ms` since the epoch (clock_settime through the native binding: no process to spawn). */
function setWallClock(ms: number): void {
  try {
    native().setRealtimeMs(Math.round(ms));
  } catch (e) {
    throw new CellHandoffError(`cannot set the wall clock: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Sets the guest's wall clock from the host's, asked for now (a restored guest can take
 * seconds between the cell's arrival and here, its memory faulting in): the host's answer plus
 * half the round trip, plus the time since the answer came.
 */
async function syncWallClock(chan: AgentChannel, fallbackMs: number): Promise<void> {
  const asked = performance.now();
  chan.send({ type: 'time-request' });
  const m = await chan.next('time', 10_000);
  const answered = performance.now();
  const hostMs =
    m !== null && m.type === 'time' && Number.isFinite(m.realtimeMs)
      ? m.realtimeMs + (answered - asked) / 2
      : fallbackMs;
  setWallClock(hostMs + (performance.now() - answered));
}

/** Mixes the host's random bytes into the kernel's pool (a write to /dev/urandom mixes, without crediting entropy). */
function reseed(hex: string): void {
  if (!/^[0-9a-f]{2,1024}$/.test(hex)) throw new CellHandoffError('the cell message has no valid seed');
  writeFileSync('/dev/urandom', Buffer.from(hex, 'hex'));
}

function isCellMessage(m: unknown): m is CellMessage {
  const c = m as CellMessage;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.plan === 'object' &&
    c.plan !== null &&
    Number.isSafeInteger(c.plan.length) &&
    Number.isSafeInteger(c.plan.crc) &&
    typeof c.archive === 'object' &&
    c.archive !== null &&
    Number.isSafeInteger(c.archive.offset) &&
    Number.isSafeInteger(c.archive.length) &&
    Number.isSafeInteger(c.archive.crc) &&
    Number.isFinite(c.realtimeMs) &&
    typeof c.seed === 'string'
  );
}

/** Waits for the host's `kind` message, prepares the guest for what it brings (RNG, files, wall clock), and returns its plan. */
async function receive(
  kind: 'cell' | 'body',
  current: AgentPlan,
  chan: AgentChannel,
  mailbox: HostRequests,
): Promise<AgentPlan> {
  const m = await chan.next(kind, CELL_WAIT_MS);
  if (m === null) throw new CellHandoffError(`the host sent no ${kind} within ${CELL_WAIT_MS / 1000} s`);
  if (!isCellMessage(m)) throw new CellHandoffError(`the ${kind} message is malformed`);
  reseed(m.seed);
  const plan = JSON.parse(
    Buffer.from(mailbox.read(m.plan.length, m.plan.crc, `${kind} plan`)).toString('utf8'),
  ) as AgentPlan;
  if (plan.version !== current.version)
    throw new CellHandoffError(`${kind} plan version ${plan.version}, this agent reads ${current.version}`);
  if (m.archive.length > 0) {
    const archive = mailbox.read(m.archive.length, m.archive.crc, `${kind} archive`, m.archive.offset);
    try {
      unpackArchive(archive);
    } catch (e) {
      throw new CellHandoffError(`the ${kind} archive: ${(e as Error).message}`);
    }
  }
  await syncWallClock(chan, m.realtimeMs);
  return plan;
}

/** Says `ready`, waits for the cell, prepares the guest for it, and returns its plan. */
export async function receiveCell(base: AgentPlan, chan: AgentChannel, mailbox: HostRequests): Promise<AgentPlan> {
  chan.send({ type: 'ready' });
  const plan = await receive('cell', base, chan, mailbox);
  // the channel, ring and mailbox are the base's: the VM's, not the cell's
  return { ...plan, nonce: base.nonce, ring: base.ring, mailbox: base.mailbox, awaitCell: false };
}

/**
 * Says `attached` (the scheduler of `current` is enabled), waits for the test, prepares the
 * guest for it, and returns the plan to go on with: the running scheduler and the VM's
 * channel are `current`'s, everything else (the test, its timeouts, the cell's name) the body's.
 */
export async function receiveBody(current: AgentPlan, chan: AgentChannel, mailbox: HostRequests): Promise<AgentPlan> {
  chan.send({ type: 'attached' });
  const body = await receive('body', current, chan, mailbox);
  return {
    ...body,
    scheduler: current.scheduler,
    nonce: current.nonce,
    ring: current.ring,
    mailbox: current.mailbox,
    awaitCell: false,
    awaitBody: false,
  };
}
