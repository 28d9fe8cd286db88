// The guest's free pages, read from its buddy allocator: the guest-physical ranges that sit on
// a zone's free lists at this moment, whose contents the guest will never read again before
// it writes them (a snapshot need not save them). Read with every vCPU paused, and trusted
// only when nothing can be half-done: every zone's lock free, every list's length equal to its
// nr_free, every block a buddy head (PGTY_buddy) inside guest RAM, aligned to its order, and
// no two blocks overlapping. Anything else gives a reason instead of ranges (save everything).
// Every walk is bounded by the guest's RAM size. Browser-safe.

import { BtfError } from './btf.js';
import type { GuestKernel } from './guest-kernel.js';

const PAGE = 4096;

/** Where the buddy allocator's state lives in this kernel build (from its BTF and symbols). */
export interface BuddyLayout {
  /** `node_data[]`: one `struct pglist_data *` per possible node. */
  nodeDataKva: bigint;
  nodeSlots: number;
  /** pglist_data.node_zones, and the zones in it. */
  zonesOffset: number;
  zoneCount: number;
  zoneSize: number;
  /** zone.lock (a spinlock: 0 when free), zone.free_area. */
  zoneLockOffset: number;
  freeAreaOffset: number;
  /** free_area: its size, the orders (NR_PAGE_ORDERS), the lists per order (MIGRATE_TYPES), nr_free. */
  freeAreaSize: number;
  orders: number;
  listsPerOrder: number;
  nrFreeOffset: number;
  /** struct page: size, buddy_list, page_type, and PGTY_buddy (page_type >> 24). */
  pageSize: number;
  buddyListOffset: number;
  pageTypeOffset: number;
  pgtyBuddy: number;
  /** The variable `vmemmap_base` (struct page of pfn 0). */
  vmemmapBaseKva: bigint;
  /** `_page_poisoning_enabled` (a static key) when the build has page poisoning: free pages then hold a pattern the allocator checks. */
  poisoningKeyKva: bigint | null;
}

/** Reads of guest kernel memory (GuestKernel's). */
export interface KernelReader {
  read64(kva: bigint): bigint | null;
  read32(kva: bigint): number | null;
}

/** A guest RAM range, guest physical. */
export interface PhysRange {
  start: number;
  size: number;
}

export type FreePages = { ranges: [number, number][]; bytes: number } | { reason: string };

/** The buddy allocator's layout in `guest`'s kernel, or why it cannot be read (an older or different build). */
export function buddyLayout(
  guest: Pick<GuestKernel, 'kernel' | 'hasSymbol' | 'symbolKva'>,
): BuddyLayout | { reason: string } {
  const { btf } = guest.kernel;
  try {
    if (!guest.hasSymbol('node_data')) return { reason: 'the kernel has no node_data (built without NUMA)' };
    if (!guest.hasSymbol('vmemmap_base')) return { reason: 'the kernel has no vmemmap_base' };
    const zones = btf.member('pglist_data', 'node_zones');
    const zoneArray = btf.resolve(zones.type).array;
    const freeArea = btf.member('zone', 'free_area');
    const areaArray = btf.resolve(freeArea.type).array;
    const lists = btf.member('free_area', 'free_list');
    const listArray = btf.resolve(lists.type).array;
    if (zoneArray === undefined || areaArray === undefined || listArray === undefined)
      return { reason: 'node_zones, free_area or free_list is not an array in this BTF' };
    if (lists.offset !== 0) return { reason: 'free_area.free_list is not its first member' };
    const slots = (guest.kernel.symbolSizes.get('node_data') ?? 0) / 8;
    return {
      nodeDataKva: guest.symbolKva('node_data'),
      nodeSlots: Number.isInteger(slots) && slots > 0 ? Math.min(slots, 1024) : 1,
      zonesOffset: zones.offset,
      zoneCount: zoneArray.nelems,
      zoneSize: btf.sizeOf(zoneArray.type),
      zoneLockOffset: btf.offsetOf('zone', 'lock'),
      freeAreaOffset: freeArea.offset,
      freeAreaSize: btf.sizeOf(areaArray.type),
      orders: areaArray.nelems,
      listsPerOrder: listArray.nelems,
      nrFreeOffset: btf.offsetOf('free_area', 'nr_free'),
      pageSize: btf.sizeOf(btf.struct('page').id),
      buddyListOffset: btf.offsetOf('page', 'buddy_list'),
      pageTypeOffset: btf.offsetOf('page', 'page_type'),
      pgtyBuddy: Number(btf.enumValue('PGTY_buddy')),
      vmemmapBaseKva: guest.symbolKva('vmemmap_base'),
      poisoningKeyKva: guest.hasSymbol('_page_poisoning_enabled') ? guest.symbolKva('_page_poisoning_enabled') : null,
    };
  } catch (e) {
    if (e instanceof BtfError) return { reason: e.message };
    throw e;
  }
}

/**
 * The free blocks on every zone's free lists, as merged guest-physical [start, bytes] ranges
 * inside `ram`, or the reason they cannot be trusted now. Call with every vCPU paused.
 */
