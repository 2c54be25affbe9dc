import { Module } from '@nestjs/common';
import { DB, type Db } from '@keyward/db';
import { keyHandlers } from './key.handlers';
import { KeyReader } from './key.reader';

/** Keys and tenant policy: command handlers and the reader. Needs the platform module's DB, CLOCK and EventStore. */
@Module({
  providers: [
    { provide: KeyReader, inject: [DB], useFactory: (db: Db) => new KeyReader(db) },
    ...keyHandlers,
  ],
  exports: [KeyReader],
})
export class KeysModule {}
