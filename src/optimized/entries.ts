/**
 * L2 entries of the optimized engine, decoded with the hand-written codecs straight from cached
 * tables and classified by the shared rules (src/qcow2/mapping.ts), with the runtime check that no
 * data lies past the end of the image file.
 */
import { view } from '../format/bytes.js';
import { decodeCompressedDescriptor } from '../format/compressed.js';
import { decodeL2Entry, decodeStandardDescriptor } from '../format/l2.js';
import { classifyL2Entry, type Mapping } from '../qcow2/mapping.js';
import type { OptState } from './state.js';

/** Decodes entry `index` of an L2 table (or slice of one) held in `table`, whose file offset is `tableOffset`. */
/** Shared by every all-zero entry (frozen: a mapping is never changed in place). */
const UNALLOCATED: Mapping = Object.freeze({ kind: 'unallocated' });

export function decodeMapping(st: OptState, table: Uint8Array, index: number, tableOffset: number, fileEnd = st.fileEnd): Mapping {
  const g = st.geometry;
  const at = index * g.l2EntryBytes;
  // The common case first: an all-zero standard entry is an unallocated cluster, whatever the image.
  if (!g.extendedL2 && (table[at]! | table[at + 1]! | table[at + 2]! | table[at + 3]! | table[at + 4]! | table[at + 5]! | table[at + 6]! | table[at + 7]!) === 0) {
    return UNALLOCATED;
  }
  const e = decodeL2Entry(view(table), at, g.extendedL2);
  const d = e.compressed ? decodeCompressedDescriptor(e, g.clusterBits) : undefined;
  const { hostOffset, zero } = decodeStandardDescriptor(e);
  const decoded = {
    copied: e.copied,
    compressed: d && { hostOffset: d.hostOffset, beyond2To53: d.offsetHighBits !== 0, additionalSectors: d.additionalSectors },
    hostOffset,
    zeroFlag: zero,
    allocBitmap: e.allocBitmap,
    zeroBitmap: e.zeroBitmap,
  };
  return classifyL2Entry(decoded, { geometry: g, externalDataFile: st.features.externalDataFile, fileEnd }, tableOffset + at);
}
