/** `qcow2 verify` (the README's main job) runs end to end on part of the corpus and passes. */
import { describe, expect, it } from 'vitest';
import { qcow2 } from '../support/cli.js';
import { CORPUS_DIR } from './corpus.js';

describe('qcow2 verify', () => {
  it('checks the corpus, runs a campaign, round trips and crash states, and prints what it checked', async () => {
    const filter = '^(v2-c512|v3-c64k-extl2|v3-snapshots|v3-bitmaps|v3-luks)$';
    const r = await qcow2(['verify', '--dir', CORPUS_DIR, '--filter', filter, '--runs', '4', '--round-trips', '1', '--crash-states', '36', '--seed', '7']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^(v2|v3)-/.test(l));
    expect(rows).toHaveLength(5);
    for (const row of rows) expect(row).toMatch(/ ok$/);
    expect(r.stdout).toMatch(/corpus: both decoders agree.*\s5\s+0\s/);
    expect(r.stdout).toMatch(/corpus: reads = qemu-img convert \(reference and optimized\)\s+8\s+0\s/);
    expect(r.stdout).toMatch(/differential campaign: model, reference and optimized engines\s+4\s+0\s/);
    expect(r.stdout).toMatch(/round trips:.*\s24\s+0\s/);
    // LUKS is left to the tests: 4 of the 5 images.
    expect(r.stdout).toMatch(/corpus: qcow2 check = qemu-img check \(JSON and exit status\)\s+4\s+0\s/);
    // One state per workload and engine (13 workloads, prealloc-resize the last added; 3 engines).
    expect(r.stdout).toMatch(/crash states: open, qemu-img check and ours clean, flushed data\s+39\s+0\s/);
    expect(r.stdout).toMatch(/all checks passed in [\d.]+ s \(seed 7\)/);
  }, 300_000);

  it('refuses an unknown option with a usage error', async () => {
    const r = await qcow2(['verify', '--bogus']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^qcow2 verify: usage: /);
  });
});
