import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'public/models/', 'test-results/', 'playwright-report/', 'training/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The pages are users of the library: the public API (src/index.ts) only. The kernel-check page
    // tests kernels, so it alone reaches internals, all through src/apps/kernels/internals.ts.
    files: ['src/apps/**/*.ts'],
    ignores: ['src/apps/kernels/internals.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+(api|engine|errors|gpu|model|models|ops|reference|skip|worker)(/|\\.ts$)',
              message: "Apps import the public API ('src/index.ts'), not the runtime's internals.",
            },
          ],
        },
      ],
    },
  },
  {
    // The library never depends on the site.
    files: ['src/**/*.ts'],
    ignores: ['src/apps/**', 'src/component.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '(^|/)apps/', message: 'Library code must not import from src/apps/.' }] },
      ],
    },
  },
);
