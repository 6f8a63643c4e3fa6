/**
 * How the tests transpile TypeScript with SWC: decorators with their metadata, as Nest DI and
 * TypeORM need them (esbuild/Vite do not emit it). Shared by the Vitest config and the build of
 * worker threads' code for the tests (worker-build.ts).
 */
export const SWC_JSC = {
  target: 'es2022',
  parser: { syntax: 'typescript', decorators: true },
  transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
} as const;
