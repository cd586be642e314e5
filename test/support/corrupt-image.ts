/**
 * Helpers for hand-corrupted images: build a small image with qemu-img/qemu-io, find where its
 * tables are with our codecs (so a patch names the structure, not a magic number), patch bytes.
 */
import { execa } from 'execa';
import { open } from 'node:fs/promises';
import { view } from '../../src/format/bytes.js';
import { decodeL1Entry } from '../../src/format/l1.js';
import { readMetadata, type ImageMetadata } from '../../src/image/metadata.js';
import { NodeFile } from '../../src/io/node-file.js';

export async function qemuImg(args: string[], cwd?: string) {
  return execa('qemu-img', args, { reject: false, ...(cwd ? { cwd } : {}) });
}

export async function qemuIo(path: string, ...cmds: string[]): Promise<void> {
  await execa('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), path]);
}

export interface Tables {
  meta: ImageMetadata;
  clusterSize: number;
  fileSize: number;
  l1Offset: number;
  /** L2 table offsets of the active L1 (0 = none). */
  l2: number[];
  refcountTableOffset: number;
  /** Offset of refcount block 0. */
  refblock0: number;
  /** Byte offset in the file of the refcount of cluster `k` (16-bit refcounts, block 0). */
  refcountAt(k: number): number;
  /** Byte offset of L2 entry `index` of the table of L1 entry `l1Index`. */
  l2EntryAt(l1Index: number, index: number): number;
}

export async function tables(path: string): Promise<Tables> {
  const file = await NodeFile.open(path, { readOnly: true });
  try {
    const meta = await readMetadata(file);
    const { layout } = meta;
    const C = layout.geometry.clusterSize;
    const l1 = view(await file.read(layout.l1TableOffset, layout.l1Size * 8));
    const l2: number[] = [];
    for (let i = 0; i < layout.l1Size; i++) l2.push(decodeL1Entry(l1, i * 8).l2Offset);
    const rt = view(await file.read(layout.refcountTableOffset, 8));
    const refblock0 = Number(rt.getBigUint64(0) & ~0x1ffn);
    if (layout.geometry.refcountOrder !== 4) throw new Error('these helpers assume 16-bit refcounts');
    return {
      meta,
      clusterSize: C,
      fileSize: meta.fileSize,
      l1Offset: layout.l1TableOffset,
      l2,
      refcountTableOffset: layout.refcountTableOffset,
      refblock0,
      refcountAt: (k) => refblock0 + 2 * k,
      l2EntryAt: (l1Index, index) => (l2[l1Index] ?? 0) + index * layout.geometry.l2EntryBytes,
    };
  } finally {
    await file.close();
  }
}

export async function readU64(path: string, offset: number): Promise<bigint> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    await fh.read(b, 0, 8, offset);
    return b.readBigUInt64BE(0);
  } finally {
    await fh.close();
  }
}

export async function writeBytes(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.byteLength, offset);
  } finally {
    await fh.close();
  }
}

export async function writeU64(path: string, offset: number, value: bigint): Promise<void> {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, value));
  await writeBytes(path, offset, b);
}

export async function writeU16(path: string, offset: number, value: number): Promise<void> {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  await writeBytes(path, offset, b);
}
