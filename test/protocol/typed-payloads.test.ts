/**
 * Typed payloads (issue 11 item 6), checked by the TypeScript compiler itself: the fixture
 * compiles cleanly only if every known field is typed, every `@ts-expect-error` line (typos,
 * unknown fields, closed enumerations) is an error, and `loose()` reaches extra fields.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));

export function typeErrors(file: string): string[] {
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    customConditions: ['tpx-source'],
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    types: [],
    skipLibCheck: true,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

describe('payload types', () => {
  it('known fields compile, typos and unknown fields do not, loose() is the escape hatch', () => {
    expect(typeErrors(path.join(here, 'fixtures', 'typed-payloads.ts'))).toEqual([]);
  }, 120_000);
});
