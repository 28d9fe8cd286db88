// sched_ext's global state read from guest memory: whether a BPF scheduler is enabled, its
// ops name, the watchdog timeout, and -- once it has been kicked out -- its exit info (kind,
// exit code, reason, message, the dump text). Symbol and member names are the kernel's; the
// 6.12 layout (scx_ops, scx_exit_info, scx_ops_enable_state_var) and the later one (scx_root
// -> struct scx_sched) are both resolved through BTF and symbols, never hard-coded offsets.
// Browser-safe.

import type { Btf, BtfType } from './btf.js';
import type { GuestKernel } from './guest-kernel.js';
import { symbolize, type JitImage } from './symbolize.js';

export interface ScxExitInfo {
  kind: number;
  /** The enumerator's name without its prefix (`ERROR_STALL`), or null for an unknown value. */
  kindName: string | null;
  /** The exit code (s64 in the kernel; as a number, exact up to 2^53). */
  exitCode: number;
  reason: string | null;
  message: string | null;
  /** The dump text (the scheduler's debug dump at exit), trimmed; null when none. */
  dump: string | null;
  /** The kernel stack saved where the exit was raised (scx_exit_info.bt), innermost first, symbolized
   * (BPF programs by name when `jit` images were given); empty when none was saved. */
  backtrace: string[];
}

export interface ScxState {
  /** `enabled`, `disabled`, `enabling`, `disabling` (lowercased enumerator), or null when unreadable. */
  state: string | null;
  /** The attached ops' name ('' when none), null when unreadable. */
  opsName: string | null;
  /** The watchdog timeout, ms (from jiffies and HZ), null when unknown. */
  watchdogTimeoutMs: number | null;
  /** The last exit info (null while none was recorded or without sched_ext). */
  exit: ScxExitInfo | null;
}

const EXIT_REASON_MAX = 256;
const EXIT_MSG_MAX = 1024;
const EXIT_DUMP_MAX = 32 * 1024;

const enumCache = new WeakMap<Btf, Map<string, BtfType | null>>();

/** Name of enumerator `value` in enum `enumName`, or null (enums looked up once per BTF). */
export function enumeratorName(btf: Btf, enumName: string, value: bigint): string | null {
  let cache = enumCache.get(btf);
  if (cache === undefined) enumCache.set(btf, (cache = new Map()));
  let t = cache.get(enumName);
  if (t === undefined) {
    t = btf.named(enumName).find((x) => x.enumValues !== undefined) ?? null;
    cache.set(enumName, t);
  }
  return t?.enumValues?.find((e) => e.value === value)?.name ?? null;
}

function memberOffset(btf: Btf, struct: string, path: string): number | null {
  try {
    return btf.member(struct, path).offset;
  } catch {
    return null;
  }
}

/** Reads jiffies and the tick length: HZ from `tick_nsec` (ns per tick), null when unknown. */
export function readJiffies(guest: GuestKernel): { jiffies: bigint | null; hz: number | null } {
  const jiffies = guest.hasSymbol('jiffies_64') ? guest.read64(guest.symbolKva('jiffies_64')) : null;
  let hz: number | null = null;
  if (guest.hasSymbol('tick_nsec')) {
    const tick = guest.read64(guest.symbolKva('tick_nsec'));
    if (tick !== null && tick > 0n && tick < 1_000_000_000n) hz = Math.round(1e9 / Number(tick));
  }
  return { jiffies, hz };
}

