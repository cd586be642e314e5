/**
 * What qemu-img convert makes of each range of its source (convert_iteration_sectors):
 *  - `data`: read it (through the whole chain) and write what is not zero;
 *  - `zero`: it reads as zeros;
 *  - `backing`: leave the target unallocated there, so that the target's backing file shows
 *    through (only when the target has one).
 * The runs are QEMU's block status's (layerRuns below): qemu-img's buffers of data start and end
 * there, which decides what -S finds.
 * Without a backing file for the target the whole chain answers (data or zeros). With one, only
 * the source's top layer does (bdrv_block_status_above down to its backing file): what it does not
 * allocate is `backing` — or `zero` past the end of its backing file — and zeros past the end of
 * a new target's backing file are `backing` too (they read as zeros there anyway).
 */
import { type BlockDevice, type Extent, isQcow2 } from '../engine/types.js';
import { l2Span } from '../rebase/allocation.js';
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

  /** Index in `runs` of the last run answered: positions are asked for in order. */
  private next = 0;

  /** The status at `pos` and where that status ends. */
  async at(pos: number): Promise<{ status: SourceStatus; end: number }> {
    while (this.next < this.runs.length && (this.runs[this.next] as Run).end <= pos) this.next++;
    let run = this.runs[this.next];
    if (run === undefined || run.start > pos) {
      this.runs = await this.window(pos);
      this.next = 0;
      run = this.runs[0] as Run;
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
    // A window of at most 64 Ki clusters (1 GiB), as qemu-img map asks.
    const window = isQcow2(this.source) ? Math.min(BLOCK_STATUS_CHUNK_BYTES, this.source.clusterSize * 65536) : BLOCK_STATUS_CHUNK_BYTES;
    const length = Math.min(window, this.source.virtualSize - pos);
    const out: Run[] = [];
    const push = (start: number, len: number, status: SourceStatus) => {
      if (len > 0) out.push({ start, end: start + len, status });
    };
    if (this.topOnly) {
      const backingSize = this.source.backing?.virtualSize ?? 0;
      for (const e of await layerRuns(this.source, pos, length)) {
        if (e.kind !== 'unallocated') push(e.start, e.length, e.kind === 'zero' ? 'zero' : 'data');
        else {
          // Unallocated: the backing file's, up to its end; zeros past it.
          const below = Math.max(0, Math.min(e.start + e.length, backingSize) - e.start);
          push(e.start, below, 'backing');
          push(e.start + below, e.length - below, 'zero');
        }
      }
    } else await chainRuns(this.source, pos, length, push);
    return out;
  }
}

/**
 * What the chain from `dev` down reads as, in the runs QEMU's block status answers (not merged:
 * a run of data is where qemu-img's buffers start and end, which decides what -S finds).
 */
async function chainRuns(dev: BlockDevice, offset: number, length: number, push: (start: number, len: number, status: SourceStatus) => void): Promise<void> {
  for (const e of await layerRuns(dev, offset, length)) {
    if (e.kind !== 'unallocated') {
      push(e.start, e.length, e.kind === 'zero' ? 'zero' : 'data');
      continue;
    }
    const below = dev.backing;
    const covered = below ? Math.max(0, Math.min(e.start + e.length, below.virtualSize) - e.start) : 0;
    if (below && covered > 0) await chainRuns(below, e.start, covered, push);
    // Past the end of the chain: zeros.
    push(e.start + covered, e.length - covered, 'zero');
  }
}

/**
 * One layer's extents as QEMU's qcow2 driver answers block status: no run crosses the end of an
 * L2 table, and a compressed cluster is a run of its own.
 */
async function layerRuns(dev: BlockDevice, offset: number, length: number): Promise<Extent[]> {
  const span = l2Span(dev);
  const cluster = isQcow2(dev) ? dev.clusterSize : Infinity;
  const out: Extent[] = [];
  for (const e of await dev.mapExtents(offset, length)) {
    const step = e.kind === 'compressed' ? cluster : span;
    for (let at = e.start; at < e.start + e.length; ) {
      const end = Math.min(e.start + e.length, Number.isFinite(step) ? (Math.floor(at / step) + 1) * step : Infinity);
      out.push({ ...e, start: at, length: end - at, ...(e.hostOffset === undefined ? {} : { hostOffset: e.hostOffset + (at - e.start) }) });
      at = end;
    }
  }
  return out;
}
