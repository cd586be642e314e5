/**
 * `qemu-img amend` on an open qcow2 image (QEMU 7.2's qcow2_amend_options): the options checked
 * against the image, then the steps in QEMU's order: upgrade to compat=1.1 first (other changes may
 * need it), the LUKS key slots (encrypt.*, src/crypto/luks-keys.ts), the refcount width, data_file_raw and data_file (one header write), the backing file
 * (which amend may only name again as it is), lazy_refcounts, the size, and the downgrade to
 * compat=0.10 last (after what it could not keep is gone). A failing step leaves the steps before it
 * done, as in QEMU. The steps are src/qcow2/amend.ts, src/qcow2/refcount-order.ts.
 */
import { amendLuksKeySlots, type LuksAmendOptions, type LuksSecrets } from '../crypto/luks-keys.js';
import { corrupt, unsupported, usage } from '../errors.js';
import { decodeLuksHeader, LUKS_HEADER_SIZE } from '../format/luks.js';
import { downgradeToV2, setDataFileFields, setLazyRefcounts, upgradeToV3 } from '../qcow2/amend.js';
import type { Qcow2Front } from '../qcow2/front.js';
import { changeRefcountOrder } from '../qcow2/refcount-order.js';
import { checkNewSize } from '../qcow2/resize.js';
import type { Qcow2State } from '../qcow2/state.js';
import { type AmendRequest, checkAmendRequest } from './options.js';

/** How amend runs: progress, --force, and the passphrases a key slot change needs. */
export interface AmendRun {
  onProgress?: (done: number, total: number) => void;
  force?: boolean;
  secrets?: LuksSecrets;
}

export async function amendImage(device: Qcow2Front<Qcow2State>, request: AmendRequest, run: AmendRun = {}): Promise<void> {
  const { onProgress } = run;
  const st = device.state;
  const oldVersion = st.header.version;
  const { version, keySlots } = checkAmendRequest(request, {
    version: oldVersion,
    encrypted: st.header.cryptMethod !== 0,
    luks: st.header.cryptMethod === 2,
    hasDataFile: st.features.externalDataFile,
    dataFileRaw: st.features.dataFileRaw,
  });
  await device.changeMetadata(async (st) => {
    if (version > oldVersion) await upgradeToV3(st);
    if (keySlots !== undefined) {
      if (run.secrets === undefined) throw unsupported('amend: key slot changes need the image opened with its secret');
      await amendKeySlots(st, keySlots, run.secrets, run.force === true);
    }
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

/** The LUKS area of the open image, its header read again, amended (src/crypto/luks-keys.ts). */
async function amendKeySlots(st: Qcow2State, o: LuksAmendOptions, secrets: LuksSecrets, force: boolean): Promise<void> {
  const ext = st.extensions.find((e) => e.kind === 'crypto-header');
  if (ext?.kind !== 'crypto-header') throw corrupt('crypt_method is 2 (LUKS) but the image has no LUKS header', { field: 'crypt_method', offset: 32 });
  const base = Number(ext.offset);
  const areaLength = Number(ext.length);
  const header = decodeLuksHeader(await st.file.read(base, LUKS_HEADER_SIZE), base);
  await amendLuksKeySlots(header, areaLength, o, secrets, {
    read: async (offset, length) => {
      const got = await st.file.read(base + offset, length);
      if (got.byteLength !== length) throw corrupt(`LUKS key material at ${base + offset} lies past the end of the file`, { offset: base + offset });
      return got;
    },
    write: (offset, data) => st.file.write(base + offset, data),
    flush: () => st.file.flush(),
  }, force);
}
