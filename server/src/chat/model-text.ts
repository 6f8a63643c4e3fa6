/**
 * The model's text made the same for the stream and the stored row, on either database. A model
 * (or a server in front of one) can send any JSON string: a NUL (`\u0000`), which PostgreSQL's
 * text refuses (the reply could not be stored) and SQLite keeps; or half of a surrogate pair,
 * which each driver encodes differently (one or three U+FFFD) while the stream carried it as is.
 * NULs are dropped; an unpaired surrogate becomes U+FFFD, as `toWellFormed` makes it. A high
 * surrogate ending a token waits for the next: a pair split between two tokens stays a pair.
 */
export class ModelText {
  private carry = '';

  /** The part of `text` that can be shown and stored now. */
  push(text: string): string {
    let s = this.carry + text;
    this.carry = '';
    const last = s.charCodeAt(s.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.carry = s.slice(-1);
      s = s.slice(0, -1);
    }
    return clean(s);
  }

  /** What is held back at the end of the reply (a high surrogate no token completed), as U+FFFD. */
  end(): string {
    const rest = this.carry;
    this.carry = '';
    return clean(rest);
  }
}

function clean(s: string): string {
  const withoutNul = s.includes('\u0000') ? s.replaceAll('\u0000', '') : s;
  return withoutNul.isWellFormed() ? withoutNul : withoutNul.toWellFormed();
}
