import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../runtime/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('starts with the two commands: install-and-run, and test', () => {
    const firstBlock = readme.split('```')[1] ?? '';
    expect(firstBlock).toContain('npm ci && npm start');
    expect(firstBlock).toContain('npm test');
  });

  it('documents every environment variable the configuration reads', () => {
    const missing = CONFIG_VARIABLES.filter((v) => !readme.includes(`\`${v}\``));
    expect(missing).toEqual([]);
  });

  it('documents every table the migrations create', () => {
    const dir = new URL('../migrations/', import.meta.url);
    const sql = readdirSync(dir)
      .filter((f) => f.endsWith('.sql'))
      .map((f) => readFileSync(new URL(f, dir), 'utf8'))
      .join('\n');
    const tables = [...sql.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?(\w+)/g)].map((m) => m[1]!);
    expect(tables.length).toBeGreaterThan(5);
    expect(tables.filter((t) => !readme.includes(`\`${t}\``))).toEqual([]);
  });
});
