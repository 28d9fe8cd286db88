// A small AML (ACPI Machine Language) encoder: just what the DSDT needs — named objects,
// packages, devices in a scope, EISA IDs and resource templates with I/O ports and IRQs.
// Encodings from the ACPI 6.5 spec, chapter 20 (AML grammar) and 6.4 (resource data types).

/** One AML term as bytes. */
export type Aml = Uint8Array;

const concat = (parts: readonly ArrayLike<number>[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/**
 * PkgLength for `bodyLength` bytes that follow it; the encoded length counts itself too.
 * One byte up to 63; else 2..4 bytes, the first holding the byte count in bits 7:6 and the
 * low nibble, the rest the higher bits.
 */
export function pkgLength(bodyLength: number): Uint8Array {
  if (bodyLength + 1 < 0x40) return Uint8Array.of(bodyLength + 1);
  for (let extra = 1; extra <= 3; extra++) {
    const total = bodyLength + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const b = [(extra << 6) | (total & 0x0f)];
      for (let i = 0; i < extra; i++) b.push((total >>> (4 + 8 * i)) & 0xff);
      return Uint8Array.from(b);
    }
  }
  throw new RangeError(`AML: package of ${bodyLength} bytes is too long`);
}

/** A 4-character name segment ("_HID", "COM1"); shorter names are padded with '_'. */
export function nameSeg(name: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(name)) throw new RangeError(`AML: bad name segment "${name}"`);
  const s = name.padEnd(4, '_');
  return Uint8Array.from([...s].map((c) => c.charCodeAt(0)));
}

/** A name string: an optional root prefix '\' then one or two segments ("\_SB", "_S5"). */
export function nameString(path: string): Uint8Array {
  const root = path.startsWith('\\');
  const segs = (root ? path.slice(1) : path).split('.');
  const prefix = root ? [0x5c] : [];
  if (segs.length === 1) return concat([prefix, nameSeg(segs[0])]);
  if (segs.length === 2) return concat([prefix, [0x2e], nameSeg(segs[0]), nameSeg(segs[1])]); // DualNamePrefix
  throw new RangeError(`AML: name path "${path}" has more than two segments`);
}

/** An integer as the shortest constant: Zero, One, BytePrefix, WordPrefix or DWordPrefix. */
export function integer(v: number): Uint8Array {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`AML: integer ${v} out of range`);
  if (v === 0) return Uint8Array.of(0x00);
  if (v === 1) return Uint8Array.of(0x01);
  if (v <= 0xff) return Uint8Array.of(0x0a, v);
  if (v <= 0xffff) return Uint8Array.of(0x0b, v & 0xff, v >>> 8);
  return Uint8Array.of(0x0c, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
}

/** EisaId ("PNP0501"): three letters in 5 bits each and four hex digits, as a DWord constant. */
export function eisaId(id: string): Uint8Array {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`AML: bad EISA ID "${id}"`);
  const c = (i: number): number => id.charCodeAt(i) - 0x40;
  const hi = (c(0) << 10) | (c(1) << 5) | c(2);
  const prod = parseInt(id.slice(3), 16);
  // Stored big-endian: vendor word then product word.
  return Uint8Array.of(0x0c, hi >>> 8, hi & 0xff, prod >>> 8, prod & 0xff);
}

/** Name (path, value) */
export function name(path: string, value: Aml): Aml {
  return concat([[0x08], nameString(path), value]);
}

/** Package () { elements } */
export function pkg(elements: readonly Aml[]): Aml {
  const body = concat([[elements.length], ...elements]);
  return concat([[0x12], pkgLength(body.length), body]);
}

/** Scope (path) { terms } */
export function scope(path: string, terms: readonly Aml[]): Aml {
  const body = concat([nameString(path), ...terms]);
  return concat([[0x10], pkgLength(body.length), body]);
}

/** Device (path) { terms } */
export function device(path: string, terms: readonly Aml[]): Aml {
  const body = concat([nameString(path), ...terms]);
  return concat([[0x5b, 0x82], pkgLength(body.length), body]);
}

/** Buffer () { bytes } */
export function buffer(bytes: ArrayLike<number>): Aml {
  const body = concat([integer(bytes.length), bytes]);
  return concat([[0x11], pkgLength(body.length), body]);
}

/** IO (Decode16, base, base, 0, length): a fixed 16-bit-decoded port range (small item 0x08). */
export function ioPort(base: number, length: number): Uint8Array {
  return Uint8Array.of(0x47, 0x01, base & 0xff, base >>> 8, base & 0xff, base >>> 8, 0x00, length);
}

/** IRQNoFlags () { irq }: an edge-triggered, active-high ISA IRQ (small item 0x04, 2 bytes). */
export function isaIrq(irq: number): Uint8Array {
  if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`AML: ISA IRQ ${irq} out of range`);
  const mask = 1 << irq;
  return Uint8Array.of(0x22, mask & 0xff, mask >>> 8);
}

/** ResourceTemplate () { descriptors }: a buffer ending with the End Tag (checksum 0). */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Aml {
  return buffer(concat([...descriptors, [0x79, 0x00]]));
}

/** A 16550 UART as a PNP0501 device with its ports and ISA IRQ. */
export function uartDevice(path: string, uid: number, base: number, irq: number): Aml {
  return device(path, [
    name('_HID', eisaId('PNP0501')),
    name('_UID', integer(uid)),
    name('_CRS', resourceTemplate([ioPort(base, 8), isaIrq(irq)])),
  ]);
}

export { concat as amlConcat };
