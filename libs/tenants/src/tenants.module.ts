import { Module } from '@nestjs/common';
import { DB, type Db } from '@keyward/db';
import { OperatorReader } from './operator.reader';
import { tenantHandlers } from './tenant.handlers';

/** Tenants and operators: command handlers and the reader the auth guard uses. */
@Module({
  providers: [
    { provide: OperatorReader, inject: [DB], useFactory: (db: Db) => new OperatorReader(db) },
    ...tenantHandlers,
  ],
  exports: [OperatorReader],
})
export class TenantsModule {}
