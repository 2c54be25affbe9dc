import type { EventMetadata } from '@keyward/event-store';
import { actorOf, type Caller } from './caller';

/** What every command carries besides its own fields: who asked, and in which request. */
export interface CommandContext {
  caller: Caller;
  correlationId: string;
  requestId?: string | null;
  sourceIp?: string | null;
}

export function metadataFor(ctx: CommandContext, reason?: string | null): EventMetadata {
  return {
    actor: actorOf(ctx.caller),
    reason: reason ?? null,
    correlationId: ctx.correlationId,
    requestId: ctx.requestId ?? null,
    sourceIp: ctx.sourceIp ?? null,
  };
}

/** The tenant a command acts in; the bootstrap token has none and may not act on tenant data. */
export function tenantOf(caller: Caller): string {
  if (caller.kind === 'bootstrap' || caller.tenantId === null) {
    throw new Error('this caller acts in no tenant');
  }
  return caller.tenantId;
}