/** sched_ext's state, or null when the kernel has no sched_ext at all. */
export function readScxState(guest: GuestKernel, hz: number | null, jit: readonly JitImage[] = []): ScxState | null {
  const btf = guest.kernel.btf;
  if (!btf.hasStruct('sched_ext_ops')) return null;
  const out: ScxState = { state: null, opsName: null, watchdogTimeoutMs: null, exit: null };
  const stateSym = ['scx_ops_enable_state_var', 'scx_enable_state_var'].find((s) => guest.hasSymbol(s));
  if (stateSym !== undefined) {
    const v = guest.read32(guest.symbolKva(stateSym));
    const name =
      v === null
        ? null
        : (enumeratorName(btf, 'scx_ops_enable_state', BigInt(v)) ??
          enumeratorName(btf, 'scx_enable_state', BigInt(v)));
    out.state = name === null ? null : name.replace(/^SCX_(OPS_)?/, '').toLowerCase();
  }
  const nameOff = memberOffset(btf, 'sched_ext_ops', 'name');
  let exitPtrKva: bigint | null = null;
  if (guest.hasSymbol('scx_ops')) {
    // 6.12: a static ops copy and a static exit-info pointer
    if (nameOff !== null) out.opsName = guest.readCString(guest.symbolKva('scx_ops') + BigInt(nameOff), 128);
    if (guest.hasSymbol('scx_exit_info')) exitPtrKva = guest.symbolKva('scx_exit_info');
  } else if (guest.hasSymbol('scx_root')) {
    // later kernels: struct scx_sched *scx_root
    const root = guest.read64(guest.symbolKva('scx_root'));
    const opsOff = memberOffset(btf, 'scx_sched', 'ops');
    const exitOff = memberOffset(btf, 'scx_sched', 'exit_info');
    if (root === 0n) out.opsName = '';
    else if (root !== null) {
      if (opsOff !== null && nameOff !== null) out.opsName = guest.readCString(root + BigInt(opsOff + nameOff), 128);
      if (exitOff !== null) exitPtrKva = root + BigInt(exitOff);
    }
  }
  if (guest.hasSymbol('scx_watchdog_timeout') && hz !== null) {
    const t = guest.read64(guest.symbolKva('scx_watchdog_timeout'));
    if (t !== null && t < 1n << 40n) out.watchdogTimeoutMs = (Number(t) * 1000) / hz;
  }
  if (exitPtrKva !== null) {
    const ei = guest.read64(exitPtrKva);
    if (ei !== null && ei !== 0n) out.exit = readExitInfo(guest, ei, jit);
  }
  return out;
}

const MAX_BACKTRACE = 64;

function readExitInfo(guest: GuestKernel, ei: bigint, jit: readonly JitImage[]): ScxExitInfo | null {
  const btf = guest.kernel.btf;
  const off = (m: string): number | null => memberOffset(btf, 'scx_exit_info', m);
  const kindOff = off('kind');
  if (kindOff === null) return null;
  const kind = guest.read32(ei + BigInt(kindOff));
  if (kind === null || kind === 0) return null; // SCX_EXIT_NONE: nothing recorded
  const str = (m: string, max: number): string | null => {
    const o = off(m);
    const p = o === null ? null : guest.read64(ei + BigInt(o));
    if (p === null || p === 0n) return null;
    const s = guest.readCString(p, max);
    return s === null || s === '' ? null : s;
  };
  const codeOff = off('exit_code');
  const dumpOff = off('dump');
  let dump: string | null = null;
  if (dumpOff !== null) {
    const p = guest.read64(ei + BigInt(dumpOff));
    // up to the NUL, the bound or the first unmapped page (the buffer may end early)
    const text = p === null || p === 0n ? null : (guest.readCString(p, EXIT_DUMP_MAX)?.trimEnd() ?? null);
    dump = text === '' ? null : text;
  }
  const backtrace: string[] = [];
  const btOff = off('bt');
  const btLenOff = off('bt_len');
  if (btOff !== null && btLenOff !== null) {
    const p = guest.read64(ei + BigInt(btOff));
    const n = guest.read32(ei + BigInt(btLenOff));
    if (p !== null && p !== 0n && n !== null) {
      for (let i = 0; i < Math.min(n, MAX_BACKTRACE); i++) {
        const addr = guest.read64(p + BigInt(i * 8));
        if (addr === null) break;
        backtrace.push(symbolize(guest, addr, jit));
      }
    }
  }
  const kindName = enumeratorName(btf, 'scx_exit_kind', BigInt(kind));
  return {
    kind,
    kindName: kindName === null ? null : kindName.replace(/^SCX_EXIT_/, ''),
    exitCode: codeOff === null ? 0 : Number(BigInt.asIntN(64, guest.read64(ei + BigInt(codeOff)) ?? 0n)),
    reason: str('reason', EXIT_REASON_MAX),
    message: str('msg', EXIT_MSG_MAX),
    dump,
    backtrace,
  };
}
