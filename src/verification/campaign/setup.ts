/**
 * Random image shapes, created with qemu-img (and a backing file filled by qemu-io, persistent
 * bitmaps added by qemu-img bitmap), with the backing's guest bytes and the bitmaps' granularity
 * read back through QEMU for the model.
 */
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../tools/run.js';
import { qemuBitmaps } from '../qemu-bitmaps.js';
import { luksCreateArgs, qemuImageArgs, qemuImgCalibrating } from '../qemu-image.js';
import type { BitmapShape, ImageShape } from './model.js';

async function tool(cmd: string, args: string[]): Promise<void> {
  const r = await runTool(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

export interface CreateChoice {
  compat: '0.10' | '1.1';
  clusterBits: number;
  refcountBits: number;
  extendedL2: boolean;
  zstd: boolean;
  lazyRefcounts: boolean;
  dataFile: 'none' | 'plain' | 'raw';
  backing: 'none' | 'qcow2' | 'raw';
  /** Backing size relative to the overlay: smaller, equal or larger. */
  backingScale: number;
  preallocate: boolean;
  clusters: number;
  tailSectors: number;
  /** Persistent bitmaps added after creation (v3 only): granularity (undefined: QEMU's default), disabled or not. */
  bitmaps?: { granularity: number | undefined; disabled: boolean }[];
  /**
   * LUKS-encrypted (encrypt.format=luks, passphrase CAMPAIGN_PASSPHRASE), as a user makes one with
   * qemu-img create. The campaign keeps it to v3 images without an external data file (qemu-img
   * 7.2 takes both, but an encrypted data_file_raw file holds no raw guest data) and without
   * preallocation (a preallocated cluster of an encrypted image reads as noise, not zeros); its
   * backing file stays plain.
   */
  encrypted?: boolean;
}

/** The passphrase of the campaign's encrypted images. */
export const CAMPAIGN_PASSPHRASE = 'campaign-luks-pass';

/** Granularities the campaign's bitmaps use (undefined: qemu-img bitmap's default). */
export const BITMAP_GRANULARITIES = [undefined, 512, 4096, 65536] as const;

export const createChoiceArb: fc.Arbitrary<CreateChoice> = fc
  .record({
    compat: fc.constantFrom('0.10' as const, '1.1' as const),
    clusterBits: fc.constantFrom(9, 12, 14, 16),
    refcountBits: fc.constantFrom(1, 2, 4, 8, 16, 32, 64),
    extendedL2: fc.boolean(),
    zstd: fc.boolean(),
    lazyRefcounts: fc.boolean(),
    dataFile: fc.constantFrom('none' as const, 'none' as const, 'plain' as const, 'raw' as const),
    backing: fc.constantFrom('none' as const, 'qcow2' as const, 'raw' as const),
    backingScale: fc.constantFrom(0.5, 1, 1.5),
    preallocate: fc.boolean(),
    clusters: fc.integer({ min: 8, max: 96 }),
    tailSectors: fc.integer({ min: 0, max: 3 }),
    bitmaps: fc.array(fc.record({ granularity: fc.constantFrom(...BITMAP_GRANULARITIES), disabled: fc.boolean() }), { maxLength: 2 }),
    // One shape in six is encrypted (made v3 without an external data file).
    encrypted: fc.integer({ min: 0, max: 5 }).map((k) => k === 0),
  })
  .map((c) => {
    const encrypted = c.encrypted;
    const compat = encrypted ? ('1.1' as const) : c.compat;
    const v3 = compat === '1.1';
    const dataFile = v3 && !encrypted ? c.dataFile : 'none';
    const backing = dataFile === 'raw' ? ('none' as const) : c.backing;
    const extendedL2 = v3 && c.extendedL2 && c.clusterBits >= 14;
    return {
      ...c,
      compat,
      // qemu-img: preallocation with a backing file only with extended L2.
      preallocate: c.preallocate && (backing === 'none' || extendedL2) && !encrypted,
      refcountBits: v3 ? c.refcountBits : 16,
      extendedL2,
      zstd: v3 && c.zstd,
      lazyRefcounts: v3 && c.lazyRefcounts,
      dataFile,
      backing,
      bitmaps: v3 ? c.bitmaps : [],
      encrypted,
    };
  });

/** createChoiceArb without encrypted shapes (for lanes that cannot open a LUKS image). */
export const plainChoiceArb: fc.Arbitrary<CreateChoice> = createChoiceArb.map((c) => ({ ...c, encrypted: false }));

export function describeChoice(c: CreateChoice): string {
  return JSON.stringify(c);
}

export interface Created {
  image: string;
  size: number;
  shape: ImageShape;
}

export async function createImage(dir: string, c: CreateChoice): Promise<Created> {
  const clusterSize = 2 ** c.clusterBits;
  const size = c.clusters * clusterSize + c.tailSectors * 512;
  const image = join(dir, 'image.qcow2');
  const opts = [
    `compat=${c.compat}`,
    `cluster_size=${clusterSize}`,
    `refcount_bits=${c.refcountBits}`,
  ];
  if (c.extendedL2) opts.push('extended_l2=on');
  if (c.zstd) opts.push('compression_type=zstd');
  if (c.lazyRefcounts) opts.push('lazy_refcounts=on');
  if (c.dataFile !== 'none') opts.push(`data_file=${join(dir, 'data.raw')}`);
  if (c.dataFile === 'raw') opts.push('data_file_raw=on');
  if (c.preallocate) opts.push('preallocation=metadata');
  const passphrase = c.encrypted ? CAMPAIGN_PASSPHRASE : undefined;
  const luks = passphrase !== undefined ? luksCreateArgs(passphrase) : undefined;
  if (luks) opts.push(luks.options);
  let backing: Uint8Array | undefined;
  const args = ['create', '-q', ...(luks?.object ?? []), '-f', 'qcow2', '-o', opts.join(',')];
  if (c.backing !== 'none') {
    const backingPath = join(dir, `backing.${c.backing}`);
    const backingSize = Math.max(512, Math.floor((size * c.backingScale) / 512) * 512);
    await tool('qemu-img', ['create', '-q', '-f', c.backing, backingPath, String(backingSize)]);
    for (let k = 0; k < 6; k++) {
      const off = Math.floor((backingSize * k) / 6 / 512) * 512;
      await tool('qemu-io', ['-f', c.backing, '-c', `write -P ${0x30 + k} ${off} ${Math.min(clusterSize + 700, backingSize - off)}`, backingPath]);
    }
    const raw = join(dir, 'backing-content.raw');
    await tool('qemu-img', ['convert', '-f', c.backing, '-O', 'raw', backingPath, raw]);
    backing = new Uint8Array(await readFile(raw));
    args.push('-b', backingPath, '-F', c.backing);
  }
  args.push(image, String(size));
  const created = await qemuImgCalibrating(args);
  if (created.code !== 0) throw new Error(`qemu-img ${args.join(' ')} failed: ${created.stderr.trim()}`);
  const made: BitmapShape[] = [];
  for (const [i, b] of (c.bitmaps ?? []).entries()) {
    const name = `b${i}`;
    await tool('qemu-img', ['bitmap', '--add', ...(b.granularity ? ['-g', String(b.granularity)] : []), ...(b.disabled ? ['--disable'] : []), ...qemuImageArgs({ path: image, passphrase }), name]);
    const listed = (await qemuBitmaps({ path: image, passphrase })).find((x) => x.name === name);
    if (!listed) throw new Error(`qemu-img bitmap --add ${name} made no bitmap that qemu-img info lists`);
    made.push({ name, granularity: listed.granularity, enabled: !b.disabled });
  }
  return {
    image,
    size,
    shape: {
      version: c.compat === '1.1' ? 3 : 2,
      clusterSize,
      backing,
      dataFileRaw: c.dataFile === 'raw',
      externalDataFile: c.dataFile !== 'none',
      refcountBits: c.refcountBits,
      bitmaps: made,
      passphrase,
    },
  };
}
