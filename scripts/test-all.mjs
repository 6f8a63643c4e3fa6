// `npm test`: lint, then every suite (server, client, browser), each run even if an earlier one
// failed, so one red suite does not hide the others. Exits non-zero if any step failed.
// With PARLEY_TEST_REPORT_DIR set (CI), each suite also writes a JSON report there.
import { spawnSync } from 'node:child_process';

const reports = process.env.PARLEY_TEST_REPORT_DIR;
const steps = [
  ['lint', ['run', 'lint']],
  ['server', ['run', 'test:server']],
  ['client', ['run', 'test:client', ...(reports ? ['--', '--reporters=json', '--reporters=default', `--output-file=${reports}/client.json`] : [])]],
  ['e2e', ['run', 'test:e2e']],
];
const only = process.argv.slice(2);
const failed = [];
for (const [name, args] of steps) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(`\n--- ${name} ---`);
  const r = spawnSync('npm', args, { stdio: 'inherit', env: process.env });
  if (r.status !== 0) failed.push(name);
}
console.log(failed.length ? `\nfailed: ${failed.join(', ')}` : '\nall steps passed');
process.exit(failed.length ? 1 : 0);
