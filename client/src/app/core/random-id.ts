/** A random id; crypto.randomUUID only exists in secure contexts, and Parley may be served over plain http on a LAN. */
export function randomId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
