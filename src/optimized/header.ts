/** Rewriting cluster 0 (header, extensions, backing name), after everything it points to. */
import { corrupt } from '../errors.js';
import { encodeString } from '../format/bytes.js';
import { INCOMPAT_CORRUPT } from '../format/constants.js';
import { encodeExtensions } from '../format/extensions.js';
import { encodeHeader } from '../format/header.js';
import type { OptState } from './state.js';

export async function writeHeader(st: OptState): Promise<void> {
  const name = st.backingName === undefined ? undefined : encodeString(st.backingName);
  const exts = encodeExtensions(st.extensions);
  const headerBytes = encodeHeader({ ...st.header, backingFileOffset: 0n, backingFileSize: 0 });
  const nameOffset = headerBytes.byteLength + exts.byteLength;
  const total = nameOffset + (name?.byteLength ?? 0);
  if (total > st.geometry.clusterSize) {
    throw corrupt(`header, extensions and backing name need ${total} bytes, more than one cluster`, { field: 'header' });
  }
  st.header.backingFileOffset = name ? BigInt(nameOffset) : 0n;
  st.header.backingFileSize = name?.byteLength ?? 0;
  const out = new Uint8Array(total);
  out.set(encodeHeader(st.header), 0);
  out.set(exts, headerBytes.byteLength);
  if (name) out.set(name, nameOffset);
  await st.order.writeThrough(0, out, 'header');
  await st.file.flush();
}

/** Marks the image corrupt on disk (when writable) so no one writes to it again. */
export async function markCorrupt(st: OptState): Promise<void> {
  if (st.readOnly || st.header.version < 3) return;
  st.header.incompatibleFeatures |= INCOMPAT_CORRUPT;
  st.features.corrupt = true;
  await writeHeader(st);
  st.readOnly = true;
}
