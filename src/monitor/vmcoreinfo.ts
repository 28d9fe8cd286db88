// VMCOREINFO: the "KEY=VALUE" text the kernel publishes for dump tools (in a kdump core's
// VMCOREINFO note, or through QEMU's vmcoreinfo device into a dump-guest-memory core). The
// monitor takes the KASLR text offset (KERNELOFFSET), phys_base, the 5-level flag and symbol
// addresses from it. Browser-safe.

export class VmcoreinfoError extends Error {}

export class Vmcoreinfo {
  readonly entries = new Map<string, string>();

  constructor(text: string) {
    for (const line of text.split('\n')) {
      const eq = line.indexOf('=');
      if (eq <= 0) continue;
      const key = line.slice(0, eq).trim();
      if (!this.entries.has(key)) this.entries.set(key, line.slice(eq + 1).trim());
    }
  }

  /** The VMCOREINFO note descriptor as found in an ELF note (NUL-terminated text). */
  static fromNote(desc: Uint8Array): Vmcoreinfo {
    const z = desc.indexOf(0);
    return new Vmcoreinfo(new TextDecoder('latin1').decode(z >= 0 ? desc.subarray(0, z) : desc));
  }

  private hex(key: string): bigint | undefined {
    const v = this.entries.get(key);
    if (v === undefined) return undefined;
    if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(v)) throw new VmcoreinfoError(`VMCOREINFO ${key}=${v} is not a hex number`);
    return BigInt(v.startsWith('0x') ? v : '0x' + v);
  }

  /** `NUMBER(name)` (printed as signed decimal by the kernel), as a u64. */
  number(name: string): bigint | undefined {
    const key = `NUMBER(${name})`;
    const v = this.entries.get(key);
    if (v === undefined) return undefined;
    if (!/^-?[0-9]{1,20}$/.test(v)) throw new VmcoreinfoError(`VMCOREINFO ${key}=${v} is not a decimal number`);
    return BigInt.asUintN(64, BigInt(v));
  }

  symbol(name: string): bigint | undefined {
    return this.hex(`SYMBOL(${name})`);
  }

  get kernelOffset(): bigint | undefined {
    return this.hex('KERNELOFFSET');
  }
  get osRelease(): string | undefined {
    return this.entries.get('OSRELEASE');
  }
}
