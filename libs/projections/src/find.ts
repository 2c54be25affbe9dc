import { NotFound } from '@keyward/core';
import type { InlineProjection } from '@keyward/event-store';
import { inlineProjections } from './inline-projections';

export function projectionNames(): string[] {
  return inlineProjections.map((p) => p.name);
}

/** The projection of that name, or NotFound listing the names there are. */
export function findProjection(name: string): InlineProjection {
  const projection = inlineProjections.find((p) => p.name === name);
  if (!projection) throw new NotFound(`no projection ${name}; there are: ${projectionNames().join(', ')}`);
  return projection;
}
