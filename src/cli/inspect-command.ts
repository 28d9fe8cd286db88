// `ktstr-wasm inspect --vmlinux V (--core FILE | --memory RAW [--cr3 HEX]) [--json]`: offline
// look at a guest kernel's struct_ops BPF programs in a memory dump -- name, verified_insns,
// runtime stats -- and the active scheduler's object name, through the WASM introspection core;
// with --maps, also its BPF maps and their values.
// The implementation (inspect-run.ts) is loaded only when the command runs.

import { Command } from './commander.js';
import type { InspectFlags } from './inspect-run.js';

const EXAMPLES = `
Examples:
  $ ktstr-wasm inspect --vmlinux vmlinux --core guest.core
        struct_ops programs in a QEMU dump-guest-memory or kdump core
  $ ktstr-wasm inspect --vmlinux vmlinux --core guest.core --maps
        ... and every BPF map with its values (.rodata/.bss/.data by variable name)
  $ ktstr-wasm inspect --vmlinux vmlinux --core guest.core --maps --limit 0 --json
        the maps' identity only (id, name, type, sizes, flags), as JSON
  $ ktstr-wasm inspect --vmlinux vmlinux --memory ram.bin --cr3 0x2a0c000 --json
        a raw physical memory image (physical 0 at file offset 0)

The vmlinux must be the guest's (with .symtab and .BTF; --system-map replaces .symtab).
KASLR is taken from the dump's VMCOREINFO, else found from the kernel's banner in memory
and its page tables (CR3 from the dump's CPU notes, --cr3, or init_top_pgt).
Exit status: 0 ok; 1 the dump could not be read; 2 usage error.`;

export function inspectCommand(parent: Command): Command {
  return new Command('inspect')
    .copyInheritedSettings(parent)
    .description("list a guest kernel's struct_ops BPF programs (and with --maps its BPF maps) from a memory dump")
    .requiredOption('--vmlinux <file>', "the guest kernel's vmlinux (.symtab and .BTF)")
    .option('--core <file>', 'ELF core: QEMU dump-guest-memory or kdump /proc/vmcore')
    .option('--memory <file>', 'raw guest physical memory image')
    .option('--cr3 <hex>', 'page-table root for --memory (default: found from init_top_pgt)')
    .option('--la57', 'the guest uses 5-level paging (default: detected)')
    .option('--system-map <file>', 'System.map with the symbol addresses')
    .option('--maps', "also list the guest's BPF maps (map_idr) with their values")
    .option('--limit <n>', 'with --maps: elements shown per map (default 64)')
    .option('--json', 'print JSON')
    .addHelpText('after', EXAMPLES)
    .action(async (flags: InspectFlags) => {
      const { runInspect } = await import('./inspect-run.js');
      await runInspect(flags);
    });
}
