import type { Migration } from 'kysely';
import * as m0001 from './0001_event_store';
import * as m0002 from './0002_read_models';
import * as m0003 from './0003_keys';
import * as m0004 from './0004_usage';
import * as m0005 from './0005_replay';
import * as m0006 from './0006_signals';
import * as m0007 from './0007_webhooks';
import * as m0008 from './0008_secret_delivery';
import * as m0009 from './0009_usage_evaluation';
import * as m0010 from './0010_key_rotation_delivery';
import * as m0011 from './0011_usage_evaluation_bounded';

/** Every migration, by name; names sort in the order they apply. */
export const migrations: Record<string, Migration> = {
  '0001_event_store': m0001,
  '0002_read_models': m0002,
  '0003_keys': m0003,
  '0004_usage': m0004,
  '0005_replay': m0005,
  '0006_signals': m0006,
  '0007_webhooks': m0007,
  '0008_secret_delivery': m0008,
  '0009_usage_evaluation': m0009,
  '0010_key_rotation_delivery': m0010,
  '0011_usage_evaluation_bounded': m0011,
};
