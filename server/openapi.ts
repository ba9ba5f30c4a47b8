import { z } from 'zod';
import { ActionBodies, PatchQuerySchema } from '../workflow/actions.schema.ts';
import { RULES, type Action } from '../workflow/lifecycle.ts';

/** JSON Schema of a request body or query, as OpenAPI and the web app's action forms use it. */
export const jsonSchema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });

/** OpenAPI 3.1 description of the API, built from the same zod schemas that validate requests. */
export function openApiDocument(): Record<string, unknown> {
  const json = jsonSchema;
  const bearer = [{ bearer: [] }];
  const paths: Record<string, unknown> = {
    '/api/login': { post: { summary: 'Exchange username and password for an API token', requestBody: { content: { 'application/json': { schema: json(z.object({ username: z.string(), password: z.string() })) } } }, responses: { 429: { description: 'too many failed logins for this user or from this address; see Retry-After' }, 200: { description: 'token and user' }, 401: { description: 'wrong credentials' } } } },
    '/api/me': { get: { summary: 'The signed-in user', security: bearer } },
    '/api/patches': { get: { summary: 'Patches, filtered and paged; town users see only their town', security: bearer, parameters: Object.entries((json(PatchQuerySchema) as { properties: Record<string, unknown> }).properties).map(([name, schema]) => ({ name, in: 'query', schema })) } },
    '/api/patches/{code}': { get: { summary: 'One patch with history, observations across months, evidence and allowed actions', security: bearer, parameters: [{ name: 'code', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'patch' }, 404: { description: 'no such patch in your scope' } } } },
    '/api/patches/{code}/evidence': { post: { summary: 'Attach a photo or PDF (body = file; ?filename=&note=)', security: bearer, requestBody: { content: { 'image/jpeg': {}, 'image/png': {}, 'application/pdf': {} } }, responses: { 201: { description: 'stored' }, 400: { description: 'empty, too large or not JPEG/PNG/PDF' } } } },
    '/api/patches/{code}/notes': { post: { summary: 'Add a note to a patch (no state change)', security: bearer, requestBody: { content: { 'application/json': { schema: json(z.object({ text: z.string().min(1).max(4000) })) } } }, responses: { 201: { description: 'the patch with the note in its history' } } } },
    '/api/evidence/{id}': { get: { summary: 'Download an evidence file', security: bearer } },
    '/api/export': { get: { summary: "The month's patches as gpkg, shp (zip), geojson, kml, csv, xlsx, pdf verification sheets or a zip package per town; town users get their town only", security: bearer, parameters: [{ name: 'month', in: 'query', required: true, schema: { type: 'string' } }, { name: 'town', in: 'query', schema: { type: 'string' } }, { name: 'format', in: 'query', required: true, schema: { type: 'string', enum: ['gpkg', 'shp', 'geojson', 'kml', 'csv', 'xlsx', 'pdf', 'zip'] } }] } },
    '/api/reports/monthly': { get: { summary: 'Monthly town report with zero-growth ranking', security: bearer, parameters: [{ name: 'month', in: 'query', required: true, schema: { type: 'string', pattern: '^\\d{4}-\\d{2}$' } }] } },
    '/api/reports/board': { get: { summary: 'Supervisor board: deadlines due within N working days, overdue, escalated', security: bearer, parameters: [{ name: 'days', in: 'query', schema: { type: 'integer', default: 3 } }] } },
    '/api/users': { get: { summary: 'Users (admin)', security: bearer }, post: { summary: 'Create a user (admin)', security: bearer } },
    '/api/users/{username}/tokens': { post: { summary: 'Issue an API token for a user, valid TUBAN_TOKEN_DAYS (admin)', security: bearer, parameters: [{ name: 'username', in: 'path', required: true, schema: { type: 'string' } }] } },
    '/api/users/{username}/revoke': { post: { summary: "Revoke every live token of a user: all their sessions end (admin)", security: bearer, parameters: [{ name: 'username', in: 'path', required: true, schema: { type: 'string' } }] } },
    '/api/users/{username}/disable': { post: { summary: 'Disable a user: no login, every token revoked (admin)', security: bearer, parameters: [{ name: 'username', in: 'path', required: true, schema: { type: 'string' } }] } },
    '/api/users/{username}/enable': { post: { summary: 'Let a disabled user log in again (admin)', security: bearer, parameters: [{ name: 'username', in: 'path', required: true, schema: { type: 'string' } }] } },
    '/api/users/{username}/password': { post: { summary: "Set a user's password (at least 10 characters, not the user name); revokes their tokens (admin)", security: bearer, parameters: [{ name: 'username', in: 'path', required: true, schema: { type: 'string' } }], requestBody: { content: { 'application/json': { schema: json(z.object({ password: z.string().min(10) })) } } } } },
    '/api/logout': { post: { summary: 'Revoke the token this request came with', security: bearer, responses: { 204: { description: 'signed out' } } } },
  };
  for (const [action, body] of Object.entries(ActionBodies)) {
    const rule = RULES[action as Action];
    paths[`/api/patches/{code}/actions/${action}`] = {
      post: {
        summary: `${rule.label} — from ${rule.from.join('/')}; roles ${rule.roles.join('/')}`,
        security: bearer,
        parameters: [{ name: 'code', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: { content: { 'application/json': { schema: json(body) } } },
        responses: { 200: { description: 'the patch after the action' }, 403: { description: 'role not allowed' }, 404: { description: 'no such patch in your scope' }, 409: { description: 'not allowed from the current state; the message lists the allowed moves' } },
      },
    };
  }
  return { openapi: '3.1.0', info: { title: 'tuban API', version: '0.1.0', description: '两违图斑 workflow: patches, verification, rectification, deadlines, reports' }, components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }, paths };
}
