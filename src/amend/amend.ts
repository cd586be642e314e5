/**
 * `qemu-img amend` on an open qcow2 image (QEMU 7.2's qcow2_amend_options): the options checked
 * against the image, then the steps in QEMU's order: upgrade to compat=1.1 first (other changes may
 * need it), the refcount width, data_file_raw and data_file (one header write), the backing file
 * (which amend may only name again as it is), lazy_refcounts, the size, and the downgrade to
 * compat=0.10 last (after what it could not keep is gone). A failing step leaves the steps before it
 * done, as in QEMU. The steps are src/qcow2/amend.ts, src/qcow2/refcount-order.ts.
 */
import { unsupported, usage } from '../errors.js';
import { downgradeToV2, setDataFileFields, setLazyRefcounts, upgradeToV3 } from '../qcow2/amend.js';
import type { Qcow2Front } from '../qcow2/front.js';
import { changeRefcountOrder } from '../qcow2/refcount-order.js';
import { checkNewSize } from '../qcow2/resize.js';
import type { Qcow2State } from '../qcow2/state.js';
import { type AmendRequest, checkAmendRequest } from './options.js';

export async function amendImage(device: Qcow2Front<Qcow2State>, request: AmendRequest, onProgress?: (done: number, total: number) => void): Promise<void> {
  const st = device.state;
  const oldVersion = st.header.version;
  const version = checkAmendRequest(request, {
    version: oldVersion,
    encrypted: st.header.cryptMethod !== 0,
    hasDataFile: st.features.externalDataFile,
    dataFileRaw: st.features.dataFileRaw,
  });
  await device.changeMetadata(async (st) => {
    if (version > oldVersion) await upgradeToV3(st);
    const bits = request.refcountBits;
    if (bits !== undefined && bits !== 1 << st.geometry.refcountOrder) {
      if (version < 3 && bits !== 16) {
        throw usage('Refcount widths other than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)');
      }
      await changeRefcountOrder(st, Math.log2(bits), onProgress);
    }
    await setDataFileFields(st, request.dataFileRaw ?? st.features.dataFileRaw, request.dataFile);
    if (request.backingFile !== undefined || request.backingFormat !== undefined) {
      const format = st.extensions.find((e) => e.kind === 'backing-format');
      if (request.backingFile !== st.backingName || request.backingFormat !== (format?.kind === 'backing-format' ? format.name : undefined)) {
        throw usage("Cannot amend the backing file\nYou can use 'qemu-img rebase' instead.");
      }
    }
    if (request.lazyRefcounts !== undefined) await setLazyRefcounts(st, request.lazyRefcounts, version);
  });
  if (request.size !== undefined) {
    const g = st.geometry;
    checkNewSize({ version: st.header.version, snapshots: st.header.nbSnapshots, clusterSize: g.clusterSize, extendedL2: g.extendedL2 }, BigInt.asIntN(64, request.size));
    if (request.size > BigInt(Number.MAX_SAFE_INTEGER)) throw unsupported(`amend: sizes above ${Number.MAX_SAFE_INTEGER} bytes are not supported`);
    // With data_file_raw the new area is mapped 1:1 at once, as QEMU does (src/qcow2/resize.ts).
    await device.resize(Number(request.size));
  }
  if (version < oldVersion) await device.changeMetadata((st) => downgradeToV2(st, onProgress));
}
