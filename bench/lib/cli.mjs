// Flags of the standalone bench scripts (compare.mjs, breakdown.mjs): --name=value pairs, and the
// relay load's shape (scenario 1's): --concurrency, --tokens, --tokens-per-s.
export function cliArgs(argv = process.argv.slice(2)) {
  const args = Object.fromEntries(argv.map((a) => {
    const [k, ...v] = a.replace(/^--/, '').split('=');
    return [k, v.join('=')];
  }));
  const num = (k, d) => (args[k] !== undefined ? Number(args[k]) : d);
  const intervalMs = 1000 / num('tokens-per-s', 50);
  const shape = { tokens: num('tokens', 100), intervalMs };
  return { args, num, concurrency: num('concurrency', 150), shape, replyMs: shape.tokens * intervalMs };
}
