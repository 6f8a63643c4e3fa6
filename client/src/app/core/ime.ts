/**
 * The key belongs to an input method's composition (Japanese, Chinese, Korean…): Enter commits it and Esc cancels it,
 * so neither may send, save, stop an answer or close anything. Chrome and Firefox say so with `isComposing`; some
 * input methods (and Safari for the Enter that ends one) give only the legacy keyCode 229.
 */
export function isComposing(event: Event): boolean {
  return event instanceof KeyboardEvent && (event.isComposing || event.keyCode === 229);
}
