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
 * Why a parsed JSON body is refused, or undefined when it is acceptable: too deep, too many
 * values, a NUL character (U+0000) or a lone UTF-16 surrogate ("\ud800" in JSON) in a key or
 * string. NUL has no use in chat text or titles, and PostgreSQL cannot store it in text at all; a
 * lone surrogate is no character at all, and was answered as given but stored as U+FFFD.
 * Refused alike on both databases.
 */
export function jsonShapeProblem(root: unknown): string | undefined {
  const stack: Array<{ value: unknown; depth: number }> = [{ value: root, depth: 0 }];
  let values = 1;
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = stringProblem(value);
      if (problem) return problem;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= JSON_MAX_DEPTH) return `Request body is nested deeper than ${JSON_MAX_DEPTH} levels`;
    const children = Array.isArray(value) ? (value as unknown[]) : Object.keys(value);
    values += children.length;
    if (values > JSON_MAX_VALUES) return `Request body holds more than ${JSON_MAX_VALUES} values`;
    if (Array.isArray(value)) {
      for (const child of value as unknown[]) stack.push({ value: child, depth: depth + 1 });
    } else {
      for (const key of children as string[]) {
        const problem = stringProblem(key);
        if (problem) return problem;
        stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1 });
      }
    }
  }
  return undefined;
}

/** In Unicode mode a surrogate pair is one code point: only a lone surrogate matches. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function stringProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'Request body contains a NUL character (U+0000)';
  if (LONE_SURROGATE.test(value)) return 'Request body contains a lone UTF-16 surrogate (not a character)';
  return undefined;
}
