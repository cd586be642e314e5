/**
 * Dependency rules of src/ (`npm run depcheck`, part of `npm test`; test/unit/dependency-rules.test.ts
 * runs it too). Imports with a `.js` suffix resolve to the `.ts` file beside them, as TypeScript
 * resolves them; type-only imports count (tsPreCompilationDeps), and so do dynamic `import()`s.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No module imports itself, directly or through others (type-only imports included), within a folder or across folders.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'product-not-verification',
      severity: 'error',
      comment:
        'The product (src/ outside src/verification/) never imports the verification wing; the one exception is the `qcow2 verify` command entry, src/cli/verify.ts.',
      from: { path: '^src/', pathNot: ['^src/verification/', '^src/cli/verify[.]ts$'] },
      to: { path: '^src/verification/' },
    },
    {
      name: 'contract-not-engines',
      severity: 'error',
      comment: 'src/engine/ is the contract every engine implements: it imports no engine (src/reference/, src/optimized/).',
      from: { path: '^src/engine/' },
      to: { path: '^src/(reference|optimized)/' },
    },
    {
      name: 'codecs-are-pure',
      severity: 'error',
      comment:
        'src/format/ holds the codecs: bytes in, typed values out. They import only each other, src/errors.ts and the pure constants of src/limits.ts: no I/O, no engines, no node built-ins, no packages.',
      from: { path: '^src/format/' },
      to: { pathNot: ['^src/format/', '^src/errors[.]ts$', '^src/limits[.]ts$'] },
    },
    {
      name: 'src-not-test',
      severity: 'error',
      comment: 'Nothing in src/ imports from test/.',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'Every import resolves (an unresolved one would escape the rules above).',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
