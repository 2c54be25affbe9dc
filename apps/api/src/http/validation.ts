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

/** One error of a Fastify route schema (ajv). */
export interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** ajv's errors in the field shape every other 400 has: `{ field: "source.ip", message }`. */
export function schemaFieldErrors(errors: readonly SchemaError[]): FieldError[] {
  return errors.map((error) => {
    const path = error.instancePath.split('/').filter(Boolean).join('.');
    const within = (name: unknown) => (path ? `${path}.${String(name)}` : String(name));
    if (error.keyword === 'additionalProperties') {
      const field = within(error.params.additionalProperty);
      return { field, message: `${field} is not a known field` };
    }
    if (error.keyword === 'required') {
      const field = within(error.params.missingProperty);
      return { field, message: `${field} is required` };
    }
    const field = path || '(body)';
    return { field, message: `${field} ${error.message ?? 'is not valid'}` };
  });
}
