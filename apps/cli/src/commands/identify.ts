import { timingSafeEqual } from 'node:crypto';
import { Option, type Command } from 'commander';
import { DomainError, ID_PREFIX, NotFound } from '@keyward/core';
import { KeyReader, keyHash, keyStatusAt, parseKey, type KeyStatus } from '@keyward/keys';
import { outputFor, type Output } from '../output';
import { withReadDb } from './read-db';

/**
 * `identify`: a responder holding a leaked key learns whose it is, without using it. The key is
 * read from stdin only (a command line lands in shell history and the process list), it is never
 * printed, not even in an error, and it is looked up by its id and compared with the stored hash
 * in a read-only transaction: no verify, no usage counted, nothing written.
 */

/** `kw_<env>_` and the id, secret and check (20 + 33 + 6): only to tell a bad form from a bad checksum. */
const KEY_SHAPE = /^kw_(live|stage|dev)_[0-9A-Za-z]{59}$/;
/** Far more than one key: input past this is not a key, and is not read further. */
const MAX_INPUT = 4096;
const TENANT_ID = /^[a-z0-9-]{3,40}$/;

/** The input is not one well-formed key. The message describes it and never quotes it. */
class KeyUnreadable extends DomainError {
  readonly code = 'KEY_UNREADABLE';
}

/** The secret does not match the stored hash of the key its id names: it is not that key. */
class KeyMismatch extends DomainError {
  readonly code = 'KEY_MISMATCH';
}

class Cancelled extends DomainError {
  readonly code = 'CANCELLED';
}

interface Identified {
  /** Whether the secret matches the stored hash of the key its id names. */
  matches: boolean;
  /** The key the input's id part names; on a mismatch, the key it is NOT. */
  claimedKeyId: string;
  /** The rest only when it matches: a non-matching input is not reported as that key. */
  tenantId: string | null;
  key: {
    id: string;
    prefix: string;
    name: string;
    status: KeyStatus;
    environment: string;
    scopes: string[];
    expiresAt: string;
    lastUsedAt: string | null;
  } | null;
  account: { id: string; name: string; environment: string; status: string } | null;
}

export function registerIdentify(program: Command): void {
  program
    .command('identify')
    .description('read one raw key from stdin and name its key and account, without verifying or counting it')
    .addOption(new Option('--tenant <id>', 'only a key of this tenant counts as found'))
    // Both let a key typed on the command line reach the action, which refuses it without
    // quoting it: commander's own messages would print an unknown option or argument back.
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (options: { tenant?: string }, command: Command) => {
      if (command.args.length > 0) {
        command.error(
          'error: identify takes no arguments and reads the key from stdin, e.g. `pbpaste | keyward identify`. ' +
            'A key typed on a command line is in your shell history and the process list: treat it as exposed.',
          { exitCode: 2, code: 'keyward.identify.arguments' },
        );
      }
      if (options.tenant !== undefined && !TENANT_ID.test(options.tenant)) {
        command.error('error: --tenant is not a tenant id (3 to 40 of [a-z0-9-])', {
          exitCode: 2,
          code: 'keyward.identify.tenant',
        });
      }
      const out = outputFor(command);
      const identified = await identify(await readOneKey(out), options.tenant);
      out.result(identified, () => identifiedText(identified));
      if (!identified.matches) {
        throw new KeyMismatch(`the secret does not match the stored hash of ${identified.claimedKeyId}`);
      }
    });
}

