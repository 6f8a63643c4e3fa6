/**
 * The API's JSON bodies are small, flat objects (the deepest is an array of file ids). A body
 * nested deeper or holding more values than any of them could was walked recursively by
 * class-transformer before validation refused it: ~1,500 levels in 3 KB overflowed the stack (a
 * 500), and 240 KB of nesting or 22,000 unknown keys held the event loop for 0.3–0.7 s per request.
 * So a body is checked first, iteratively and with early exits, at a cost bounded by these limits.
 */
export const JSON_MAX_DEPTH = 8;
export const JSON_MAX_VALUES = 1000;

/**
 * Keys named after the built-in properties every object has (`__proto__`, `constructor`,
 * `toString`, …, and a function's `prototype`). Express' JSON parser and multer's field parser
 * make them own keys of the body, and class-validator's unknown-field check looks each key up in a
 * plain object, where these names are found on its prototype: `{"title":"t","__proto__":{…}}` or
 * a multipart field `constructor[prototype][title]` passed as known fields. No DTO has such a
 * field, and on the way to the code they are what prototype pollution is made of: refused.
 */
const BUILT_IN_KEYS: ReadonlySet<string> = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);

/** Why a body is refused, and the field at fault when it is one (dotted path, as validation names fields). */
export interface JsonShapeRefusal {
  message: string;
  field?: string;
}

/** Where the value came from: a request body (JSON, or multipart fields) or a query string; it names the culprit in messages. */
export type JsonSource = 'body' | 'query';
const WHOLE: Record<JsonSource, string> = { body: 'Request body', query: 'Query string' };

interface Pending {
  value: unknown;
  depth: number;
  /** The key (or array index) this value is under, and its container's entry: the path, built only when needed. */
  key?: string;
  parent?: Pending;
}

function pathOf(entry: Pending | undefined, key: string): string {
  const parts = [key];
  for (let at = entry; at?.key !== undefined; at = at.parent) parts.push(at.key);
  return parts.reverse().join('.');
}

/**
 * Why a parsed JSON body is refused, or undefined when it is acceptable: too deep, too many
 * values, a NUL character (U+0000) or a lone UTF-16 surrogate ("\ud800" in JSON) in a key or
 * string, or a key named after a built-in object property (BUILT_IN_KEYS), at any depth. NUL has
 * no use in chat text or titles, and PostgreSQL cannot store it in text at all; a lone surrogate
 * is no character at all, and was answered as given but stored as U+FFFD. Refused alike on both
 * databases. Also run on multipart bodies' fields and on query strings (validation.pipe.ts);
 * `source` says which, so that the message names the body or the query parameter at fault.
 */
export function jsonShapeRefusal(root: unknown, source: JsonSource = 'body'): JsonShapeRefusal | undefined {
  const whole = WHOLE[source];
  const stack: Pending[] = [{ value: root, depth: 0 }];
  let values = 1;
  while (stack.length > 0) {
    const entry = stack.pop()!;
    const { value, depth } = entry;
    if (typeof value === 'string') {
      const problem = stringProblem(value);
      if (problem) return refusalOf(problem, source, entry);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= JSON_MAX_DEPTH) return { message: `${whole} is nested deeper than ${JSON_MAX_DEPTH} levels` };
    const children = Array.isArray(value) ? (value as unknown[]) : Object.keys(value);
    values += children.length;
    if (values > JSON_MAX_VALUES) return { message: `${whole} holds more than ${JSON_MAX_VALUES} values` };
    if (Array.isArray(value)) {
      for (const [i, child] of (value as unknown[]).entries()) stack.push({ value: child, depth: depth + 1, key: String(i), parent: entry });
    } else {
      for (const key of children as string[]) {
        const problem = stringProblem(key);
        if (problem) return { message: `${source === 'query' ? 'A query parameter\'s name' : whole} contains ${problem}` };
        if (BUILT_IN_KEYS.has(key)) {
          const field = pathOf(entry, key);
          return { message: `property ${field} should not exist`, field };
        }
        stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, key, parent: entry });
      }
    }
  }
  return undefined;
}

/** jsonShapeRefusal's message alone. */
export function jsonShapeProblem(root: unknown): string | undefined {
  return jsonShapeRefusal(root)?.message;
}

/** In Unicode mode a surrogate pair is one code point: only a lone surrogate matches. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** What a string holds that is refused, as the end of a sentence ("… contains <this>"). */
function stringProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'a NUL character (U+0000)';
  if (LONE_SURROGATE.test(value)) return 'a lone UTF-16 surrogate (not a character)';
  return undefined;
}

/**
 * A refused string value. In a body, the body is named (as it always was); in a query string, the
 * parameter is, since the request may have no body at all: `?q=%00` was answered "Request body
 * contains a NUL character".
 */
function refusalOf(problem: string, source: JsonSource, entry: Pending): JsonShapeRefusal {
  if (source === 'body' || entry.key === undefined) return { message: `${WHOLE[source]} contains ${problem}` };
  const field = pathOf(entry.parent, entry.key);
  const message = `Query parameter ${field.split('.')[0]} contains ${problem}`;
  return { message, field };
}
