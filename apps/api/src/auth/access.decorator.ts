import { SetMetadata } from '@nestjs/common';
import type { Permission } from '@keyward/auth';

export const ACCESS = 'keyward:access';

export interface AccessRule {
  /** What a tenant caller needs. */
  permission?: Permission;
  /** The bootstrap token may call this route too (tenants and operators only). */
  bootstrap?: boolean;
  /** No credential at all: health, metrics, docs. */
  public?: boolean;
}

/** Every route states who may call it; a route that states nothing is refused to everyone. */
export const Access = (rule: AccessRule) => SetMetadata(ACCESS, rule);
export const Public = () => Access({ public: true });
