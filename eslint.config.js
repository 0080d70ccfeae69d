// Lint rules shared by every package. Package boundaries are real: no deep imports
// into another package's files, only its exported entry point.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'proto/src/generated/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@flotilla/*/*'], message: 'import a package through its entry point' }] },
      ],
    },
  },
  {
    // @flotilla/test-env is a devDependency: code that ships must not import it.
    files: ['common/src/**/*.ts', 'proto/src/**/*.ts', 'agent/src/**/*.ts', 'hub/src/**/*.ts'],
    ignores: ['**/*.test.ts', '**/src/testing/**', '**/src/bench/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@flotilla/test-env',
              message: 'only tests, src/testing/ and src/bench/ may use the test environment',
            },
          ],
          patterns: [
            { group: ['@flotilla/*/*'], message: 'import a package through its entry point' },
          ],
        },
      ],
    },
  },
);
