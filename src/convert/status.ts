/**
 * What qemu-img convert makes of each range of its source (convert_iteration_sectors):
 *  - `data`: read it (through the whole chain) and write what is not zero;
 *  - `zero`: it reads as zeros;
 *  - `backing`: leave the target unallocated there, so that the target's backing file shows
 *    through (only when the target has one).
 * Without a backing file for the target the whole chain answers (data or zeros). With one, only
 * the source's top layer does (bdrv_block_status_above down to its backing file): what it does not
 * allocate is `backing` — or `zero` past the end of its backing file — and zeros past the end of
 * a new target's backing file are `backing` too (they read as zeros there anyway).
 */
import { contentExtents } from '../engine/chain.js';
import type { BlockDevice } from '../engine/types.js';
import { BLOCK_STATUS_CHUNK_BYTES } from '../limits.js';

export type SourceStatus = 'data' | 'zero' | 'backing';

export interface StatusPlan {
  /** The target has a backing file (`-B`). */
  targetHasBacking: boolean;
  /** The new target's backing file's size (known only for a new target); zeros from there on are `backing`. */
  targetBackingSize?: number | undefined;
}

interface Run {
  start: number;
  end: number;
  status: SourceStatus;
}

/** Answers the status at an offset, from runs asked for a window at a time. */
export class StatusCursor {
  private runs: Run[] = [];
  private readonly topOnly: boolean;

  constructor(
    private readonly source: BlockDevice,
    private readonly plan: StatusPlan,
  ) {
    this.topOnly = plan.targetHasBacking && source.backing !== undefined;
  }

  /** The status at `pos` and where that status ends. */
  async at(pos: number): Promise<{ status: SourceStatus; end: number }> {
    let run = this.runs.find((r) => r.start <= pos && pos < r.end);
    if (!run) {
      this.runs = await this.window(pos);
      run = this.runs.find((r) => r.start <= pos && pos < r.end) as Run;
    }
    let { status, end } = run;
    const backingSize = this.plan.targetBackingSize;
    if (backingSize !== undefined) {
      // Split around the target backing file's end: from there, zeros are handled differently.
      if (pos >= backingSize) {
        if (status === 'zero') status = 'backing';
      } else end = Math.min(end, backingSize);
    }
    return { status, end };
  }

  private async window(pos: number): Promise<Run[]> {
    const length = Math.min(BLOCK_STATUS_CHUNK_BYTES, this.source.virtualSize - pos);
    const out: Run[] = [];
    const push = (start: number, len: number, status: SourceStatus) => {
      const last = out[out.length - 1];
      if (last && last.status === status && last.end === start) last.end += len;
      else if (len > 0) out.push({ start, end: start + len, status });
    };
    if (!this.topOnly) {
      for (const e of await contentExtents(this.source, pos, length)) push(e.start, e.length, e.zero ? 'zero' : 'data');
      return out;
    }
    const backingSize = this.source.backing?.virtualSize ?? 0;
    for (const e of await this.source.mapExtents(pos, length)) {
      if (e.kind === 'data' || e.kind === 'compressed') push(e.start, e.length, 'data');
      else if (e.kind === 'zero') push(e.start, e.length, 'zero');
      else {
        // Unallocated: the backing file's, up to its end; zeros past it.
        const below = Math.max(0, Math.min(e.start + e.length, backingSize) - e.start);
        push(e.start, below, 'backing');
        push(e.start + below, e.length - below, 'zero');
      }
    }
    return out;
  }
}
