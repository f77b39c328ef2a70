#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli/main.ts by `npm run build` (run by `npm ci`/`npm install`).
// Blob I/O runs on libuv's thread pool; its default of 4 threads starves concurrent pushes.
// It must be sized before the first asynchronous file operation, hence here.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../dist/src/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(`wharf: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
