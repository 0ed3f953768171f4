#!/usr/bin/env node
// `npx concord ...`: the operator CLI (app/cli/), run from its TypeScript sources through tsx,
// which is a runtime dependency, so this works from a plain `npm ci` checkout with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../app/cli/main.ts');
