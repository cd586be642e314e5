#!/usr/bin/env node
// Generates the Kaitai Struct parsers in src/spec/generated/ from spec/*.ksy.
//
//   node scripts/gen-spec.mjs           regenerate (writes changed files, removes stale extras)
//   node scripts/gen-spec.mjs --check   exit 1 listing stale/missing/extra files; writes nothing
//
// For every spec/x.ksy (meta/id x, class name X in UpperCamelCase) this produces:
//   X.js    the JavaScript output of the npm kaitai-struct-compiler, with its UMD wrapper
//           replaced by an ES module wrapper (import of kaitai-struct/KaitaiStream.js and of the
//           generated modules it imports, `export const X`). The factory body is kept verbatim.
//   X.d.ts  typings derived from the .ksy: each type becomes a declared class (nested types and
//           enums live in a namespace merged with their parent class), seq fields, params and
//           instances become readonly properties with JS (lowerCamelCase) names.
//           Value instances carry their TypeScript type in a `-ts-type` key (keys starting with
//           "-" are ignored by the Kaitai compiler); it is required, since expression types are
//           not inferred here.
// The output is deterministic: it depends only on the .ksy files and the compiler version.
//
// generateAll(root) is the pure part (returns { fileName: content }); it is exported so a test can
// check that the committed files are up to date.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, rmSync, existsSync, realpathSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import compiler from 'kaitai-struct-compiler';

export const SPEC_DIR = 'spec';
export const OUT_DIR = join('src', 'spec', 'generated');

const KAITAI_STREAM_MODULE = 'kaitai-struct/KaitaiStream.js';

// ---------------------------------------------------------------------------------------------
// Naming (must match the Kaitai JavaScript backend; checked against the generated code below)

function upperCamel(id) {
  return id
    .split('_')
    .map((w) => (w.length ? w[0].toUpperCase() + w.slice(1) : ''))
    .join('');
}

function lowerCamel(id) {
  const parts = id.split('_');
  return parts[0] + parts.slice(1).map((w) => (w.length ? w[0].toUpperCase() + w.slice(1) : '')).join('');
}

// ---------------------------------------------------------------------------------------------
// Compilation

function compilerError(file, e) {
  const msg = e && typeof e.message === 'string' ? e.message : String(e);
  return new Error(`kaitai-struct-compiler failed on ${file}:\n${msg}`);
}

function readKsy(specDir, name) {
  const file = join(specDir, `${name}.ksy`);
  const spec = parseYaml(readFileSync(file, 'utf8'));
  if (!spec || typeof spec !== 'object' || !spec.meta || spec.meta.id !== name) {
    throw new Error(`${file}: meta/id must be "${name}" (the file name without .ksy)`);
  }
  return spec;
}

