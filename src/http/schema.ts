/**
 * Routes are schemas (DESIGN.md): every route declares its params, querystring, body and replies
 * once, as zod schemas. The same declaration validates the request (the compilers below),
 * types `request.params/query/body` and the handler's return value (fastify-type-provider-zod's
 * `ZodTypeProvider`), and becomes the OpenAPI document (src/http/openapi.ts).
 *
 * A failing part answers exactly as the hand-written checks did before (SPEC §3): a path id
 * that cannot exist is `404 { error: "<Thing> not found", code: NOT_FOUND }` (the id schema's
 * message is that text), a bad body or query is `400 VALIDATION_FAILED` with one `fields` entry
 * per failing field, and an issue that carries its own answer (e.g. INVALID_ROOM with `rooms`)
 * is answered with it.
 */
import type { FastifySchemaCompiler, FastifySchemaValidationError, FastifySerializerCompiler } from 'fastify';
import type { SchemaErrorDataVar } from 'fastify/types/schema.js';
import { z } from 'zod';
import { HttpError } from './errors.js';
import type { FieldError } from '../publish/validate.js';

export type { ZodTypeProvider } from 'fastify-type-provider-zod';

// ------------------------------------------------------------------ documented-only parts

const DOCUMENTED_ONLY = new WeakSet<object>();

/**
 * A part that is declared for the document but validated by the handler itself: the publish
 * bodies (their payloads must be depth-checked before anything recursive touches them, and
 * their messages come from the protocol package's validator) and headers the handler reads raw.
 * Typed `unknown` so the handler cannot mistake it for a checked value.
 */
export function documentedOnly(schema: z.ZodType): z.ZodType<unknown> {
  const copy = schema.clone();
  DOCUMENTED_ONLY.add(copy);
  return copy as z.ZodType<unknown>;
}

// ------------------------------------------------------------------ compilers

/** A failed part as Fastify carries it, keeping zod's issue (its path tells `a[0].b` from `a.0.b`). */
interface SchemaIssue extends FastifySchemaValidationError {
  params: { issue: z.core.$ZodIssue };
}

export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  if (DOCUMENTED_ONLY.has(schema)) return () => true;
  // An absent (or JSON null) body is an empty object, as the hand-written checks had it.
  const absentIsEmpty = httpPart === 'body';
  return (data: unknown) => {
    const result = schema.safeParse(absentIsEmpty ? (data ?? {}) : data);
    if (result.success) return { value: result.data };
    const issues: SchemaIssue[] = result.error.issues.map((issue) => ({
      keyword: issue.code,
      instancePath: `/${issue.path.map(String).join('/')}`,
      schemaPath: '#',
      params: { issue },
      message: issue.message,
    }));
    return { error: issues };
  };
};

/**
 * Replies are serialized as before (JSON.stringify): the response schemas document them and
 * type the handlers, and the OpenAPI tests check real answers against them; validating every
 * reply at run time would add a pass over each answer and could turn a harmless extra field into
 * a 500.
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = () => (data) => JSON.stringify(data);

// ------------------------------------------------------------------ answers to invalid parts

/** An answer attached to a zod issue (`ctx.addIssue({ ..., params: answerFor(err) })`): it wins over the generic 400. */
export function answerFor(error: HttpError): { answer: HttpError } {
  return { answer: error };
}

function attachedAnswer(issues: readonly FastifySchemaValidationError[]): HttpError | null {
  for (const e of issues) {
    const issue = (e as SchemaIssue).params?.issue;
    const answer = issue?.code === 'custom' ? (issue.params as { answer?: unknown } | undefined)?.answer : undefined;
    if (answer instanceof HttpError) return answer;
  }
  return null;
}

/** One `fields` entry per issue, named as the caller wrote it: `rooms[0]`, `item_details.quantity`, `body` for the whole. */
function fieldsOfIssues(issues: readonly FastifySchemaValidationError[]): FieldError[] {
  return issues.map((e) => {
    const { path, message } = (e as SchemaIssue).params.issue;
    const field = path.length ? path.map((p, i) => (typeof p === 'number' ? `[${p}]` : (i ? '.' : '') + String(p))).join('') : 'body';
    return { field, message };
  });
}

