// A bzImage by the x86 boot protocol (Documentation/arch/x86/boot.rst): the real-mode
// setup (boot sector + setup_sects sectors) carries the setup header at 0x1f1; the
// protected-mode kernel follows it. We enter it at its 64-bit entry (load address + 0x200,
// protocol >= 2.06 with XLF_KERNEL_64), so the real-mode code never runs.

import { BootImageError } from './errors.js';

/** Offsets of setup-header fields, from the start of the image (= of boot_params). */
export const HDR = {
  setup_sects: 0x1f1,
  syssize: 0x1f4,
  boot_flag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  type_of_loader: 0x210,
  loadflags: 0x211,
  code32_start: 0x214,
  ramdisk_image: 0x218,
  ramdisk_size: 0x21c,
  heap_end_ptr: 0x224,
  cmd_line_ptr: 0x228,
  initrd_addr_max: 0x22c,
  kernel_alignment: 0x230,
  relocatable_kernel: 0x234,
  min_alignment: 0x235,
  xloadflags: 0x236,
  cmdline_size: 0x238,
  payload_offset: 0x248,
  payload_length: 0x24c,
  pref_address: 0x258,
  init_size: 0x260,
} as const;

export const HDRS_MAGIC = 0x53726448; // "HdrS"
export const LOADFLAG_LOADED_HIGH = 0x01;
export const LOADFLAG_CAN_USE_HEAP = 0x80;
export const XLF_KERNEL_64 = 0x01;
export const XLF_CAN_BE_LOADED_ABOVE_4G = 0x02;
export const MIN_BOOT_PROTOCOL = 0x206;

export interface BzImage {
  kind: 'bzimage';
  /** Boot protocol version, e.g. 0x20f. */
  version: number;
  /** The setup header bytes [0x1f1, 0x202 + byte at 0x201), copied into boot_params. */
  setupHeader: Uint8Array;
  /** The protected-mode kernel (after the setup sectors). */
  kernel: Uint8Array;
  initrdAddrMax: number;
  kernelAlignment: number;
  relocatable: boolean;
  cmdlineSize: number;
  prefAddress: bigint;
  /** Memory the kernel needs from its (aligned) load address while it decompresses and runs. */
  initSize: number;
  xloadflags: number;
}

export function looksLikeBzImage(buf: Uint8Array): boolean {
  return (
    buf.length >= 0x206 &&
    new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(HDR.header, true) === HDRS_MAGIC
  );
}

export function parseBzImage(buf: Uint8Array, path?: string): BzImage {
  if (buf.length < 0x264)
    throw new BootImageError(`truncated bzImage: ${buf.length} bytes is shorter than the setup header`, path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(HDR.header, true) !== HDRS_MAGIC)
    throw new BootImageError('not a bzImage: no "HdrS" magic at 0x202', path);
  if (dv.getUint16(HDR.boot_flag, true) !== 0xaa55)
    throw new BootImageError('not a bzImage: boot_flag at 0x1fe is not 0xAA55', path);
  const version = dv.getUint16(HDR.version, true);
  if (version < MIN_BOOT_PROTOCOL) {
    throw new BootImageError(
      `boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, '0')} is older than 2.06 (no 64-bit entry)`,
      path,
    );
  }
  const loadflags = buf[HDR.loadflags];
  if ((loadflags & LOADFLAG_LOADED_HIGH) === 0)
    throw new BootImageError('not a bzImage (zImage: LOADED_HIGH is clear)', path);
  const xloadflags = dv.getUint16(HDR.xloadflags, true);
  if ((xloadflags & XLF_KERNEL_64) === 0)
    throw new BootImageError('kernel has no 64-bit entry point (xloadflags XLF_KERNEL_64 clear)', path);
  let setupSects = buf[HDR.setup_sects];
  if (setupSects === 0) setupSects = 4;
  const setupBytes = (setupSects + 1) * 512;
  const syssize = dv.getUint32(HDR.syssize, true) * 16;
  if (setupBytes >= buf.length)
    throw new BootImageError(`truncated bzImage: setup is ${setupBytes} bytes, file is ${buf.length}`, path);
  const kernel = buf.subarray(setupBytes);
  if (syssize > 0 && kernel.length < syssize) {
    throw new BootImageError(
      `truncated bzImage: the protected-mode kernel is ${kernel.length} bytes, the header says ${syssize}`,
      path,
    );
  }
  const payloadOffset = dv.getUint32(HDR.payload_offset, true);
  const payloadLength = dv.getUint32(HDR.payload_length, true);
  if (payloadOffset + payloadLength > kernel.length) {
    throw new BootImageError(
      `truncated bzImage: compressed payload ends at ${payloadOffset + payloadLength}, kernel part is ${kernel.length} bytes`,
      path,
    );
  }
  const kernelAlignment = dv.getUint32(HDR.kernel_alignment, true);
  if (kernelAlignment === 0 || (kernelAlignment & (kernelAlignment - 1)) !== 0) {
    throw new BootImageError(`kernel_alignment 0x${kernelAlignment.toString(16)} is not a power of two`, path);
  }
  const headerEnd = 0x202 + buf[0x201];
  return {
    kind: 'bzimage',
    version,
    setupHeader: buf.slice(HDR.setup_sects, headerEnd),
    kernel,
    initrdAddrMax: dv.getUint32(HDR.initrd_addr_max, true),
    kernelAlignment,
    relocatable: buf[HDR.relocatable_kernel] !== 0,
    cmdlineSize: dv.getUint32(HDR.cmdline_size, true),
    prefAddress: dv.getBigUint64(HDR.pref_address, true),
    initSize: dv.getUint32(HDR.init_size, true),
    xloadflags,
  };
}
