// The calibration guest's machine code (64-bit, for a raw image, vmm/boot/raw-image.ts):
//
//     mov rcx, N ; 1: dec rcx ; jnz 1b ; mov rax, MAGIC ; mov [MARKER], rax
//     mov dx, 0x3f8 ; mov al, 'K' ; out dx, al ; hlt
//
// i.e. 2N + 7 instructions. The `out` reaches the VMM's COM1 as a port I/O exit, the store
// shows up in the shared guest memory, and the HLT (interrupts off, no in-kernel irqchip)
// ends the run.

/** Guest physical address where the loop stores LOOP_MAGIC when done. */
export const LOOP_MARKER = 0x5000;
/** What the guest stores at LOOP_MARKER when the loop is done. */
export const LOOP_MAGIC = 0x6b747374_72776173n; // "ktstrwas"
export const LOOP_SERIAL_PORT = 0x3f8;
/** The byte the guest writes to the serial port before it halts. */
export const LOOP_SERIAL_BYTE = 0x4b; // 'K'
/** Instructions outside the loop: mov rcx; mov rax; mov [m], rax; mov dx; mov al; out; hlt. */
export const LOOP_FIXED_INSTRUCTIONS = 7;
/** Offset of the loop's first instruction (dec rcx) in the code. */
export const LOOP_BODY_OFFSET = 10;

function u64le(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0n; i < 64n; i += 8n) out.push(Number((v >> i) & 0xffn));
  return out;
}

/** The guest's machine code. `iterations` >= 1. */
export function guestLoopCode(iterations: bigint, marker: bigint = BigInt(LOOP_MARKER)): Uint8Array {
  if (iterations < 1n || iterations >= 1n << 64n) throw new RangeError('iterations must be in [1, 2^64)');
  return Uint8Array.from([
    0x48,
    0xb9,
    ...u64le(iterations), //       mov rcx, imm64
    0x48,
    0xff,
    0xc9, //                        1: dec rcx
    0x75,
    0xfb, //                              jnz 1b
    0x48,
    0xb8,
    ...u64le(LOOP_MAGIC), //        mov rax, imm64
    0x48,
    0xa3,
    ...u64le(marker), //            mov [moffs64], rax
    0x66,
    0xba,
    LOOP_SERIAL_PORT & 0xff,
    LOOP_SERIAL_PORT >> 8, // mov dx, 0x3f8
    0xb0,
    LOOP_SERIAL_BYTE, //                  mov al, 'K'
    0xee, //                                    out dx, al
    0xf4, //                                    hlt
  ]);
}
