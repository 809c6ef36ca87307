/**
 * Type-check files with the TypeScript compiler API, as a strict partner project would, the
 * workspace packages resolved to their sources (`tpx-source`). Returns the diagnostics as
 * `file:line message` strings (empty when the files compile).
 */
import path from 'node:path';
import ts from 'typescript';

export function typeErrors(files: string[], options: { types?: string[] } = {}): string[] {
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    customConditions: ['tpx-source'],
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    types: options.types ?? [],
    skipLibCheck: true,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}
