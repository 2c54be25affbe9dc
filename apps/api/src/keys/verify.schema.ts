const text = (maxLength: number, example: string) => ({ type: 'string', maxLength, example }) as const;

/**
 * The body of POST /v1/verify as a JSON schema: Fastify compiles it (ajv) and checks every body
 * before the route runs, in a few microseconds where class-validator's DTO took tens, and the
 * OpenAPI document shows the same object. Any string is a well-formed `key`: a key of the wrong
 * form answers `MALFORMED`, not 400.
 */
export const VERIFY_BODY = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', example: 'kw_live_...' },
    scope: text(200, 'tickets:read'),
    resource: text(2048, 'site:plant-7/asset-group:pumps/asset:P-101'),
    environment: text(32, 'production'),
    source: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ip: { ...text(64, '10.20.1.7'), description: 'one IPv4 or IPv6 address' },
        system: text(200, 'helpdesk'),
      },
    },
  },
} as const;

/** A source ip is one address, by the rule the verify decision applies (isIpAddress). */
export const SOURCE_IP_MESSAGE =
  'source.ip must be one IPv4 or IPv6 address such as 10.20.1.7 or 2001:db8::7 (no port, prefix or zone)';
