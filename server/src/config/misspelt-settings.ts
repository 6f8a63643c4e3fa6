import { settingNames } from './app-config.js';

export interface MisspeltSetting {
  /** The variable as set in the environment (its value is never kept: it may be a secret). */
  name: string;
  /** The setting it most likely meant. */
  suggestion: string;
}

/**
 * Optimal string alignment distance: Levenshtein's insertions, deletions and substitutions, plus
 * the swap of two neighbouring characters (Damerau), each costing one.
 */
export function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) current[j] = Math.min(current[j], before[j - 2] + 1);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length];
}

/** Underscores and a final plural S dropped: MAX_UPLOAD_BYTE and MAXUPLOADBYTES both read as MAXUPLOADBYTE. */
const canonical = (name: string): string => name.replace(/_/g, '').replace(/S$/, '');

/**
 * Variables that look like one of Parley's settings but are not one (a typo, another case, a missing
 * underscore or plural S), each with the setting it most likely meant: such a variable is otherwise
 * ignored without a word and its setting keeps its default. Short names must be closer (HOME is two
 * edits from HOST), and npm's own variables are never settings.
 */
export function misspeltSettings(env: NodeJS.ProcessEnv, known: readonly string[] = settingNames()): MisspeltSetting[] {
  const names = new Set(known);
  const found: MisspeltSetting[] = [];
  for (const name of Object.keys(env)) {
    if (names.has(name) || /^npm_/i.test(name)) continue;
    const upper = name.toUpperCase();
    let best: { suggestion: string; distance: number } | undefined;
    for (const setting of known) {
      if (Math.abs(setting.length - upper.length) > 2 && canonical(setting) !== canonical(upper)) continue;
      const distance = editDistance(upper, setting);
      const isNear = distance <= (setting.length < 6 ? 1 : 2) || canonical(setting) === canonical(upper);
      if (isNear && (best === undefined || distance < best.distance)) best = { suggestion: setting, distance };
    }
    if (best) found.push({ name, suggestion: best.suggestion });
  }
  return found;
}
