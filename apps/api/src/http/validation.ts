import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { ValidationFailed, type FieldError } from '@keyward/core';

/** Flattens class-validator's tree into `{ field: "rotationPolicy.maxKeyAgeDays", message }`. */
export function fieldErrors(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.entries(error.constraints ?? {}).map(([rule, message]) => ({
      field,
      message: rule === 'whitelistValidation' ? `${field} is not a known field` : message,
    }));
    return [...own, ...fieldErrors(error.children ?? [], field)];
  });
}

/**
 * Every DTO whitelists its fields: an unknown field is a 400, not silently dropped. No implicit
 * conversion: a string where a number belongs is an error (query DTOs convert explicitly).
 */
export function validationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => new ValidationFailed('the request is not valid', fieldErrors(errors)),
  });
}
