/**
 * The measured baselines and the client-side helpers run as plain JavaScript, exactly like
 * dist/server.js: a TypeScript loader (tsx) in those processes would add its own memory and
 * start-up cost and skew the RSS comparison. So they are transpiled here, file by file, into
 * bench/results/.build/ (git-ignored, and inside the checkout so that `import 'busboy'`
 * still finds node_modules).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

/** The folders whose files run as child processes (and what they import). */
const SOURCES = ['baselines', 'helpers', 'lib'];

export function buildHelpers(benchDir: string): string {
  const outDir = join(benchDir, 'results', '.build');
  for (const folder of SOURCES) {
    for (const name of readdirSync(join(benchDir, folder))) {
      if (!name.endsWith('.ts')) continue;
      const source = join(benchDir, folder, name);
      const { outputText } = ts.transpileModule(readFileSync(source, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
        fileName: source,
      });
      const target = join(outDir, relative(benchDir, source)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(target), { recursive: true });
      // Write then rename: a smoke test and a full run may build at the same time.
      const temp = `${target}.${process.pid}.tmp`;
      writeFileSync(temp, outputText);
      renameSync(temp, target);
    }
  }
  return outDir;
}
