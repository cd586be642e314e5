/**
 * `createImage(path, options)`: a new qcow2 image laid out byte for byte as `qemu-img create -f qcow2`
 * (QEMU 7.2) lays it out (see layout.ts). All image I/O goes through a BlockFile.
 */
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isZero } from '../format/bytes.js';
import { type BlockFile, writeZeros } from '../io/block-file.js';
import { NodeFile } from '../io/node-file.js';
import { CREATE_WRITE_BATCH_BYTES } from '../limits.js';
import { planImage, type ImagePlan } from './layout.js';
import { createLuksArea } from '../crypto/luks-keys.js';
import { usage } from '../errors.js';
import { type CreateOptions, type ResolvedCreateOptions, validateCreateOptions } from './options.js';

export interface CreateResult {
  options: ResolvedCreateOptions;
  plan: ImagePlan;
}

/**
 * Creates (or truncates and overwrites) the image at `path`. An external data file is created (or
 * truncated: its old contents are lost, as with qemu-img) relative to `cwd` (default: the process's
 * working directory), but its name is stored as given. Options are checked before any file is touched.
 */
export async function createImage(
  path: string,
  options: CreateOptions,
  io: { cwd?: string; secret?: (id: string) => Uint8Array } = {},
): Promise<CreateResult> {
  const resolved = validateCreateOptions(options);
  let luksArea: Uint8Array | undefined;
  if (resolved.encrypt !== undefined) {
    // The passphrase is copied by the lookup and zeroed here once the key slot is made.
    if (io.secret === undefined) throw usage(`No secret with id '${resolved.encrypt.keySecret}'`);
    const passphrase = io.secret(resolved.encrypt.keySecret);
    try {
      luksArea = await createLuksArea(resolved.encrypt, passphrase);
    } finally {
      passphrase.fill(0);
    }
  }
  const plan = planImage(resolved, luksArea);
  const cwd = io.cwd ?? process.cwd();
  const imagePath = resolve(cwd, path);
  const dataPath = resolved.dataFile === undefined ? undefined : resolve(cwd, resolved.dataFile);
  // As qemu-img: the image file, then the data file, are created (truncated) before anything is
  // written, and both are deleted when the creation fails.
  const created: string[] = [];
  const open: NodeFile[] = [];
  try {
    const image = await NodeFile.open(imagePath, { create: true });
    created.push(imagePath);
    open.push(image);
    let data: NodeFile | undefined;
    if (dataPath !== undefined) {
      data = await NodeFile.open(dataPath, { create: true });
      created.push(dataPath);
      open.push(data);
    }
    await writePlan(image, plan);
    if (data !== undefined) await data.truncate(plan.dataFileLength ?? 0);
    await allocatePlanned(plan.allocated?.file === 'data' ? data : image, plan.allocated);
    for (const f of open) await f.flush();
  } catch (err) {
    await Promise.allSettled(open.map((f) => f.close()));
    open.length = 0;
    await Promise.allSettled(created.map((p) => rm(p, { force: true })));
    throw err;
  } finally {
    for (const f of open) await f.close();
  }
  return { options: resolved, plan };
}

/**
 * preallocation=falloc or full: the storage of the planned range allocated (zeroRange: fallocate,
 * reading as zeros) or written with zeros, as QEMU's truncate of the file with that mode.
 */
async function allocatePlanned(file: BlockFile | undefined, allocated: ImagePlan['allocated']): Promise<void> {
  if (file === undefined || allocated === undefined || allocated.length <= 0) return;
  if (allocated.mode === 'falloc') await file.zeroRange(allocated.offset, allocated.length);
  else await writeZeros(file, 'zeroRange', allocated.offset, allocated.length);
}

/**
 * Writes a plan to an image file, which must be empty (or is truncated first): the non-zero clusters
 * in order, runs of adjacent clusters in one write, then the exact final length.
 */
export async function writePlan(file: BlockFile, plan: ImagePlan): Promise<void> {
  if ((await file.size()) !== 0) await file.truncate(0);
  const cs = plan.clusterSize;
  const indexes = [...plan.clusters.keys()].sort((a, b) => a - b);
  let run: Uint8Array[] = [];
  let runStart = -1;
  const flush = async () => {
    if (run.length === 0) return;
    const start = runStart * cs;
    const length = Math.min(run.length * cs, plan.fileLength - start);
    if (length > 0) {
      const bytes = new Uint8Array(run.length * cs);
      run.forEach((c, i) => bytes.set(c, i * cs));
      await file.write(start, bytes.subarray(0, length));
    }
    run = [];
  };
  for (const index of indexes) {
    const cluster = plan.clusters.get(index);
    if (cluster === undefined || isZero(cluster)) continue;
    if (run.length > 0 && runStart + run.length !== index) await flush();
    if (run.length === 0) runStart = index;
    run.push(cluster);
    if (run.length * cs >= CREATE_WRITE_BATCH_BYTES) await flush();
  }
  await flush();
  await file.truncate(plan.fileLength);
}

