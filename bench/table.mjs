// Runs benchmark definitions and prints the table: benchmark, ours (median), peer (median), ratio,
// goal, met?. Shared by run.mjs and by each benchmark script run on its own.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { scale } from './lib.mjs';

export function isMain(url) {
  return process.argv[1] !== undefined && url === pathToFileURL(process.argv[1]).href;
}

function formatValue(value, unit) {
  if (unit === 's') return `${value.toFixed(2)} s`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M ${unit}`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k ${unit}`;
  return `${value.toFixed(1)} ${unit}`;
}

/** Rows for the results; ratio is always "ours / peer" in throughput (higher is better). */
export function tableText(results) {
  const header = ['benchmark', 'ours (median)', 'peer (median)', 'ratio', 'goal', 'met?'];
  const rows = results.map((r) => [
    r.name,
    formatValue(r.ours, r.unit),
    formatValue(r.peer, r.unit),
    `${r.ratio.toFixed(2)}x`,
    `>= ${r.goal.toFixed(2)}x`,
    r.ratio >= r.goal ? 'yes' : 'no',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n') + '\n';
}

const USAGE = `usage: node bench/run.mjs [--quick] [--rounds N] [--json] [--strict] [--list] [NAME...]
Runs the named benchmarks (all by default) against their QEMU peers and prints a table.
  --quick     small images and counts (a smoke run; figures are not meaningful)
  --rounds N  rounds per benchmark (default 3, or 1 with --quick); medians are reported
  --json      print the results as JSON after the table
  --strict    exit 1 when a goal is not met
`;

export async function main(definitions, argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        quick: { type: 'boolean' },
        rounds: { type: 'string' },
        json: { type: 'boolean' },
        strict: { type: 'boolean' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.list) {
    for (const d of definitions) process.stdout.write(`${d.name.padEnd(22)} ${d.description}\n`);
    return 0;
  }
  const byName = new Map(definitions.map((d) => [d.name, d]));
  const unknown = positionals.filter((n) => !byName.has(n));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${[...byName.keys()].join(', ')}\n`);
    return 2;
  }
  const chosen = positionals.length ? positionals.map((n) => byName.get(n)) : definitions;
  const sizes = scale(values.quick === true);
  const rounds = values.rounds === undefined ? sizes.rounds : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write(`--rounds must be a positive integer\n`);
    return 2;
  }
  const results = [];
  for (const def of chosen) {
    process.stderr.write(`bench: ${def.name} (${sizes.label}, ${rounds} round${rounds > 1 ? 's' : ''}): ${def.description}\n`);
    const r = await def.run({ sizes, rounds });
    const result = { name: def.name, goal: def.goal, unit: r.unit, ours: r.ours, peer: r.peer, ratio: r.ratio, peerName: r.peerName, commands: r.commands, oursAll: r.oursAll, peerAll: r.peerAll, notes: r.notes ?? [] };
    const secs = (list) => list.map((v) => v.toFixed(3)).join(', ');
    process.stderr.write(`bench:   seconds per run: ours ${secs(r.oursAll)}; ${r.peerName} ${secs(r.peerAll)}\n`);
    results.push(result);
  }
  process.stdout.write(tableText(results));
  for (const r of results) {
    process.stdout.write(`  ${r.name}: peer is ${r.peerName}\n`);
    for (const n of r.notes) process.stdout.write(`  ${r.name}: ${n}\n`);
  }
  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return values.strict && results.some((r) => r.ratio < r.goal) ? 1 : 0;
}
