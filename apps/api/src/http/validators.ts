import { ValidateBy, ValidateIf, type ValidationOptions } from 'class-validator';
import { cidrError } from '@keyward/accounts';
import { isStorableText } from '@keyward/core';

/** An IPv4 or IPv6 CIDR, by the same rule the aggregate applies. */
export function IsCidr(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isCidr',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && cidrError(value) === null,
        defaultMessage: () => '$property must hold IPv4 or IPv6 CIDRs such as 10.20.0.0/16',
      },
    },
    options,
  );
}

/** A field that may be named in no request, with the reason why. */
export function Never(reason: string): PropertyDecorator {
  return ValidateBy({ name: 'never', validator: { validate: () => false, defaultMessage: () => reason } });
}

/** Text PostgreSQL can store (see isStorableText); a 400 here instead of a 500 from the store. */
export function IsStorableText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isStorableText',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || isStorableText(value),
        defaultMessage: () => '$property must be text without NUL characters or unpaired surrogates',
      },
    },
    options,
  );
}

/** May be left out but not sent as null: for fields with no "none" (IsOptional would let null through to the store). */
export const OptionalNotNull = () => ValidateIf((_body: object, value: unknown) => value !== undefined);
