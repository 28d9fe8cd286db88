// A snapshot's free pages: the cell's kernel located in the paused guest's RAM and its buddy
// allocator's free lists read (src/monitor/free-pages.ts), so the save leaves those pages out.
// When the kernel cannot be located or its lists cannot be trusted at that instant, nothing is
// left out (the snapshot is only bigger) and the reason is kept for the cell's note.

import { GuestKernel } from '../monitor/guest-kernel.js';
import { buddyLayout, freePageRanges, type FreePages } from '../monitor/free-pages.js';
import type { KernelImage } from '../monitor/kernel-image.js';
import { nodeIntrospector } from '../monitor/wasm-file.js';
import type { LiveVm } from '../vmm/index.js';

/** Reads the free pages of `vm`'s guest (call with its vCPUs paused); never throws. */
export function readGuestFreePages(vm: LiveVm, kernel: KernelImage, paging: { cr3: bigint; cr4: bigint }): FreePages {
  try {
    const intro = nodeIntrospector(vm.memory.memory);
    for (const r of vm.memory.regions) intro.addRegion(r.guestPhysAddr, r.size, r.offset);
    const guest = GuestKernel.open(intro, kernel, paging);
    const layout = buddyLayout(guest);
    if ('reason' in layout) return layout;
    return freePageRanges(
      guest,
      layout,
      vm.memory.regions.map((r) => ({ start: r.guestPhysAddr, size: r.size })),
    );
  } catch (e) {
    return { reason: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * The `freePages` callback of LiveVm.saveSnapshot for a guest running `kernel`: the paging
 * registers are read now (the vCPUs still run), the lists when the save calls it; `found`
 * hears what was found.
 */
export async function freePagesForSave(
  vm: LiveVm,
  kernel: KernelImage,
  found: (pages: FreePages) => void,
): Promise<() => [number, number][]> {
  const sregs = await vm.readSregs(0);
  return () => {
    const pages = readGuestFreePages(vm, kernel, { cr3: sregs.cr3, cr4: sregs.cr4 });
    found(pages);
    return 'reason' in pages ? [] : pages.ranges;
  };
}
