/**
 * One case in a child process, for the cases that hold the thread (oracle `hang`), grow the memory or
 * kill the process (`crash`: V8's fatal errors cannot be caught): the parent
 * (runIsolated) writes the image to a file, runs this module with node, and kills it when it has
 * not answered in time. Printed on stdout: the findings as JSON.
 *
 *   node dist/verification/fuzz/child.js TARGET IMAGE PLACEHOLDER
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { finding, type Finding, runCase, StrayWatcher } from './oracle.js';
import { targetNamed } from './targets.js';

async function main(argv: string[]): Promise<void> {
  const [name, image, placeholder] = argv;
  const target = name === undefined ? undefined : targetNamed(name);
  if (!target || image === undefined || placeholder === undefined) throw new Error('usage: child.js TARGET IMAGE PLACEHOLDER');
  const watcher = new StrayWatcher();
  watcher.install();
  const r = await runCase(target, new Uint8Array(await readFile(image)), placeholder, watcher);
  process.stdout.write(JSON.stringify(r.findings));
  process.exit(0);
}

/** Runs one case in a child process (the built module beside this one); a child that does not answer in `limitMs` is a hang. */
export async function runIsolated(target: string, bytes: Uint8Array, workDir: string, placeholder: string, limitMs: number): Promise<Finding[]> {
  const image = join(workDir, 'isolated.qcow2');
  await writeFile(image, bytes);
  const script = fileURLToPath(new URL('./child.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, target, image, placeholder], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killed) resolve([finding(target, 'hang', 'a case that never returns')]);
      else if (code !== 0 || out === '') resolve([finding(target, 'crash', `the process died (${signal ?? `exit status ${code}`})`)]);
      else resolve(JSON.parse(out) as Finding[]);
    });
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(2);
  });
}
