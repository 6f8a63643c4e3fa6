/**
 * Whether the main pointer is a finger. Asked at each use: a tablet may gain a mouse. On such a device an
 * on-screen keyboard has no Shift+Enter, and focusing a textbox opens the keyboard over half the screen.
 */
export function isTouchFirst(): boolean {
  return typeof window.matchMedia === 'function' && window.matchMedia('(pointer: coarse)').matches;
}
