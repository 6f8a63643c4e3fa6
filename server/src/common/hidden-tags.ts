/**
 * Unicode tag characters (U+E0000–U+E007F) show nothing, yet a model reads them as the ASCII they shadow
 * ("ASCII smuggling": an instruction hidden in a file, a title, a name). They mean something only in an emoji
 * tag sequence, a flag such as England's (U+1F3F4, tags, U+E007F CANCEL TAG), which is kept whole.
 * files/extract.worker.mjs holds a copy (it cannot import TypeScript).
 */
const TAGS = /(\u{1F3F4}[\u{E0020}-\u{E007E}]+\u{E007F})|[\u{E0000}-\u{E007F}]/gu;

/** The text without tag characters, flags kept. */
export function withoutHiddenTags(text: string): string {
  return text.replace(TAGS, (_tag, flag?: string) => flag ?? '');
}
