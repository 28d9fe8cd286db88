// `ktstr-wasm kernel build|list|remove|resolve`: building sched_ext kernels into the cache
// ($XDG_CACHE_HOME/ktstr-wasm/kernels/<label>/), listing what is cached and prebuilt,
// removing an entry, and showing what a --kernel spec resolves to.
// The implementation (kernel-run.ts) is loaded only when a subcommand runs.

import { Command, InvalidArgumentError } from './commander.js';
import { DEFAULT_KERNEL_SERIES } from '../kernel/defaults.js';
import type { BuildFlags, JsonFlag } from './kernel-run.js';

const BUILD_EXAMPLES = `
Examples:
  $ ktstr-wasm kernel build                       Debian's linux-source-${DEFAULT_KERNEL_SERIES} (installed via apt-get if missing)
  $ ktstr-wasm kernel build --source ../linux     a local tree (built out of tree, the tree stays clean)
  $ ktstr-wasm kernel build --source linux-6.12.tar.xz --label my-6.12
  $ ktstr-wasm kernel build --config-only         merge and check ktstr.kconfig only (seconds)

The entry holds bzImage, vmlinux (DWARF stripped; .symtab, .BTF kept), config,
fragment.config, metadata.json and schedulers/ (tools/sched_ext's scx_* and scx_ktstr).
Exit status: 0 built; 1 the build failed (nothing is left in the cache); 2 usage error.`;

function positiveInt(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > 1024)
      throw new InvalidArgumentError(`${what} must be an integer from 1 to 1024.`);
    return n;
  };
}

export function kernelCommand(parent: Command): Command {
  const kernel = new Command('kernel')
    .copyInheritedSettings(parent)
    .description('build, list, remove and resolve sched_ext kernels (the kernel cache)');
  kernel.addCommand(
    new Command('build')
      .copyInheritedSettings(parent)
      .description('build a sched_ext kernel (ktstr.kconfig) and its schedulers into the cache')
      .option('--source <DIR|TARBALL>', "kernel source tree or tarball (default: Debian's linux-source-<version>)")
      .option('--version <SERIES>', 'kernel series of the Debian source package', DEFAULT_KERNEL_SERIES)
      .option('--label <LABEL>', 'cache label (default <kernelversion>-sched_ext)')
      .option('--fragment <FILE>', "config fragment (default the package's ktstr.kconfig)")
      .option('-j, --jobs <N>', 'parallel make jobs (default: host CPUs)', positiveInt('--jobs'))
      .option('--no-schedulers', 'skip tools/sched_ext and scx-ktstr')
      .option('--force', 'replace a cached kernel of the same label')
      .option('-y, --yes', 'install missing Debian packages without asking')
      .option('--config-only', 'stop after merging and checking the config')
      .addHelpText('after', BUILD_EXAMPLES)
      .action(async (flags: BuildFlags) => {
        const { runBuild } = await import('./kernel-run.js');
        await runBuild(flags);
      }),
  );
  kernel.addCommand(
    new Command('list')
      .copyInheritedSettings(parent)
      .description('list cached and prebuilt kernels (auto-discovery order)')
      .option('--json', 'machine-readable output')
      .action(async (flags: JsonFlag) => {
        const { runList } = await import('./kernel-run.js');
        runList(flags);
      }),
  );
  kernel.addCommand(
    new Command('remove')
      .copyInheritedSettings(parent)
      .description('remove a cached kernel')
      .argument('<LABEL>', 'cache label (see kernel list)')
      .action(async (label: string) => {
        const { runRemove } = await import('./kernel-run.js');
        runRemove(label);
      }),
  );
  kernel.addCommand(
    new Command('resolve')
      .copyInheritedSettings(parent)
      .description('show which kernel a --kernel spec (or KTSTR_KERNEL, or auto-discovery) picks')
      .argument('[SPEC]', 'bzImage path, kernel dir, source tree, cache label or version')
      .option('--json', 'machine-readable output')
      .action(async (spec: string | undefined, flags: JsonFlag) => {
        const { runResolve } = await import('./kernel-run.js');
        runResolve(spec, flags);
      }),
  );
  return kernel;
}
