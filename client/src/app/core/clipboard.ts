/** Copies text; navigator.clipboard needs a secure context, so plain-http LAN installs use the older path. */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Permission refused: try the selection-based fallback below.
  }
  // Selecting the text moves the focus to it; removed with it, the focus fell to the page's top, and the
  // next Tab went to the skip link instead of on from the button that copied.
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.setAttribute('aria-hidden', 'true');
  area.tabIndex = -1;
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  // Focused, then selected: the copy takes the focused selection (select() alone focuses in some browsers only).
  area.focus({ preventScroll: true });
  area.select();
  try {
    // Deprecated, but the only option outside secure contexts.
    return document.execCommand('copy');
  } finally {
    area.remove();
    focused?.focus({ preventScroll: true });
  }
}
