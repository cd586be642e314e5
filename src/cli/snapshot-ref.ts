/**
 * qemu-img's `-l SNAPSHOT` (convert, measure): an internal snapshot of the source to read instead of
 * its active state, as QEMU 7.2 takes it. `snapshot.id=ID,snapshot.name=NAME` (either, or both: the
 * snapshot with that ID and that name) is parsed as a QEMU option list; anything else is an ID or a
 * name, IDs first. The snapshot itself is found by the engine (src/qcow2/snapshots.ts); this file
 * has qemu-img's messages for what goes wrong.
 */
import { probeFormat } from '../device/open.js';
import type { SnapshotRef } from '../engine/types.js';
import { isQcow2Error, usage } from '../errors.js';
import { isMissingSnapshot } from '../qcow2/snapshots.js';
import type { CliContext } from './context.js';
import { splitOptionList } from './image-opts.js';

const SNAPSHOT_OPT_BASE = 'snapshot.';

/** -l's argument; a bad option list is refused with qemu-img's two lines. */
export function snapshotRef(text: string, command: string, ctx: CliContext): SnapshotRef {
  if (!text.startsWith(SNAPSHOT_OPT_BASE)) return text;
  try {
    const opts = splitOptionList(text);
    for (const key of opts.keys()) if (key !== 'snapshot.id' && key !== 'snapshot.name') throw usage(`Invalid parameter '${key}'`);
    const id = opts.get('snapshot.id');
    const name = opts.get('snapshot.name');
    return { ...(id === undefined ? {} : { id }), ...(name === undefined ? {} : { name }) };
  } catch (err) {
    if (!isQcow2Error(err) || err.code !== 'usage') throw err;
    ctx.stderr(`qcow2 ${command}: usage: ${err.message}\n`);
    throw usage(`Failed in parsing snapshot param '${text}'`);
  }
}

/**
 * Opens the image at `path` with `open`, as it was at `snapshot` if one is given, in qemu-img's
 * order and with its messages: the image opens first (its failures as `openError` words them), then
 * the snapshot is loaded: a raw image has none to load, a missing one "Can't find snapshot".
 */
export async function openAtSnapshot<T extends { close(): Promise<void> }>(
  path: string,
  format: string | undefined,
  snapshot: SnapshotRef | undefined,
  open: (at: SnapshotRef | undefined) => Promise<T>,
  openError: (err: unknown) => unknown,
): Promise<T> {
  const attempt = async (at: SnapshotRef | undefined) => {
    try {
      return await open(at);
    } catch (err) {
      if (at !== undefined && isMissingSnapshot(err)) throw usage("Failed to load snapshot: Can't find snapshot", { cause: err });
      throw await openError(err);
    }
  };
  if (snapshot === undefined || (format ?? (await probeFormat(path).catch(() => undefined))) !== 'raw') return attempt(snapshot);
  await (await attempt(undefined)).close();
  throw usage("Failed to load snapshot: Block format 'raw' used by device '' does not support temporarily loading internal snapshots");
}
