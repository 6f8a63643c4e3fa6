import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';
import { SWC_JSC } from './src/testing/swc-options';

// SWC emits the decorator metadata that Nest DI and TypeORM need (esbuild/Vite do not).
export default defineConfig({
  root: __dirname,
  plugins: [swc.vite({ module: { type: 'es6' }, jsc: SWC_JSC })],
  test: {
    globals: true,
    environment: 'node',
    include: ['src/**/*.spec.ts'],
    setupFiles: ['src/testing/setup.ts'],
    globalSetup: ['src/testing/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // CI collects counts from a JSON report (.ci/run sets PARLEY_TEST_REPORT_DIR).
    reporters: process.env.PARLEY_TEST_REPORT_DIR ? ['default', ['json', { outputFile: `${process.env.PARLEY_TEST_REPORT_DIR}/server.json` }]] : ['default'],
  },
});
