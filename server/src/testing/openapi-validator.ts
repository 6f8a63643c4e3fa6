import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { SseParser } from '../chat/sse-parser.js';

// ajv-formats is CommonJS with a default export; under nodenext TypeScript types the import as its namespace.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

type Schema = Record<string, unknown>;
interface MediaType { schema?: Schema }
interface HeaderObject { required?: boolean; schema?: Schema }
interface ResponseObject { description?: string; content?: Record<string, MediaType>; headers?: Record<string, HeaderObject> }
interface Operation { responses: Record<string, ResponseObject> }
export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

/** An HTTP answer as supertest gives it. */
export interface ReceivedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text?: string;
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);
const DOC_ID = 'openapi.json';

/**
 * OpenAPI 3.0 schema to JSON Schema for Ajv. `nullable` becomes "null or the schema" (it also has to
 * admit null past an `enum` or an `allOf` $ref, where a `type` list would not). Objects with listed
 * properties are closed: a field the document does not name is a mismatch too, since a generated
 * client drops it.
 */
function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const { nullable, ...rest } = node as Schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(rest)) {
    if (key === '$ref' && typeof value === 'string') out.$ref = value.replace(/^#\//, `${DOC_ID}#/`);
    // A map of names to schemas, not a schema: a property may be called `nullable` or `properties`.
    else if (key === 'properties') out.properties = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, toJsonSchema(v)]));
    else out[key] = toJsonSchema(value);
  }
  if (out.properties !== undefined && out.additionalProperties === undefined) out.additionalProperties = false;
  return nullable === true ? { anyOf: [{ type: 'null' }, out] } : out;
}

const mediaTypeOf = (header: string | string[] | undefined): string | undefined =>
  (Array.isArray(header) ? header[0] : header)?.split(';')[0].trim().toLowerCase();

const excerpt = (value: unknown): string => {
  const json = JSON.stringify(value) ?? 'undefined';
  return json.length > 200 ? `${json.slice(0, 200)}…` : json;
};

const describeErrors = (errors: ErrorObject[] | null | undefined): string =>
  (errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`).join('; ');

/**
 * Checks real responses against an OpenAPI 3.0 document: the status is documented for the
 * operation, the Content-Type is one it lists, and the body (each event's data, for a
 * text/event-stream) validates against the schema given for that status.
 */
export class OpenApiValidator {
  private readonly ajv = new Ajv({ strict: false, allErrors: true });
  private readonly compiled = new Map<Schema, ValidateFunction>();

  constructor(private readonly doc: OpenApiDocument) {
    addFormats(this.ajv);
    // OpenAPI's own formats: a body of bytes is checked by its content type only.
    this.ajv.addFormat('binary', true).addFormat('byte', true);
    this.ajv.addSchema({ $id: DOC_ID, components: { schemas: toJsonSchema(doc.components.schemas) } });
  }

  /** Every operation, as `METHOD /path/{param}`. */
  operations(): string[] {
    return Object.entries(this.doc.paths).flatMap(([path, item]) =>
      Object.keys(item).filter((m) => METHODS.has(m)).map((m) => `${m.toUpperCase()} ${path}`));
  }

  /** What is wrong with `res` as an answer of `operation`; empty when it conforms. */
  check(operation: string, res: ReceivedResponse): string[] {
    const [method, path] = operation.split(' ');
    const op = this.doc.paths[path]?.[method.toLowerCase()];
    if (!op) return [`${operation} is not in the document`];
    // A 2xx or 4xx has to be listed (ApiErrors and swagger.ts list each one an operation answers
    // with); `default`, the envelope "4xx/5xx", stands for the unexpected 5xx only.
    const documented = op.responses[String(res.status)] ?? (res.status >= 500 ? op.responses.default : undefined);
    if (!documented) return [`status ${res.status} is not documented (documented: ${Object.keys(op.responses).join(', ')})`];
    const problems: string[] = [];
    for (const [name, header] of Object.entries(documented.headers ?? {})) {
      const raw = res.headers[name.toLowerCase()];
      const value = Array.isArray(raw) ? raw[0] : raw;
      if (value === undefined) {
        if (header.required) problems.push(`status ${res.status}: required header ${name} is missing`);
        continue;
      }
      if (!header.schema) continue;
      // A header is text: read it as the number its schema says it is, as a client would.
      const numeric = header.schema.type === 'integer' || header.schema.type === 'number';
      const validate = this.validator(header.schema);
      if (!validate(numeric && value.trim() !== '' ? Number(value) : value)) problems.push(`status ${res.status}: header ${name}: ${value} ${describeErrors(validate.errors)}`);
    }
    const type = mediaTypeOf(res.headers['content-type']);
    const content = documented.content ?? {};
    if (Object.keys(content).length === 0) {
      const hasBody = (res.text ?? '').length > 0 || (Buffer.isBuffer(res.body) && res.body.length > 0);
      if (hasBody) problems.push(`status ${res.status}: documented without a body, got ${type ?? 'no Content-Type'} ${(res.text ?? '').slice(0, 200)}`);
      return problems;
    }
    if (!type || !content[type]) {
      problems.push(`status ${res.status}: Content-Type ${type ?? '(none)'} is not documented (documented: ${Object.keys(content).join(', ')})`);
      return problems;
    }
    const schema = content[type].schema;
    if (!schema) return problems;
    const validate = this.validator(schema);
    if (type === 'text/event-stream') {
      const parser = new SseParser();
      const events = parser.push(res.text ?? '');
      if (events.length === 0) problems.push(`status ${res.status}: an event stream without events`);
      if (parser.hasPartial) problems.push(`status ${res.status}: the stream ended inside an event`);
      for (const [i, event] of events.entries()) {
        let data: unknown;
        try {
          data = JSON.parse(event.data);
        } catch {
          problems.push(`event ${i}: data is not JSON: ${event.data.slice(0, 200)}`);
          continue;
        }
        if (!validate(data)) problems.push(`event ${i}: ${this.explain(schema, data, validate)} in ${excerpt(data)}`);
      }
    } else if (type === 'application/json' || type.endsWith('+json')) {
      if (!validate(res.body)) problems.push(`status ${res.status}: ${this.explain(schema, res.body, validate)} in ${excerpt(res.body)}`);
    }
    return problems;
  }

  /** Why `data` failed; for a `oneOf`, only the errors of the alternative it came closest to (the others' are noise). */
  private explain(schema: Schema, data: unknown, failed: ValidateFunction): string {
    const alternatives = Array.isArray(schema.oneOf) ? (schema.oneOf as Schema[]) : [];
    const closest = alternatives
      .map((alternative) => {
        const validate = this.validator(alternative);
        validate(data);
        const ref = typeof alternative.$ref === 'string' ? alternative.$ref.split('/').pop() : 'an alternative';
        return { ref, errors: validate.errors ?? [] };
      })
      .sort((a, b) => a.errors.length - b.errors.length)[0];
    if (!closest || closest.errors.length === 0) return describeErrors(failed.errors);
    return `closest to ${closest.ref}: ${describeErrors(closest.errors)}`;
  }

  private validator(schema: Schema): ValidateFunction {
    let validate = this.compiled.get(schema);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema) as Schema);
      this.compiled.set(schema, validate);
    }
    return validate;
  }
}
