import { Global, Module } from '@nestjs/common';
import { DB, type Db } from '@keyward/db';
import { EXPOSURE_FOLLOW_UP } from '@keyward/keys';
import { ExposureSignals } from './exposure-signals';
import { signalHandlers } from './signal.handlers';
import { SignalReader } from './signal.reader';

/**
 * Signals: command handlers and the reader. Global only so that keys' ReportExposures handler,
 * in a module that cannot import this one (signals build on keys), finds EXPOSURE_FOLLOW_UP.
 * Needs the platform module's DB and EventStore.
 */
@Global()
@Module({
  providers: [
    { provide: SignalReader, inject: [DB], useFactory: (db: Db) => new SignalReader(db) },
    {
      provide: EXPOSURE_FOLLOW_UP,
      inject: [SignalReader],
      useFactory: (reader: SignalReader) => new ExposureSignals(reader),
    },
    ...signalHandlers,
  ],
  exports: [SignalReader, EXPOSURE_FOLLOW_UP],
})
export class SignalsModule {}