export function freePageRanges(r: KernelReader, l: BuddyLayout, ram: readonly PhysRange[]): FreePages {
  const ramPages = ram.reduce((n, x) => n + Math.floor(x.size / PAGE), 0);
  if (l.poisoningKeyKva !== null) {
    const on = r.read32(l.poisoningKeyKva);
    if (on !== 0) return { reason: 'page poisoning is on (or unreadable): free pages hold a checked pattern' };
  }
  const vmemmap = r.read64(l.vmemmapBaseKva);
  if (vmemmap === null) return { reason: 'vmemmap_base is unreadable' };
  const blocks: [number, number][] = [];
  let pages = 0;
  for (let node = 0; node < l.nodeSlots; node++) {
    const pgdat = r.read64(l.nodeDataKva + BigInt(node * 8));
    if (pgdat === null) return { reason: `node_data[${node}] is unreadable` };
    if (pgdat === 0n) continue;
    for (let z = 0; z < l.zoneCount; z++) {
      const zone = pgdat + BigInt(l.zonesOffset + z * l.zoneSize);
      const lock = r.read32(zone + BigInt(l.zoneLockOffset));
      if (lock === null) return { reason: `node ${node} zone ${z} is unreadable` };
      if (lock !== 0) return { reason: `node ${node} zone ${z}'s lock is held` };
      for (let order = 0; order < l.orders; order++) {
        const area = zone + BigInt(l.freeAreaOffset + order * l.freeAreaSize);
        const nrFree = r.read64(area + BigInt(l.nrFreeOffset));
        if (nrFree === null) return { reason: `node ${node} zone ${z} order ${order}: nr_free unreadable` };
        if (nrFree > BigInt(ramPages))
          return { reason: `node ${node} zone ${z} order ${order}: nr_free ${nrFree} exceeds RAM` };
        let seen = 0;
        for (let t = 0; t < l.listsPerOrder; t++) {
          const head = area + BigInt(t * 16);
          let link = r.read64(head);
          // a zone without pages may never have had its lists initialised
          if (link === 0n && nrFree === 0n) continue;
          while (link !== head) {
            if (link === null)
              return { reason: `node ${node} zone ${z} order ${order}: a free list link is unreadable` };
            if (++seen > Number(nrFree))
              return { reason: `node ${node} zone ${z} order ${order}: the lists hold more than nr_free ${nrFree}` };
            const block = pageBlock(r, l, vmemmap, link, order, ram);
            if (typeof block === 'string') return { reason: `node ${node} zone ${z} order ${order}: ${block}` };
            blocks.push(block);
            pages += 1 << order;
            if (pages > ramPages) return { reason: 'the free lists hold more pages than guest RAM' };
            link = r.read64(link);
          }
        }
        if (seen !== Number(nrFree))
          return {
            reason: `node ${node} zone ${z} order ${order}: the lists hold ${seen} blocks, nr_free says ${nrFree}`,
          };
      }
    }
  }
  return mergeBlocks(blocks);
}

/** The block whose struct page's buddy_list is at `link`: [physical start, bytes], or what is wrong with it. */
function pageBlock(
  r: KernelReader,
  l: BuddyLayout,
  vmemmap: bigint,
  link: bigint,
  order: number,
  ram: readonly PhysRange[],
): [number, number] | string {
  const page = link - BigInt(l.buddyListOffset);
  const index = page - vmemmap;
  if (index < 0n || index % BigInt(l.pageSize) !== 0n) return `0x${page.toString(16)} is not a struct page`;
  const pfn = index / BigInt(l.pageSize);
  const start = pfn * BigInt(PAGE);
  const size = PAGE * 2 ** order;
  if (pfn % BigInt(2 ** order) !== 0n) return `pfn 0x${pfn.toString(16)} is not aligned to its order`;
  const type = r.read32(page + BigInt(l.pageTypeOffset));
  if (type === null || type >>> 24 !== l.pgtyBuddy) return `pfn 0x${pfn.toString(16)} is not a buddy page`;
  if (start > BigInt(Number.MAX_SAFE_INTEGER)) return `pfn 0x${pfn.toString(16)} is beyond guest RAM`;
  const pa = Number(start);
  if (!ram.some((x) => pa >= x.start && pa + size <= x.start + x.size))
    return `pfn 0x${pfn.toString(16)} is outside guest RAM`;
  return [pa, size];
}

/** Sorts and merges the blocks; two that overlap mean the lists were not what they seemed. */
function mergeBlocks(blocks: [number, number][]): FreePages {
  blocks.sort((a, b) => a[0] - b[0]);
  const ranges: [number, number][] = [];
  let bytes = 0;
  for (const [start, size] of blocks) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && start < last[0] + last[1])
      return { reason: `free block at 0x${start.toString(16)} overlaps another` };
    if (last !== undefined && start === last[0] + last[1]) last[1] += size;
    else ranges.push([start, size]);
    bytes += size;
  }
  return { ranges, bytes };
}
