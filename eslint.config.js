import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', 'dist/', 'coverage/', '.scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly', performance: 'readonly', NodeJS: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'read configuration through runtime/config.ts' },
      ],
    },
  },
  {
    // machines are pure: no clock, no randomness, no I/O
    files: ['machines/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'machines are pure: time arrives in events' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'machines are pure: time arrives in events' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'machines are pure: no randomness' },
        { selector: "CallExpression[callee.name='fromPromise']", message: 'no invoked promises: emit an effect instead' },
        { selector: "CallExpression[callee.name='fromCallback']", message: 'no invoked callbacks: emit an effect instead' },
        { selector: "CallExpression[callee.name='spawn']", message: 'no inline spawn: register child machines in setup({ actors })' },
      ],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['../runtime/*', '../http/*', '../../runtime/*', '../../http/*', 'pg', 'kysely', '@nats-io/*', 'node:*'], message: 'machines do no I/O and never import runtime or http (type imports are fine)', allowTypeImports: true }] },
      ],
    },
  },
  {
    // configuration is read in one place; tests, benchmarks and fixture processes set it up
    files: ['runtime/config.ts', 'test/**/*.ts', 'bench/**/*.ts', 'vitest.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
);
