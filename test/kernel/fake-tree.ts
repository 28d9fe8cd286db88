// A stand-in kernel source tree for the build tests: a Makefile answering kernelversion,
// defconfig, olddefconfig (which drops CONFIG_DROPME, as Kconfig drops options with unmet
// dependencies) and bzImage (prints kbuild step lines, drops a marker with make's pid and,
// when the file `slow` exists in the tree, sleeps before producing arch/x86/boot/bzImage and
// an ELF vmlinux). Builds out of tree (O=) like a real source tree.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MAKEFILE = `O ?= .
kernelversion:
\t@echo 6.12.999
defconfig:
\t@printf '# Linux/x86 6.12.999 Kernel Configuration\\nCONFIG_BASE=y\\n# CONFIG_OFF is not set\\n' > $(O)/.config
olddefconfig:
\t@sed -i '/CONFIG_DROPME/d' $(O)/.config
bzImage:
\t@for i in 1 2 3 4 5; do echo "  CC      kernel/f$$i.o"; done
\t@echo $$PPID > $(CURDIR)/building
\t@if [ -f $(CURDIR)/slow ]; then sleep 60; fi
\t@mkdir -p $(O)/arch/x86/boot
\t@echo fake-bzImage > $(O)/arch/x86/boot/bzImage
\t@cp /bin/true $(O)/vmlinux
`;

export function makeFakeTree(dir: string, o: { slow?: boolean } = {}): string {
  mkdirSync(join(dir, 'kernel'), { recursive: true });
  writeFileSync(join(dir, 'Makefile'), MAKEFILE);
  writeFileSync(join(dir, 'Kconfig'), 'mainmenu "fake"\n');
  if (o.slow) writeFileSync(join(dir, 'slow'), '');
  return dir;
}
