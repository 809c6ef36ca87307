#!/usr/bin/env node
// Entry point of the `tpx` command: runs the compiled CLI (npm run build produces dist/).
import('../dist/src/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
    console.error('tpx: not built yet. Run `npm run build` first (npm start does it for you).');
    process.exit(1);
  }
  throw err;
});
