// Builds the native addon (native/addon.c: lseek SEEK_DATA/SEEK_HOLE in seek.c, fallocate in
// fallocate.c) with node-gyp, against the local Node headers: nothing is downloaded. Run by `npm ci` /
// `npm install` (package.json "install"). It always rebuilds (`node-gyp rebuild`: the build/ folder
// is removed first), so nothing stale survives a change of the sources.
//
// node-gyp: npm's own copy (npm passes its path as npm_config_node_gyp to scripts it runs), else the
// one bundled with the npm next to this node. Headers: npm_config_nodedir when npm passes it (this
// machine's ~/.npmrc sets nodedir=/usr), else this node's install prefix (or the
// directory above its bin/) when it has include/node/node_api.h.
//
// A failed build fails the install under CI (CI=true). Elsewhere it only warns: `qcow2 map` then
// treats every file as holeless data, and says so, and hole punching / zero ranges write zeros.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const started = Date.now();

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((p) => p && existsSync(p));
}

function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  // Debian's node says its prefix is "/", with the headers in /usr/include/node: try both.
  const prefixes = [process.config.variables.node_prefix, join(dirname(process.execPath), '..')];
  const prefix = prefixes.find((p) => p && existsSync(join(p, 'include', 'node', 'node_api.h')));
  return prefix ? [`--nodedir=${prefix}`] : [];
}

function fail(message) {
  if (process.env.CI) {
    console.error(`native/build.mjs: ${message}`);
    process.exit(1);
  }
  console.warn(`native/build.mjs: warning: ${message}; qcow2 map will not see holes in files, and punching holes will write zeros`);
  process.exit(0);
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) fail('node-gyp not found (neither npm_config_node_gyp nor npm\'s bundled copy)');
const args = [nodeGyp, 'rebuild', '--loglevel=warn', ...nodedirArgs()];
const r = spawnSync(process.execPath, args, { cwd: here, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
if (r.status !== 0) {
  process.stderr.write(r.stdout ?? '');
  fail(`node-gyp rebuild failed (exit ${r.status ?? r.signal})`);
}
if (!existsSync(join(here, 'build', 'Release', 'qcow2_native.node'))) fail('node-gyp succeeded but build/Release/qcow2_native.node is missing');
console.log(`native/build.mjs: built native/build/Release/qcow2_native.node in ${((Date.now() - started) / 1000).toFixed(1)} s`);
