// `--build`: compiles the server (and with --build-client the SPA) into bench/_build, so a bench run
// never races other builds of dist/ in the same tree. Mirrors npm run build:server / build:client.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

function copyAssets(srcDir, outDir) {
  for (const e of readdirSync(srcDir, { withFileTypes: true })) {
    const p = join(srcDir, e.name);
    if (e.isDirectory()) copyAssets(p, join(outDir, e.name));
    else if (/\.(mjs|cjs)$/.test(e.name)) {
      mkdirSync(outDir, { recursive: true });
      copyFileSync(p, join(outDir, e.name));
    }
  }
}

export function buildServer(root, outDist) {
  const out = join(outDist, 'server');
  rmSync(out, { recursive: true, force: true });
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'server/tsconfig.build.json', '--outDir', relative(root, out)],
      { cwd: root, stdio: 'inherit' });
  } catch (err) {
    // tsc still emits on type errors (e.g. someone's work in progress in the same tree); measure it, but say so.
    if (!existsSync(join(out, 'main.js'))) throw err;
    console.error('bench: the server build reported type errors (above); measuring what it emitted');
  }
  copyAssets(join(root, 'server', 'src'), out);
}

export function buildClient(root, outDist) {
  const out = join(outDist, 'client');
  rmSync(out, { recursive: true, force: true });
  execFileSync(process.execPath, [join(root, 'node_modules', '@angular', 'cli', 'bin', 'ng.js'), 'build', '--configuration', 'production', '--output-path', relative(root, out)],
    { cwd: root, stdio: 'inherit', env: { ...process.env, NG_CLI_ANALYTICS: 'false' } });
}
