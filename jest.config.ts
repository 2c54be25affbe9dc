import type { Config } from 'jest';

// One run covers every tier; the tier is in the file name (unit, int, e2e).
// Integration and e2e files each get their own database cloned from a migrated
// template (see test/global-setup.ts), so files never share state.
const swc = [
  '@swc/jest',
  {
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

const config: Config = {
  rootDir: '.',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/{apps,libs,migrations,test}/**/*.spec.ts'],
  transform: { '^.+\\.ts$': swc as never },
  moduleNameMapper: { '^@keyward/([a-z-]+)$': '<rootDir>/libs/$1/src' },
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  maxWorkers: 2,
  testTimeout: 30_000,
};

export default config;
