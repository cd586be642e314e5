/**
 * qemu-img's `-l SNAPSHOT` (convert, measure): an internal snapshot of the source to read instead of
 * its active state, as QEMU 7.2 takes it. `snapshot.id=ID,snapshot.name=NAME` (either, or both: the
 * snapshot with that ID and that name) is parsed as a QEMU option list; anything else is an ID or a
 * name, IDs first. The snapshot itself is found by the engine (src/qcow2/snapshots.ts); this file
 * has qemu-img's messages for what goes wrong.
 */
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

/** qemu-img's message when a source of `format` cannot show the snapshot asked for (`err`: the engine's failure). */
export function snapshotLoadError(format: string, err?: unknown): unknown {
  if (format === 'raw') return usage(`Failed to load snapshot: Block format 'raw' used by device '' does not support temporarily loading internal snapshots`);
  if (isMissingSnapshot(err)) return usage("Failed to load snapshot: Can't find snapshot", { cause: err });
  return err;
}
