import type { SwaggerOptions } from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { JsonSchema } from '../api/responses.ts';
import { z } from 'zod';

/** JSON Schema of a request body or query, as the web app's action forms use it (GET /api/meta). */
/** A zod schema as the JSON Schema of what a client sends. */
export const jsonSchema = (s: z.ZodType): JsonSchema =>
  z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

/** The routes anyone may call; every other /api/ route needs a bearer token. */
export const OPEN_ROUTES = new Set(['/api/login', '/api/health', '/api/openapi.json']);

/**
 * @fastify/swagger's options: OpenAPI 3.1 built from every route's zod schemas (the same ones that
 * validate requests), bearer security on every route but the open ones, the web app's files hidden.
 */
export function swaggerOptions(): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'tuban API',
        version: '0.1.0',
        description: '两违图斑 workflow: patches, verification, rectification, deadlines, reports, the monthly batches',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: (doc) => {
      if (!doc.url.startsWith('/api/')) return { schema: { hide: true }, url: doc.url };
      const out = jsonSchemaTransform(doc);
      const schema = out.schema as Record<string, unknown>;
      if (!OPEN_ROUTES.has(doc.url)) schema.security = [{ bearer: [] }];
      return out;
    },
  };
}