async function compileKsy(specDir, name, spec) {
  const importer = {
    importYaml(importName, mode) {
      if (mode !== 'rel' || importName.includes('/')) {
        return Promise.reject(new Error(`${name}.ksy: only same-directory relative imports are supported (${importName})`));
      }
      try {
        return Promise.resolve(readKsy(specDir, importName));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
  let out;
  try {
    out = await compiler.compile('javascript', spec, importer, false);
  } catch (e) {
    throw compilerError(`spec/${name}.ksy`, e);
  }
  const className = upperCamel(name);
  const source = out[`${className}.js`];
  if (typeof source !== 'string') {
    throw new Error(`spec/${name}.ksy: compiler output has no ${className}.js (got ${Object.keys(out).join(', ')})`);
  }
  return { className, source };
}

// ---------------------------------------------------------------------------------------------
// UMD -> ES module

const UMD_PROLOGUE =
  /^\(function \(root, factory\) \{\n  if \(typeof define === 'function' && define\.amd\) \{\n    define\(\[([^\]]*)\], factory\);\n[\s\S]*?\n\}\)\(typeof self !== 'undefined' \? self : this, function \(([^)]*)\) \{\n/m;
const UMD_EPILOGUE = /\n\}\);\n*$/;

function toEsModule(name, className, umd) {
  const m = UMD_PROLOGUE.exec(umd);
  if (!m) throw new Error(`spec/${name}.ksy: unexpected compiler output (UMD prologue not found)`);
  const deps = m[1].split(',').map((s) => s.trim().replace(/^'|'$/g, ''));
  const params = m[2].split(',').map((s) => s.trim());
  if (deps.length !== params.length || deps[0] !== 'exports' || deps[1] !== 'kaitai-struct/KaitaiStream') {
    throw new Error(`spec/${name}.ksy: unexpected UMD dependencies [${deps.join(', ')}] / (${params.join(', ')})`);
  }
  if (params[0] !== `${className}_` || params[1] !== 'KaitaiStream') {
    throw new Error(`spec/${name}.ksy: unexpected factory parameters (${params.join(', ')})`);
  }
  const before = umd.slice(0, m.index);
  let body = umd.slice(m.index + m[0].length);
  if (!UMD_EPILOGUE.test(body)) throw new Error(`spec/${name}.ksy: unexpected compiler output (UMD epilogue not found)`);
  body = body.replace(UMD_EPILOGUE, '\n');
  const exportLine = `${className}_.${className} = ${className};`;
  if (!body.includes(`\n${exportLine}\n`)) {
    throw new Error(`spec/${name}.ksy: unexpected compiler output (no "${exportLine}")`);
  }

  const imports = [`import KaitaiStream from '${KAITAI_STREAM_MODULE}';`];
  const args = ['exports_', 'KaitaiStream'];
  for (let i = 2; i < deps.length; i++) {
    const dep = deps[i];
    const dm = /^\.\/([A-Za-z0-9]+)$/.exec(dep);
    if (!dm || params[i] !== `${dm[1]}_`) {
      throw new Error(`spec/${name}.ksy: unsupported dependency ${dep} (${params[i]})`);
    }
    imports.push(`import { ${dm[1]} } from './${dm[1]}.js';`);
    args.push(`{ ${dm[1]} }`);
  }

  return [
    `// Generated from spec/${name}.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler ${compiler.version}).`,
    '// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.',
    before.trimEnd(),
    '',
    ...imports,
    '',
    'const exports_ = {};',
    `(function (${params.join(', ')}) {`,
    body.trimEnd(),
    `})(${args.join(', ')});`,
    '',
    `export const ${className} = exports_.${className};`,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Type model and .d.ts

function fail(where, msg) {
  throw new Error(`${where}: ${msg}`);
}

/**
 * Builds a tree of type descriptions from a parsed .ksy:
 * { id, className, path: ['Top', 'Nested'], spec, parent, children: Map<id, node> }.
 */
function buildTypeTree(spec, id, parent) {
  const node = {
    id,
    className: upperCamel(id),
    path: parent ? [...parent.path, upperCamel(id)] : [upperCamel(id)],
    spec,
    parent,
    children: new Map(),
  };
  for (const [childId, childSpec] of Object.entries(spec.types ?? {})) {
    node.children.set(childId, buildTypeTree(childSpec, childId, node));
  }
  return node;
}

function primitiveTsType(type, where) {
  let m;
  if ((m = /^[us]([1248])(be|le)?$/.exec(type))) {
    if (m[1] === '8') fail(where, `${type} is not allowed (JS numbers lose bits above 2^53); split it into _hi/_lo u4 fields`);
    return 'number';
  }
  if ((m = /^b([0-9]+)(be|le)?$/.exec(type))) {
    const n = Number(m[1]);
    if (n > 32) fail(where, `${type} is not allowed (the JS runtime throws for bit fields wider than 32 bits)`);
    return n === 1 ? 'boolean' : 'number';
  }
  if (/^f[48](be|le)?$/.test(type)) return 'number';
  if (type === 'str' || type === 'strz') return 'string';
  if (type === 'bool') return 'boolean';
  if (type === 'bytes') return 'Uint8Array';
  return null;
}

function makeResolver(ctx) {
  // ctx: { imports: Map<id, className>, usedImports: Set<className> }
  return function resolveUserType(node, ref, where) {
    const name = ref.replace(/\(.*\)$/s, '').trim();
    const parts = name.split('::');
    let start = null;
    for (let scope = node; scope && !start; scope = scope.parent) {
      if (scope.children.has(parts[0])) start = scope.children.get(parts[0]);
      else if (!scope.parent && scope.id === parts[0]) start = scope;
    }
    if (start) {
      let cur = start;
      for (const p of parts.slice(1)) {
        cur = cur.children.get(p);
        if (!cur) fail(where, `cannot resolve type ${ref}`);
      }
      return cur.path.join('.');
    }
    if (ctx.imports.has(parts[0])) {
      const cls = ctx.imports.get(parts[0]);
      ctx.usedImports.add(cls);
      return [cls, ...parts.slice(1).map(upperCamel)].join('.');
    }
    fail(where, `cannot resolve type ${ref}`);
  };
}

function union(types) {
  const uniq = [...new Set(types)];
  return uniq.join(' | ');
}

function parenthesize(t) {
  return t.includes('|') ? `(${t})` : t;
}

function attrTsType(node, attr, where, resolve) {
  let t;
  if (attr.contents !== undefined) {
    t = 'Uint8Array';
  } else if (attr.type === undefined) {
    t = 'Uint8Array';
  } else if (typeof attr.type === 'object') {
    const sw = attr.type;
    if (sw['switch-on'] === undefined || typeof sw.cases !== 'object') fail(where, 'unsupported type object');
    const caseKeys = Object.keys(sw.cases);
    const members = caseKeys.map((k) => {
      const ct = String(sw.cases[k]);
      return primitiveTsType(ct, `${where}/cases/${k}`) ?? resolve(node, ct, `${where}/cases/${k}`);
    });
    if (!caseKeys.includes('_')) {
      members.push(attr.size !== undefined || attr['size-eos'] ? 'Uint8Array' : 'undefined');
    }
    t = union(members);
  } else {
    const type = String(attr.type);
    t = primitiveTsType(type, where) ?? resolve(node, type, where);
  }
  if (attr.repeat !== undefined) t = `${parenthesize(t)}[]`;
  if (attr.if !== undefined) t = union([...t.split(' | '), 'undefined']);
  return t;
}

function hasSubstream(attr) {
  if (attr.size === undefined && !attr['size-eos']) return false;
  if (attr.type === undefined || attr.contents !== undefined) return false;
  if (typeof attr.type === 'object') return true;
  const p = primitiveTsType(String(attr.type), '');
  return p === null;
}

function docComment(doc, indent, extra = []) {
  const lines = [];
  if (typeof doc === 'string' && doc.trim()) lines.push(...doc.trim().split('\n').map((l) => l.trimEnd()));
  if (extra.length) {
    if (lines.length) lines.push('');
    lines.push(...extra);
  }
  if (!lines.length) return [];
  const safe = lines.map((l) => l.replace(/\*\//g, '*\\/'));
  return [`${indent}/**`, ...safe.map((l) => (l ? `${indent} * ${l}` : `${indent} *`)), `${indent} */`];
}

function enumDecl(enumId, enumSpec, indent, where) {
  const entries = Object.entries(enumSpec).map(([k, v]) => {
    const value = Number(k);
    if (!Number.isSafeInteger(value)) fail(`${where}/${enumId}`, `unsupported enum key ${k}`);
    const id = typeof v === 'object' && v !== null ? v.id : v;
    const doc = typeof v === 'object' && v !== null ? v.doc : undefined;
    return { value, id: String(id), doc };
  });
  entries.sort((a, b) => a.value - b.value);
  const lines = [`${indent}/** Enum ${enumId}: NAME -> value and value -> NAME. */`];
  lines.push(`${indent}export const ${upperCamel(enumId)}: {`);
  for (const e of entries) {
    lines.push(...docComment(e.doc, `${indent}  `));
    lines.push(`${indent}  readonly ${e.id.toUpperCase()}: ${e.value};`);
  }
  lines.push(`${indent}  readonly [value: number]: string;`);
  lines.push(`${indent}};`);
  return lines;
}

function paramTsType(node, param, where, resolve) {
  const type = String(param.type);
  if (type === 'struct') return 'unknown';
  if (type === 'io') return 'KaitaiStream';
  return primitiveTsType(type, where) ?? resolve(node, type, where);
}

/** Returns { classLines, namespaceLines } for one type node. */
function typeDecl(node, indent, where, resolve, isTop, model) {
  const spec = node.spec;
  const params = (spec.params ?? []).map((p, i) => {
    const w = `${where}/params/${i}`;
    if (!p || !p.id) fail(w, 'param without id');
    return { id: p.id, name: lowerCamel(p.id), ts: paramTsType(node, p, w, resolve), doc: p.doc };
  });
  const members = []; // { name, ts, doc, kind }
  (spec.seq ?? []).forEach((attr, i) => {
    const w = `${where}/seq/${i}`;
    if (!attr || !attr.id) fail(w, 'seq attribute without id');
    members.push({ name: lowerCamel(attr.id), ts: attrTsType(node, attr, w, resolve), doc: attr.doc, kind: 'seq' });
    if (hasSubstream(attr)) {
      let raw = attr.repeat !== undefined ? 'Uint8Array[]' : 'Uint8Array';
      if (attr.if !== undefined || typeof attr.type === 'object') raw += ' | undefined';
      members.push({
        name: `_raw_${lowerCamel(attr.id)}`,
        ts: raw,
        doc: `Raw bytes of ${attr.id} (the substream it was parsed from).`,
        kind: 'raw',
      });
    }
  });
  for (const [instId, inst] of Object.entries(spec.instances ?? {})) {
    const w = `${where}/instances/${instId}`;
    let ts;
    if (inst.value !== undefined) {
      ts = inst['-ts-type'];
      if (typeof ts !== 'string' || !ts) fail(w, 'value instances need a "-ts-type" key (number, boolean, string, ...)');
      if (inst.if !== undefined) ts = union([...ts.split(' | '), 'undefined']);
    } else {
      ts = attrTsType(node, inst, w, resolve);
    }
    members.push({ name: lowerCamel(instId), ts, doc: inst.doc, kind: 'instance' });
  }

  const seen = new Set(params.map((p) => p.name));
  for (const m of members) {
    if (seen.has(m.name)) fail(where, `duplicate member name ${m.name}`);
    seen.add(m.name);
  }
  model.set(node.path.join('.'), { params, members });

  const cls = [];
  cls.push(...docComment(spec.doc, indent, isTop && spec['doc-ref'] ? [`@see ${spec['doc-ref']}`] : []));
  cls.push(`${indent}${isTop ? 'export declare class' : 'export class'} ${node.className} {`);
  const ctorArgs = ['io: KaitaiStream'];
  if (params.length) {
    ctorArgs.push('parent: unknown', 'root: unknown', ...params.map((p) => `${p.name}: ${p.ts}`));
  } else {
    ctorArgs.push('parent?: unknown', 'root?: unknown');
  }
  cls.push(`${indent}  constructor(${ctorArgs.join(', ')});`);
  cls.push(`${indent}  readonly _io: KaitaiStream;`);
  cls.push(`${indent}  readonly _parent: unknown;`);
  cls.push(`${indent}  readonly _root: unknown;`);
  for (const p of params) {
    cls.push(...docComment(p.doc, `${indent}  `, ['(parameter)']));
    cls.push(`${indent}  readonly ${p.name}: ${p.ts};`);
  }
  for (const m of members) {
    const tag = m.kind === 'instance' ? ['(instance, computed lazily on first access)'] : [];
    cls.push(...docComment(m.doc, `${indent}  `, tag));
    cls.push(`${indent}  readonly ${m.name}: ${m.ts};`);
  }
  cls.push(`${indent}}`);

  const ns = [];
  for (const [enumId, enumSpec] of Object.entries(spec.enums ?? {})) {
    ns.push(...enumDecl(enumId, enumSpec, `${indent}  `, `${where}/enums`));
  }
  for (const [childId, child] of node.children) {
    const sub = typeDecl(child, `${indent}  `, `${where}/types/${childId}`, resolve, false, model);
    ns.push(...sub);
  }
  const out = [...cls];
  if (ns.length) {
    out.push(`${indent}${isTop ? 'export declare namespace' : 'export namespace'} ${node.className} {`);
    out.push(...ns);
    out.push(`${indent}}`);
  }
  return out;
}

function collectImports(spec, specDir) {
  const imports = new Map();
  for (const imp of spec.meta.imports ?? []) {
    const id = String(imp);
    const imported = readKsy(specDir, id);
    imports.set(imported.meta.id, upperCamel(imported.meta.id));
  }
  return imports;
}

function generateDts(name, spec, specDir, model) {
  const ctx = { imports: collectImports(spec, specDir), usedImports: new Set() };
  const resolve = makeResolver(ctx);
  const tree = buildTypeTree(spec, spec.meta.id, null);
  const body = typeDecl(tree, '', `spec/${name}.ksy`, resolve, true, model);
  const lines = [
    `// Generated from spec/${name}.ksy by scripts/gen-spec.mjs (kaitai-struct-compiler ${compiler.version}).`,
    '// Do not edit: change the .ksy file and run `node scripts/gen-spec.mjs`.',
    '',
    `import type KaitaiStreamModule from '${KAITAI_STREAM_MODULE}';`,
    ...[...ctx.usedImports].sort().map((cls) => `import type { ${cls} } from './${cls}.js';`),
    '',
    "// kaitai-struct's typings declare `export default` in a CommonJS package, so under NodeNext the",
    '// default import is typed as the module object; at run time it is the KaitaiStream class.',
    'type KaitaiStream = InstanceType<typeof KaitaiStreamModule.default>;',
    '',
    ...body,
    '',
  ];
  return { dts: lines.join('\n'), tree };
}

/** Checks that the member and class names used in the .d.ts exist in the generated JS. */
function crossCheck(name, js, tree, model) {
  const missing = [];
  const walk = (node) => {
    const key = node.path.join('.');
    if (node.parent) {
      const parentPath = node.parent.path;
      const parentVar = parentPath[parentPath.length - 1];
      if (!js.includes(`var ${node.className} = ${parentVar}.${node.className} = (function() {`)) missing.push(`type ${key}`);
    }
    const entry = model.get(key);
    for (const p of entry.params) {
      if (!js.includes(`this.${p.name} = ${p.name};`)) missing.push(`param ${key}.${p.name}`);
    }
    for (const m of entry.members) {
      const ok =
        m.kind === 'instance'
          ? js.includes(`Object.defineProperty(${node.className}.prototype, '${m.name}', {`)
          : js.includes(`this.${m.name} = `);
      if (!ok) missing.push(`${m.kind} ${key}.${m.name}`);
    }
    for (const child of node.children.values()) walk(child);
  };
  walk(tree);
  if (missing.length) {
    throw new Error(`spec/${name}.ksy: names in the typings not found in the generated JS: ${missing.join(', ')}`);
  }
}

/**
 * Generates every output file. Pure apart from reading spec/*.ksy under root.
 * @param {string} root repository root
 * @returns {Promise<Record<string, string>>} file name (relative to src/spec/generated) -> content
 */
export async function generateAll(root) {
  const { files } = await generateWithModel(root);
  return files;
}

/**
 * Like generateAll, also returning the type model used for the typings:
 * Map<'Class.Nested', { params: [{name, ts}], members: [{name, ts, kind}] }>.
 */
export async function generateWithModel(root) {
  const specDir = join(root, SPEC_DIR);
  const names = readdirSync(specDir)
    .filter((f) => f.endsWith('.ksy'))
    .map((f) => f.slice(0, -'.ksy'.length))
    .sort();
  const files = {};
  const model = new Map();
  for (const name of names) {
    const spec = readKsy(specDir, name);
    const { className, source } = await compileKsy(specDir, name, spec);
    const js = toEsModule(name, className, source);
    const { dts, tree } = generateDts(name, spec, specDir, model);
    crossCheck(name, js, tree, model);
    files[`${className}.js`] = js;
    files[`${className}.d.ts`] = dts;
  }
  const sorted = {};
  for (const k of Object.keys(files).sort()) sorted[k] = files[k];
  return { files: sorted, model };
}

/** Compares generated content with src/spec/generated; returns { stale, missing, extra }. */
export function compareWithDisk(root, files) {
  const outDir = join(root, OUT_DIR);
  const onDisk = existsSync(outDir) ? readdirSync(outDir).filter((f) => f.endsWith('.js') || f.endsWith('.ts')) : [];
  const stale = [];
  const missing = [];
  for (const [f, content] of Object.entries(files)) {
    const p = join(outDir, f);
    if (!existsSync(p)) missing.push(f);
    else if (readFileSync(p, 'utf8') !== content) stale.push(f);
  }
  const extra = onDisk.filter((f) => !(f in files)).sort();
  return { stale, missing, extra };
}

async function main(argv) {
  const args = argv.slice(2);
  const check = args.includes('--check');
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length) {
    console.error(`usage: node scripts/gen-spec.mjs [--check]  (unknown argument ${unknown.join(' ')})`);
    return 2;
  }
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const files = await generateAll(root);
  const { stale, missing, extra } = compareWithDisk(root, files);
  const outRel = OUT_DIR.split('\\').join('/');
  if (check) {
    if (!stale.length && !missing.length && !extra.length) {
      console.log(`${outRel}: ${Object.keys(files).length} files up to date`);
      return 0;
    }
    for (const f of stale) console.error(`stale:   ${outRel}/${f}`);
    for (const f of missing) console.error(`missing: ${outRel}/${f}`);
    for (const f of extra) console.error(`extra:   ${outRel}/${f}`);
    console.error('run `node scripts/gen-spec.mjs` to regenerate');
    return 1;
  }
  const outDir = join(root, OUT_DIR);
  mkdirSync(outDir, { recursive: true });
  for (const f of [...stale, ...missing]) {
    writeFileSync(join(outDir, f), files[f]);
    console.log(`wrote   ${outRel}/${f}`);
  }
  for (const f of extra) {
    rmSync(join(outDir, f));
    console.log(`removed ${outRel}/${f}`);
  }
  console.log(`${outRel}: ${Object.keys(files).length} files, ${stale.length + missing.length} written, ${extra.length} removed`);
  return 0;
}

function isMain() {
  if (!process.argv[1]) return false;
  try {
    return pathToFileURL(realpathSync(process.argv[1])).href === pathToFileURL(realpathSync(fileURLToPath(import.meta.url))).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
