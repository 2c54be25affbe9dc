export * from './tenant';
export * from './tenants.projection';
export * from './operator.reader';
export * from './tenant.handlers';
export * from './tenants.module';