/** `400 VALIDATION_FAILED` naming each field, with the text `<prefix>: field: message; …`. */
export function validationFailed(prefix: string, fields: FieldError[]): HttpError {
  return new HttpError(400, 'VALIDATION_FAILED', `${prefix}: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, { fields });
}

/**
 * Builds a route's `schemaErrorFormatter`: attached answers first, then path ids (404 with the
 * id schema's message), then `render(fields, part)` for the query, body or headers.
 */
export function formatInvalid(render: (fields: FieldError[], part: SchemaErrorDataVar) => HttpError) {
  return (issues: FastifySchemaValidationError[], part: SchemaErrorDataVar): Error => {
    const attached = attachedAnswer(issues);
    if (attached) return attached;
    if (part === 'params') return new HttpError(404, 'NOT_FOUND', issues[0]?.message ?? 'Not found');
    return render(fieldsOfIssues(issues), part);
  };
}

/** The app-wide formatter: `Invalid request: …` for bodies, `Invalid query: …` for query strings. */
export const schemaErrorFormatter = formatInvalid((fields, part) => validationFailed(part === 'querystring' ? 'Invalid query' : 'Invalid request', fields));

// ------------------------------------------------------------------ shared pieces

/** What every id the server hands out looks like (UUIDs, slugs): anything else cannot exist. */
export const RESOURCE_ID = /^[0-9a-zA-Z_-]{1,64}$/;

/**
 * A resource id in the path. One that cannot exist answers as one that does not:
 * `404 { error: "<thing> not found", code: NOT_FOUND }`.
 */
export function pathId(thing: string, description?: string) {
  const id = z.string().regex(RESOURCE_ID, { error: `${thing} not found` });
  return description ? id.describe(description) : id;
}

/** Registered component names, so the document says `$ref: '#/components/schemas/<id>'` rather than repeating them. */
export function component<T extends z.ZodType>(id: string, schema: T, description?: string): T {
  return schema.meta({ id, ...(description ? { description } : {}) }) as T;
}

export const ErrorBody = component(
  'Error',
  z.looseObject({
    error: z.string().describe('Human-readable text'),
    code: z.string().describe('Machine-readable code, e.g. VALIDATION_FAILED, NOT_FOUND, UNAUTHORIZED, AUTH_INVALID_API_KEY'),
    fields: z
      .array(z.object({ field: z.string().describe('Path of the field as the caller sent it, e.g. payload.item_details.quantity, events[2].account_ids'), message: z.string() }))
      .optional()
      .describe('VALIDATION_FAILED and PAYLOAD_TOO_LARGE: one entry per failing field'),
  }),
  'Every error answer (SPEC §3): HTTP status plus { error, code }, and code-specific fields',
);

/** A JSON reply with its description (the document's response object). */
export function json<T extends z.ZodType>(description: string, schema: T) {
  return { description, content: { 'application/json': { schema } } };
}

/** An error reply: `{ error, code, … }` with the codes this status carries on this route. */
export function errorReply(description: string) {
  return json(description, ErrorBody);
}

/** Answers every authenticated route may give. */
export const AUTH_ERRORS = {
  401: errorReply('UNAUTHORIZED: missing or invalid admin token (Authorization: Bearer <admin token>)'),
} as const;

/** A bad JSON body, a wrong content type, a body over the route's limit. */
export const BODY_ERRORS = {
  413: errorReply('PAYLOAD_TOO_LARGE: the request body is over the limit'),
  415: errorReply('UNSUPPORTED_MEDIA_TYPE: the body must be application/json'),
} as const;

export const STORE_ERRORS = {
  503: errorReply('STORE_UNAVAILABLE: the store is unreachable; nothing was done, retry later (Retry-After)'),
} as const;

/** The admin API: the admin token, and the answers every admin route may give. */
export const ADMIN = { security: [{ adminToken: [] }] };
export const ADMIN_ERRORS = { ...AUTH_ERRORS, ...STORE_ERRORS } as const;
export const BAD_BODY = errorReply('VALIDATION_FAILED (fields: each failing field) or INVALID_JSON');

/** An ISO-8601 date-time string, as the store writes them. */
export const dateTime = () => z.string().meta({ format: 'date-time' });

/** 204: nothing in the body. */
export const noContent = (description: string) => z.null().describe(description);
