#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli/main.ts by `npm run build` (run by `npm ci`/`npm install`).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(`wharf: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
