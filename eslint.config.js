import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The arrows of the house (README, "Architecture"):
//
//   machines/ <- runtime/ <- services/ <- http/ <- app/
//                    \-> connectors/kit/ <- connectors/<provider>/
//
// Each side's imports are checked by `@typescript-eslint/no-restricted-imports`, scoped by the
// `files` glob of the importing side. Import sources are relative ('../../runtime/x.js' from
// services/a/b.ts), so a forbidden folder is matched at any depth of '../'. Type imports count:
// a type import is an arrow too. app/, bench/, test/ and simulator/ may import anything.
// test/lint/boundaries.test.ts proves each rule fails on a forbidden import.

/** A relative import source that climbs out into one of the top-level `folders`. */
const into = (...folders) => `^(?:\\.\\./)+(?:${folders.join('|')})(?:/|$)`;
/** Nothing that ships imports a leaf that only runs code: tests, benchmarks, the simulator. */
const LEAVES = ['test', 'bench', 'simulator'];
/** npm packages a machine may import: pure, no I/O, no clock. Add one only if that holds. */
const PURE_PACKAGES = ['xstate'];

const boundary = (files, message, patterns) => ({
  files,
  rules: {
    '@typescript-eslint/no-restricted-imports': ['error', { patterns: patterns.map((p) => ({ message, ...p })) }],
  },
});

/**
 * machines/ imports only machines/ and pure packages. A relative source leaves machines/ when it
 * climbs more levels than the importing file is deep, so there is one block per depth.
 */
const machinesAt = (depth) =>
  boundary(
    [`machines/${'*/'.repeat(depth - 1)}*.ts`],
    `machines are pure: import only machines/ and pure packages (${PURE_PACKAGES.join(', ')}), never runtime, services, http, app, connectors, node:*, pg, kysely or NATS`,
    [
      { regex: `^(?:\\.\\./){${depth}}` },
      { regex: `^(?!\\.|(?:${PURE_PACKAGES.join('|')})(?:/|$))` },
    ],
  );

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
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'machines are pure: configuration arrives in events or input' },
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'machines are pure: time arrives in events' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'machines are pure: time arrives in events' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'machines are pure: no randomness' },
        { selector: "CallExpression[callee.name='fromPromise']", message: 'no invoked promises: emit an effect instead' },
        { selector: "CallExpression[callee.name='fromCallback']", message: 'no invoked callbacks: emit an effect instead' },
        { selector: "CallExpression[callee.name='spawn']", message: 'no inline spawn: register child machines in setup({ actors })' },
        { selector: 'ImportExpression', message: 'machines are pure: no dynamic import' },
      ],
    },
  },
  // The import arrows. The blocks' `files` are disjoint: a later block would replace, not extend, an earlier one's options.
  machinesAt(1),
  machinesAt(2),
  machinesAt(3),
  machinesAt(4),
  boundary(
    ['runtime/**/*.ts'],
    'the engine (runtime/) imports only runtime/, machines/ and connectors/kit/: never services/, http/, app/ or a connector provider; pass what it needs in from services/index.ts or app/',
    [{ regex: into('services', 'http', 'app', ...LEAVES) }, { regex: '^(?:\\.\\./)+connectors/(?!kit(?:/|$))' }],
  ),
  boundary(
    ['connectors/**/*.ts'],
    'connectors know only connectors/kit/ and their provider: never runtime/, services/, http/ or app/ (the runtime calls them, not the other way)',
    [{ regex: into('runtime', 'services', 'http', 'app', ...LEAVES) }],
  ),
  boundary(
    ['services/**/*.ts'],
    'services/ never import the HTTP edge (http/) or the entry points (app/): routes call services, not the other way',
    [{ regex: into('http', 'app', ...LEAVES) }],
  ),
  boundary(
    ['http/**/*.{ts,tsx}'],
    'http/ never imports the entry points (app/): app/ builds the services and hands them to createApp()',
    [{ regex: into('app', ...LEAVES) }],
  ),
  {
    // routes translate: the services own the database, its transactions and idempotency
    files: ['http/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'read configuration through runtime/config.ts' },
        { selector: "MemberExpression[property.name='pool']", message: 'routes never touch the database pool: call a service method (services own transactions and idempotency)' },
        { selector: "MemberExpression[property.name='database']", message: 'routes never touch the database: call a service method' },
      ],
    },
  },
  {
    // configuration is read in one place; tests, benchmarks and fixture processes set it up
    files: ['runtime/config.ts', 'test/**/*.ts', 'bench/**/*.ts', 'vitest.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
);
