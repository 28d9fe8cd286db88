// ktstr-wasm/introspect: the embeddable introspection API. Everything exported here runs in
// Node and in browsers (no Node APIs): the caller brings the WASM bytes
// (build/introspect.wasm for a shared memory, build/introspect.unshared.wasm otherwise) and
// a WebAssembly.Memory holding guest physical memory. docs/introspect.md documents the ABI.

export {
  Introspector,
  IntrospectError,
  NOT_MAPPED,
  RECORD_SIZE,
  activeObject,
  introspectWasmName,
  isSharedMemory,
  nsPerCall,
  missRate,
  type Enumeration,
  type IntrospectExports,
  type PhysRegion,
  type StructOpsProgram,
} from './introspector.js';
export { ElfFile, ElfError, bytesSource, type ByteSource, type ElfSymbol } from '../elf/file.js';
export { Btf, BtfError, BTF_KIND, type MemberLocation } from './btf.js';
export { kernelOffsets, OFFSET_INDEX, OFFSET_ORDER, type KernelOffsets } from './kernel-offsets.js';
export { loadKernelImage, KernelImageError, type KernelImage, type KernelImageOptions } from './kernel-image.js';
export { parseSystemMap, SystemMapError } from './system-map.js';
export { Vmcoreinfo, VmcoreinfoError } from './vmcoreinfo.js';
export { readCoreDump, type CoreDump, type DumpSegment, type DumpCpu } from './core-dump.js';
export {
  writeCore,
  coreNotes,
  guestVmcoreinfo,
  CoreWriteError,
  CORE_PAGE,
  type CoreInput,
  type CoreCpu,
  type CoreRegion,
  type CoreSegment,
  type CoreSink,
  type CoreWriteStats,
} from './core-writer.js';
export {
  deriveLayout,
  findKernelTextPa,
  KaslrError,
  START_KERNEL_MAP,
  type KernelLayout,
  type LayoutHints,
} from './kaslr.js';
export { inspectKernel, inspectGuest, reportJson, programJson, type InspectReport } from './inspect.js';
export { GuestKernel, GuestReadError } from './guest-kernel.js';
export { DataViewWalker } from './ts-walker.js';
export {
  openMaps,
  BpfMaps,
  BpfMap,
  BpfMapError,
  DEFAULT_ENTRY_LIMIT,
  hexBytes,
  type BpfMapInfo,
  type MapEntry,
  type MapDump,
} from './bpf-maps.js';
export { mapsJson, mapJson, jsonValue, type MapsJsonOptions, type Json } from './bpf-maps-json.js';
export {
  BtfRenderer,
  fieldLocation,
  encodeField,
  type BtfValue,
  type FieldLocation,
  type ScalarInput,
} from './btf-value.js';
export { bpfMapLayout, type BpfMapLayout } from './bpf-map-layout.js';
