/**
 * Unicode tag characters (U+E0000–U+E007F) show nothing, yet a model reads them as the ASCII they shadow
 * ("ASCII smuggling": an instruction hidden in a file, a title, a name). They mean something only in an emoji
 * tag sequence, a flag such as England's (U+1F3F4, tags, U+E007F CANCEL TAG), which is kept whole.
 * files/extract.worker.mjs holds a copy (it cannot import TypeScript).
 */
// A flag's tags are a subdivision code: 2–7 lowercase letters or digits (gbeng, gbsct, usca). Any other run kept
// whole would let any hidden text through, wrapped in 🏴 … CANCEL TAG.
const TAGS = /(\u{1F3F4}[\u{E0030}-\u{E0039}\u{E0061}-\u{E007A}]{2,7}\u{E007F})|[\u{E0000}-\u{E007F}]/gu;

/** The text without tag characters, flags kept. */
export function withoutHiddenTags(text: string): string {
  return text.replace(TAGS, (_tag, flag?: string) => flag ?? '');
}