async function identify(raw: string, tenant: string | undefined): Promise<Identified> {
  if (!KEY_SHAPE.test(raw)) {
    throw new KeyUnreadable(
      `the input (${raw.length} characters) is not a Keyward key: expected kw_live_, kw_stage_ or kw_dev_ and 59 letters and digits`,
    );
  }
  const parsed = parseKey(raw);
  if (!parsed) {
    throw new KeyUnreadable(
      "the input has a key's form but its checksum does not match: it was mistyped, cut short or altered",
    );
  }
  const keyId = `${ID_PREFIX.key}${parsed.idPart}`;
  return withReadDb((db) =>
    // Read-only: PostgreSQL itself refuses any write this lookup could make.
    db
      .transaction()
      .setAccessMode('read only')
      .execute(async (trx) => {
        const reader = new KeyReader(trx);
        const record = await reader.record(keyId);
        // Another tenant's key is as absent as a missing one when a tenant is named.
        if (!record || (tenant !== undefined && record.key.tenantId !== tenant)) {
          throw new NotFound(`no key ${keyId}${tenant === undefined ? '' : ` in tenant ${tenant}`}`);
        }
        if (!sameHash(keyHash(raw), record.key.secretHash)) {
          return { matches: false, claimedKeyId: keyId, tenantId: null, key: null, account: null };
        }
        const listing = await reader.get(record.key.tenantId, keyId);
        if (!listing) throw new NotFound(`no key ${keyId}`);
        return {
          matches: true,
          claimedKeyId: keyId,
          tenantId: record.key.tenantId,
          key: {
            id: keyId,
            prefix: listing.prefix,
            name: listing.name,
            status: keyStatusAt(record.key, new Date()),
            environment: record.key.environment,
            scopes: record.key.scopes,
            expiresAt: record.key.expiresAt,
            lastUsedAt: listing.last_used_at?.toISOString() ?? null,
          },
          account: {
            id: record.account.id,
            name: record.account.name,
            environment: record.account.environment,
            status: record.account.status,
          },
        };
      }),
  );
}

/** Constant time, so how long the answer takes says nothing about how much of the hash matched. */
function sameHash(computedHex: string, storedHex: string): boolean {
  const computed = Buffer.from(computedHex, 'hex');
  const stored = Buffer.from(storedHex, 'hex');
  return computed.length === stored.length && timingSafeEqual(computed, stored);
}

function identifiedText(identified: Identified): string[] {
  if (!identified.matches || !identified.key || !identified.account) {
    return [
      `NOT A MATCH: the input names key ${identified.claimedKeyId} by its id, but its secret does not match that key's stored hash.`,
      'It is not that key: a mistyped or altered secret, or a made-up key with a valid checksum.',
    ];
  }
  const { key, account } = identified;
  const rows: [string, string][] = [
    ['key', `${key.id} (${key.prefix})`],
    ['name', key.name],
    ['status now', `${key.status}, expires ${key.expiresAt}`],
    ['environment', key.environment],
    ['scopes', key.scopes.join(',') || '-'],
    ['last used', key.lastUsedAt ?? 'never'],
    ['account', `${account.id} (${account.name}, ${account.environment}, ${account.status})`],
    ['tenant', identified.tenantId ?? '-'],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return [
    `MATCH: the secret matches the stored hash of ${key.id}`,
    ...rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`),
    'Nothing was verified, counted or written.',
  ];
}

/** One key from stdin, its trailing newline stripped. */
async function readOneKey(out: Output): Promise<string> {
  const input = process.stdin.isTTY ? await readFromTerminal(out) : await readFromPipe();
  const text = input.replace(/\r?\n$/, '');
  if (text === '') throw new KeyUnreadable('no key on stdin');
  if (/[\r\n]/.test(text)) throw new KeyUnreadable('stdin holds more than one line: give one key');
  return text;
}

async function readFromPipe(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_INPUT) {
      process.stdin.destroy();
      throw new KeyUnreadable(`stdin holds more than ${MAX_INPUT} bytes: give one key`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** At a terminal the key is typed or pasted without being shown, so it stays out of the scrollback. */
function readFromTerminal(out: Output): Promise<string> {
  const stdin = process.stdin;
  out.note('Paste the key and press Enter (it is not shown):');
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (error?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      if (error) reject(error);
      else resolve(text);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new Cancelled('cancelled'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
        if (text.length > MAX_INPUT) return finish(new KeyUnreadable('the input is too long to be a key'));
      }
    };
    stdin.on('data', onData);
  });
}
