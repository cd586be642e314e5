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
        'The product (src/ outside src/verification/) never imports the verification wing; the one exception is the program entry, src/main.ts, which adds the `qcow2 verify` command.',
      from: { path: '^src/', pathNot: ['^src/verification/', '^src/main[.]ts$'] },
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
      name: 'contract-below-everything-but-io',
      severity: 'error',
      comment:
        'The contract (src/engine/) stands on the error family, the limits and the file layer (src/io/) only: nothing above it (shared semantics, composition root, commands, servers).',
      from: { path: '^src/engine/' },
      to: { path: '^src/', pathNot: ['^src/engine/', '^src/io/', '^src/errors[.]ts$', '^src/limits[.]ts$'] },
    },
    {
      name: 'io-at-the-bottom',
      severity: 'error',
      comment: 'src/io/ (BlockFile and its wrappers) imports nothing of the project but the error family and the limits.',
      from: { path: '^src/io/' },
      to: { path: '^src/', pathNot: ['^src/io/', '^src/errors[.]ts$', '^src/limits[.]ts$'] },
    },
    {
      name: 'shared-semantics-below-engines',
      severity: 'error',
      comment:
        'src/qcow2/ holds the QCOW2 rules both engines run: it imports neither engine, nor anything that uses engines (composition root, commands, map, servers, verification).',
      from: { path: '^src/qcow2/' },
      to: { path: '^src/(reference|optimized|device|cli|map|check|create|bench|verification)/' },
    },
    {
      name: 'engines-apart',
      severity: 'error',
      comment: 'The reference engine and the optimized engine never import each other: what they share lives in src/qcow2/.',
      from: { path: '^src/reference/' },
      to: { path: '^src/optimized/' },
    },
    {
      name: 'engines-apart-too',
      severity: 'error',
      comment: 'The other direction of engines-apart.',
      from: { path: '^src/optimized/' },
      to: { path: '^src/reference/' },
    },
    {
      name: 'one-composition-root',
      severity: 'error',
      comment:
        'The product opens engines only through the composition root (src/device/): no command, server or library entry imports an engine directly. The verification wing may (it tests each engine by name).',
      from: { path: '^src/', pathNot: ['^src/(device|reference|optimized|verification)/'] },
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
      name: 'serving-core-has-no-protocol',
      severity: 'error',
      comment:
        'src/serve/ is the request core every server shares (NBD now, ublk next): it stands on the contract, the error family, the limits and the pure byte helpers, and knows no protocol, server or command.',
      from: { path: '^src/serve/' },
      to: { path: '^src/', pathNot: ['^src/serve/', '^src/engine/', '^src/errors[.]ts$', '^src/limits[.]ts$', '^src/format/bytes[.]ts$'] },
    },
    {
      name: 'ublk-server-stands-on-the-serving-core',
      severity: 'error',
      comment:
        'src/ublk/ is the ublk server: it runs requests through src/serve/ on a BlockDevice (the contract), like the NBD server, and knows neither the NBD server, an engine, nor the commands.',
      from: { path: '^src/ublk/' },
      to: { path: '^src/', pathNot: ['^src/ublk/', '^src/serve/', '^src/engine/types[.]ts$', '^src/errors[.]ts$', '^src/limits[.]ts$', '^src/io/'] },
    },
    {
      name: 'nbd-codec-is-pure',
      severity: 'error',
      comment: "src/nbd/protocol.ts is NBD's wire format: bytes in, values out. It imports only src/errors.ts and src/limits.ts: no I/O, no node built-ins.",
      from: { path: '^src/nbd/protocol[.]ts$' },
      to: { pathNot: ['^src/errors[.]ts$', '^src/limits[.]ts$'] },
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
