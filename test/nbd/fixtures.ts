/**
 * Images the NBD tests serve, built with QEMU's own tools so that what a server reads back is
 * judged against bytes QEMU wrote, and the checks that follow a test.
 */
import { execa } from 'execa';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { toolEnv } from '../support/tools.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/**
 * The known image: 64 MiB qcow2 (64 KiB clusters), 0xaa over [0, 1 MiB), a zero cluster run over
 * [2 MiB, 3 MiB), 0xbb over [8 MiB, 8 MiB + 64 KiB); every other byte reads as zero.
 */
export const KNOWN = {
  size: 64 * MiB,
  aa: { offset: 0, length: 1 * MiB },
  zeroed: { offset: 2 * MiB, length: 1 * MiB },
  bb: { offset: 8 * MiB, length: 64 * KiB },
  /** A range that reads as zero and that no fixture write touches. */
  empty: { offset: 4 * MiB, length: 1 * MiB },
} as const;

export async function makeKnownImage(path: string): Promise<void> {
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(KNOWN.size)]);
  await execa('qemu-io', [
    '-f',
    'qcow2',
    '-c',
    `write -q -P 0xaa ${KNOWN.aa.offset} ${KNOWN.aa.length}`,
    '-c',
    `write -q -z ${KNOWN.zeroed.offset} ${KNOWN.zeroed.length}`,
    '-c',
    `write -q -P 0xbb ${KNOWN.bb.offset} ${KNOWN.bb.length}`,
    path,
  ]);
}

/** The known image's guest bytes at [offset, offset + length). */
export function knownBytes(offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const fill = (r: { offset: number; length: number }, v: number) => {
    const s = Math.max(offset, r.offset);
    const e = Math.min(offset + length, r.offset + r.length);
    if (e > s) b.fill(v, s - offset, e - offset);
  };
  fill(KNOWN.aa, 0xaa);
  fill(KNOWN.bb, 0xbb);
  return b;
}

/** A temporary directory removed by the returned function. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A fresh copy of a template image. */
export async function copyOf(template: string, path: string): Promise<string> {
  await copyFile(template, path);
  return path;
}

/**
 * A good client, after whatever came before: qemu-io over NBD (its own connection) reads the
 * known bytes with pattern checks (exit status 1 and "Pattern verification failed" otherwise).
 */
export async function goodClientReads(uri: string): Promise<void> {
  const r = await execa(
    'qemu-io',
    [
      '-f',
      'raw',
      '-r',
      '-c',
      `read -P 0xaa ${KNOWN.aa.offset} ${KNOWN.aa.length}`,
      '-c',
      `read -P 0xbb ${KNOWN.bb.offset} ${KNOWN.bb.length}`,
      '-c',
      `read -P 0 ${KNOWN.empty.offset} ${KNOWN.empty.length}`,
      uri,
    ],
    { reject: false, timeout: 30_000, env: toolEnv() },
  );
  expect(r.stdout + r.stderr, 'a good client reads the known bytes').not.toMatch(/verification failed|error|fail/i);
  expect(r.exitCode, `qemu-io over NBD: ${r.stderr}`).toBe(0);
}

/** `qemu-img check` finds no errors and no leaks (exit status 0). */
export async function expectCheckClean(image: string): Promise<void> {
  const r = await execa('qemu-img', ['check', image], { reject: false });
  expect(r.exitCode, `qemu-img check ${image}:\n${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stdout).toMatch(/No errors were found on the image/);
}

/** `qemu-img compare` says the two hold the same guest bytes. */
export async function expectSameContents(a: string, b: string, formats: [string, string] = ['qcow2', 'qcow2']): Promise<void> {
  const r = await execa('qemu-img', ['compare', '-f', formats[0], '-F', formats[1], a, b], { reject: false });
  expect(r.exitCode, `qemu-img compare ${a} ${b}:\n${r.stdout}\n${r.stderr}`).toBe(0);
}
