// Module hooks (node:module register(), Node >= 20.6) that let bench/ublk-lib.mjs import the VM
// harness test/support/vm.ts in place: a `.ts` file is transpiled with the project's own
// TypeScript (transpileModule: types erased, no type check), and a `./x.js` import from a `.ts`
// file resolves to `./x.ts` when only that exists (the project's NodeNext import convention).
// Nothing is written to disk, and import.meta.url stays the real path of the .ts file, so vm.ts
// finds test/vm/init and guest-run exactly as it does under vitest.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let ts;

export async function resolve(specifier, context, nextResolve) {
  if (context.parentURL?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js')) {
    const url = new URL(specifier, context.parentURL);
    if (!existsSync(fileURLToPath(url))) {
      const tsUrl = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
      if (existsSync(fileURLToPath(tsUrl))) return { url: tsUrl.href, shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  ts ??= (await import('typescript')).default;
  const source = readFileSync(fileURLToPath(url), 'utf8');
  const out = ts.transpileModule(source, {
    fileName: fileURLToPath(url),
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
  });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}
