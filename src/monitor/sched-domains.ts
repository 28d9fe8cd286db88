// The scheduler-domain hierarchy each CPU sees (rq->sd, then ->parent), read from guest
// memory, and its check against the declared topology: the SMT siblings, the LLC and the
// NUMA node of every CPU must each be the span of one of its domains, and no domain that
// claims to share an LLC may reach past the declared one. A VMM that presents the wrong
// CPUID/ACPI topology fails here in every cell. Browser-safe: the declared topology comes in
// as plain places.

import type { GuestKernel } from './guest-kernel.js';

export interface SchedDomain {
  level: number;
  flags: number;
  /** Flag names (SD_SHARE_LLC, ...) from the kernel's BTF enum. */
  flagNames: string[];
  /** The CPUs it spans, ascending. */
  span: number[];
}

/** One CPU's domains, lowest level first; `error` when the walk could not finish. */
export interface CpuDomains {
  cpu: number;
  domains: SchedDomain[];
  error?: string;
}

/** Where a CPU sits in the declared topology. */
export interface CpuPlace {
  cpu: number;
  node: number;
  llc: number;
  core: number;
  thread: number;
}

export interface DomainCheck {
  ok: boolean;
  /** One line per mismatch: CPU, what was expected, what the kernel built. */
  problems: string[];
}

const MAX_LEVELS = 16;

function member(guest: GuestKernel, struct: string, path: string): number | null {
  try {
    return guest.kernel.btf.member(struct, path).offset;
  } catch {
    return null;
  }
}

/** SD_* flag bits by name, from the kernel's BTF (the enum holding SD_SHARE_LLC). */
function sdFlags(guest: GuestKernel): { name: string; bit: number }[] {
  const t = guest.kernel.btf.enumWith('SD_SHARE_LLC');
  return (t?.enumValues ?? [])
    .filter((e) => e.value > 0n && e.value < 1n << 31n)
    .map((e) => ({ name: e.name, bit: Number(e.value) }));
}

function spanCpus(bits: Uint8Array, nrCpus: number): number[] {
  const out: number[] = [];
  for (let cpu = 0; cpu < nrCpus && cpu < bits.length * 8; cpu++) if ((bits[cpu >> 3] >> (cpu & 7)) & 1) out.push(cpu);
  return out;
}

/** Every CPU's domain hierarchy (CPUs 0..nrCpuIds-1). */
export function readSchedDomains(guest: GuestKernel): CpuDomains[] {
  const sdOff = member(guest, 'rq', 'sd');
  const parentOff = member(guest, 'sched_domain', 'parent');
  const spanOff = member(guest, 'sched_domain', 'span');
  const flagsOff = member(guest, 'sched_domain', 'flags');
  const levelOff = member(guest, 'sched_domain', 'level');
  const names = sdFlags(guest);
  const out: CpuDomains[] = [];
  if (
    sdOff === null ||
    parentOff === null ||
    spanOff === null ||
    flagsOff === null ||
    levelOff === null ||
    !guest.hasSymbol('runqueues')
  )
    return out;
  const nr = guest.nrCpuIds;
  const spanBytes = Math.ceil(nr / 64) * 8;
  for (let cpu = 0; cpu < nr; cpu++) {
    const rq = guest.perCpuPtr('runqueues', cpu);
    const entry: CpuDomains = { cpu, domains: [] };
    out.push(entry);
    if (rq === null) {
      entry.error = 'no per-CPU offset';
      continue;
    }
    let sd = guest.read64(rq + BigInt(sdOff));
    if (sd === null) {
      entry.error = 'rq->sd unreadable';
      continue;
    }
    while (sd !== 0n) {
      if (entry.domains.length >= MAX_LEVELS) {
        entry.error = `more than ${MAX_LEVELS} levels (a parent loop?)`;
        break;
      }
      const flags = guest.read32(sd + BigInt(flagsOff));
      const level = guest.read32(sd + BigInt(levelOff));
      const span = guest.readBytes(sd + BigInt(spanOff), spanBytes);
      const parent = guest.read64(sd + BigInt(parentOff));
      if (flags === null || level === null || span === null || parent === null) {
        entry.error = `sched_domain at 0x${sd.toString(16)} unreadable`;
        break;
      }
      entry.domains.push({
        level,
        flags,
        flagNames: names.filter((n) => (flags & n.bit) !== 0).map((n) => n.name),
        span: spanCpus(span, nr),
      });
      sd = parent;
    }
  }
  return out;
}

const list = (cpus: readonly number[]): string => {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j] + 1) j++;
    parts.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j;
  }
  return parts.length === 0 ? '(none)' : parts.join(',');
};

const same = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Checks the domains the kernel built against the declared places (every CPU of `places`). */
export function checkSchedDomains(domains: readonly CpuDomains[], places: readonly CpuPlace[]): DomainCheck {
  const problems: string[] = [];
  const group = (pred: (p: CpuPlace) => boolean): number[] =>
    places
      .filter(pred)
      .map((p) => p.cpu)
      .sort((a, b) => a - b);
  for (const place of places) {
    const d = domains.find((x) => x.cpu === place.cpu);
    if (d === undefined) {
      problems.push(`cpu ${place.cpu}: no domains read`);
      continue;
    }
    if (d.error !== undefined) {
      problems.push(`cpu ${place.cpu}: ${d.error}`);
      continue;
    }
    // each group of two or more CPUs must be the span of one of the CPU's domains, carrying the
    // flag that says what it shares (a whole-machine NUMA node is just the top domain)
    const expect: [string, number[], string | null][] = [
      [
        'SMT siblings',
        group((p) => p.node === place.node && p.llc === place.llc && p.core === place.core),
        'SD_SHARE_CPUCAPACITY',
      ],
      ['LLC', group((p) => p.node === place.node && p.llc === place.llc), 'SD_SHARE_LLC'],
      ['NUMA node', group((p) => p.node === place.node), null],
    ];
    for (const [what, cpus, flag] of expect) {
      if (cpus.length < 2 || (flag === null && cpus.length === places.length)) continue;
      if (!d.domains.some((x) => same(x.span, cpus) && (flag === null || x.flagNames.includes(flag)))) {
        problems.push(
          `cpu ${place.cpu}: no sched domain${flag === null ? '' : ` with ${flag}`} spans its ${what} ${list(cpus)} (domains: ${d.domains.map((x) => `${x.flagNames.includes('SD_SHARE_LLC') ? 'llc' : 'lvl'}${x.level}=${list(x.span)}`).join(' ') || 'none'})`,
        );
      }
    }
    const llc = expect[1][1];
    for (const dom of d.domains) {
      if (dom.flagNames.includes('SD_SHARE_LLC') && !dom.span.every((c) => llc.includes(c))) {
        problems.push(
          `cpu ${place.cpu}: level ${dom.level} shares an LLC over ${list(dom.span)}, beyond its declared LLC ${list(llc)}`,
        );
      }
    }
  }
  return { ok: problems.length === 0, problems };
}
