import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { sql } from 'kysely';
import { DomainError } from '@keyward/core';
import type { Db } from '@keyward/db';
import { checkedAddresses, hostOf, resolveWithDns, type Resolve } from './address-policy';
import type { SecretBox } from './secret-box';
import { SIGNATURE_HEADER, signatureHeader } from './signing';

export interface DeliverySettings {
  box: SecretBox;
  allowPrivate: boolean;
  /** Longest an attempt may take, connect to last byte. */
  timeoutMs: number;
  resolve?: Resolve;
}

export type DeliveryOutcome =
  | { status: 'succeeded' | 'retry' | 'failed'; statusCode: number | null; error: string | null }
  | { status: 'skipped'; reason: string };

/** lastError is for an operator's eye; a receiver's long error text is cut. */
const MAX_ERROR_LENGTH = 500;

/**
 * One attempt at one delivery: load it, sign its stored body with the webhook's decrypted
 * secret, POST, and record the attempt. `final` says no retry follows, so a failure is `failed`.
 * An address refused by policy is `failed` at once: retrying cannot make it allowed. A delivery
 * that is no longer pending (a repeated job) is skipped, so a receiver never gets it twice from
 * Keyward's side once it answered 2xx.
 */
export async function attemptDelivery(
  db: Db,
  deliveryId: string,
  final: boolean,
  settings: DeliverySettings,
): Promise<DeliveryOutcome> {
  const row = await db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
    .innerJoin('webhook_secrets as s', 's.webhook_id', 'd.webhook_id')
    .select(['d.id', 'd.status', 'd.body', 'd.webhook_id', 'w.url', 's.ciphertext'])
    .where('d.id', '=', deliveryId)
    .executeTakeFirst();
  if (!row) return { status: 'skipped', reason: 'no such delivery or webhook' };
  if (row.status !== 'pending') return { status: 'skipped', reason: `delivery already ${row.status}` };

  const secret = settings.box.decrypt(row.ciphertext, row.webhook_id);
  let statusCode: number | null = null;
  let error: string | null = null;
  let permanent = false;
  try {
    statusCode = await postSigned(row.url, row.body, secret, settings);
    if (statusCode < 200 || statusCode > 299) error = `the receiver answered ${statusCode}`;
  } catch (caught) {
    error = caught instanceof Error ? caught.message : String(caught);
    permanent = caught instanceof DomainError;
  }
  const succeeded = error === null;
  const status = succeeded ? 'succeeded' : final || permanent ? 'failed' : 'pending';
  await db
    .updateTable('webhook_deliveries')
    .set({
      status,
      attempts: sql<number>`attempts + 1`,
      last_status_code: statusCode,
      last_error: error?.slice(0, MAX_ERROR_LENGTH) ?? null,
      delivered_at: succeeded ? new Date() : null,
    })
    .where('id', '=', deliveryId)
    .where('status', '=', 'pending')
    .execute();
  return { status: status === 'pending' ? 'retry' : status, statusCode, error };
}

/**
 * POSTs the body, signed with `secret` as every webhook is (`Keyward-Signature`), and answers the
 * status code. Also how a scheduled rotation hands a new key to its secretDelivery URL. The address policy is applied to the very address
 * the socket connects to (a lookup of our own, not a check before a second lookup), so a name
 * that resolved to a public address at registration cannot be rebound to a private one now.
 * Redirects are not followed: a 3xx is a failed attempt.
 */
export function postSigned(
  url: string,
  body: string,
  secret: string,
  settings: Pick<DeliverySettings, 'allowPrivate' | 'timeoutMs' | 'resolve'>,
): Promise<number> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  const host = hostOf(target);
  const checkLiteral = !settings.allowPrivate && isIP(host) !== 0;
  return (checkLiteral ? checkedAddresses(host) : Promise.resolve()).then(
    () =>
      new Promise<number>((resolve, reject) => {
        const req = transport.request(
          target,
          {
            method: 'POST',
            headers: {
              'Content-Type': 'application/json',
              'Content-Length': Buffer.byteLength(body),
              'User-Agent': 'Keyward-Webhooks/1',
              [SIGNATURE_HEADER]: signatureHeader(secret, body, Math.floor(Date.now() / 1000)),
            },
            lookup: settings.allowPrivate ? undefined : guardedLookup(settings.resolve ?? resolveWithDns),
          },
          (res) => {
            // The answer's body is not needed; drain it so the socket is freed.
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', reject);
          },
        );
        const timer = setTimeout(
          () => req.destroy(new Error(`no answer within ${settings.timeoutMs} ms`)),
          settings.timeoutMs,
        );
        req.on('close', () => clearTimeout(timer));
        req.on('error', reject);
        req.end(body);
      }),
  );
}

function guardedLookup(resolve: Resolve): LookupFunction {
  return (hostname, options, callback) => {
    checkedAddresses(hostname, resolve).then(
      (addresses) => {
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const usable = family ? addresses.filter((a) => a.family === family) : addresses;
        if (usable.length === 0) {
          callback(new Error(`${hostname} has no IPv${family} address`), '', 0);
        } else if (options.all) {
          (callback as unknown as (e: null, a: typeof usable) => void)(null, usable);
        } else {
          callback(null, usable[0]!.address, usable[0]!.family);
        }
      },
      (error: Error) => callback(error as NodeJS.ErrnoException, '', 0),
    );
  };
}
