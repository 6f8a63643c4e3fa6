/** Text made safe to place in HTML, in an element or an attribute's quoted value. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Text as escaped paragraphs (a blank line between them, line breaks kept): Markdown shown as it was written. */
export function plainParagraphs(text: string): string[] {
  return text.split(/\n[ \t]*\n\s*/)
    .filter((part) => part.trim() !== '')
    .map((part) => `<p>${escapeHtml(part).replace(/\n/g, '<br>')}</p>`);
}
