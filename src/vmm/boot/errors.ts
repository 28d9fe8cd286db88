// Errors of kernel/initrd loading. Raised while the images are parsed and validated,
// before any VM exists, so a bad file never leaves KVM state behind.

import { UsageError } from '../../errors.js';

export class BootImageError extends UsageError {
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(path === undefined ? message : `${path}: ${message}`);
    this.name = 'BootImageError';
  }
}
