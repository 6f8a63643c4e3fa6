/**
 * The text of a message as it is sent: blank lines before it and spaces after it go, but the first line's indentation
 * stays (an indented code line, a Markdown code block pasted as it is). `String.trim` took that too, so the first line
 * of pasted code lost its indentation and the rest kept theirs. All blank, it is ''.
 */
export function tidyMessage(text: string): string {
  return text.replace(/^(?:[^\S\r\n]*\r?\n)+/, '').trimEnd();
}
