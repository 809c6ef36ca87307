/**
 * How to spell a `tpx` command in a hint so that pasting it works: `tpx …` when a `tpx` is on
 * the user's PATH (a global install), else `npx tpx …` (a clone or a project dependency, where
 * the CLI lives in node_modules/.bin). `npm start` and `npx` put node_modules/.bin on the PATH
 * of the process they run, not of the user's shell, so those directories do not count.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export function tpxCommand(env: NodeJS.ProcessEnv = process.env): 'tpx' | 'npx tpx' {
  const dirs = (env.PATH ?? '').split(path.delimiter).filter((d) => d && !isNpmBin(d));
  const names = process.platform === 'win32' ? ['tpx.cmd', 'tpx.exe', 'tpx'] : ['tpx'];
  for (const dir of dirs) {
    for (const name of names) {
      try {
        accessSync(path.join(dir, name), constants.X_OK);
        return 'tpx';
      } catch {
        /* not here */
      }
    }
  }
  return 'npx tpx';
}

function isNpmBin(dir: string): boolean {
  return /[\\/]node_modules[\\/]\.bin[\\/]?$/.test(dir) || /[\\/]npm[\\/]node_modules[\\/]@npmcli[\\/]run-script[\\/]lib[\\/]node-gyp-bin[\\/]?$/.test(dir);
}

let cached: 'tpx' | 'npx tpx' | undefined;
/** `tpxCommand()` of this process, looked up once. */
export function tpx(): 'tpx' | 'npx tpx' {
  return (cached ??= tpxCommand());
}
