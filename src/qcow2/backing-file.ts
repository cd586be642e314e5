/**
 * Changing the backing file an image names (what `qemu-img rebase` ends with; QEMU's
 * bdrv_change_backing_file and qcow2_change_backing_file): the backing file name stored after the
 * header extensions and the backing format extension are replaced, and cluster 0 is rewritten in
 * one write (header.ts). Nothing else changes: keeping the guest content the same over the new
 * backing file is the caller's work, done (and flushed) before this runs.
 *
 * Refused before anything is written, each with the errno QEMU answers: a format without a name,
 * an empty name (no name is `undefined`), a name over 1023 bytes (QEMU's limit), a backing file
 * for an image whose external data file is raw (its data file alone would no longer say the
 * content), all EINVAL; a header, extensions and name that do not fit in the first cluster, ENOSPC.
 */
import { isQcow2Error, usage } from '../errors.js';
import { encodeString } from '../format/bytes.js';
import type { HeaderExtension } from '../format/extensions.js';
import { MAX_BACKING_FILE_NAME } from '../limits.js';
import { encodeHeaderCluster, writeHeader } from './header.js';
import type { Qcow2State } from './state.js';

/**
 * Makes the image name `name` (undefined: no backing file) with format `format` (undefined: no
 * backing format extension). The state follows the header.
 */
export async function changeBackingFile(st: Qcow2State, name: string | undefined, format: string | undefined): Promise<void> {
  if (format !== undefined && name === undefined) throw usage('a backing format needs a backing file name', { errno: 'EINVAL', field: 'backing_format' });
  if (name !== undefined) {
    if (name.length === 0 || name.includes('\0')) throw usage('the backing file name is empty or holds a NUL byte', { errno: 'EINVAL', field: 'backing_file_offset' });
    if (encodeString(name).byteLength > MAX_BACKING_FILE_NAME) {
      throw usage(`the backing file name is longer than ${MAX_BACKING_FILE_NAME} bytes`, { errno: 'EINVAL', field: 'backing_file_size' });
    }
    if (st.features.dataFileRaw) {
      throw usage('an image whose external data file is raw (data_file_raw) cannot have a backing file', { errno: 'EINVAL', field: 'autoclear_features' });
    }
  }
  if (format !== undefined && (format.length === 0 || format.includes('\0'))) {
    throw usage('the backing format is empty or holds a NUL byte', { errno: 'EINVAL', field: 'backing_format' });
  }
  const extensions: HeaderExtension[] = st.extensions.filter((e) => e.kind !== 'backing-format');
  // QEMU writes the backing format first of the extensions.
  if (format !== undefined) extensions.unshift({ kind: 'backing-format', name: format });
  try {
    // On a copy of the header: encoding sets its backing-name fields.
    encodeHeaderCluster({ ...st.header }, extensions, name, st.geometry.clusterSize);
  } catch (err) {
    if (!isQcow2Error(err) || err.field !== 'header') throw err;
    throw usage('the header, its extensions and the backing file name do not fit in the first cluster', {
      errno: 'ENOSPC',
      field: 'backing_file_offset',
      cause: err,
    });
  }
  st.extensions = extensions;
  st.backingName = name;
  await writeHeader(st);
}
