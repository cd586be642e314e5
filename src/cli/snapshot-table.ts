/** The snapshot list as qemu-img prints it (`qemu-img snapshot -l`, `qemu-img info`). */
import type { SnapshotInfo } from '../engine/types.js';
import { pad, sizeToString } from './format-human.js';

export function snapshotTable(snapshots: readonly SnapshotInfo[]): string {
  if (snapshots.length === 0) return '';
  const lines = ['Snapshot list:', 'ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT'];
  for (const s of snapshots) lines.push(snapshotLine(s));
  return `${lines.join('\n')}\n`;
}

export function snapshotLine(s: Pick<SnapshotInfo, 'id' | 'name' | 'vmStateSize' | 'dateSec' | 'vmClockNsec' | 'icount'>): string {
  const date = new Date(s.dateSec * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  const dateText = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  const clockSec = Number(s.vmClockNsec / 1_000_000_000n);
  const ms = Number((s.vmClockNsec % 1_000_000_000n) / 1_000_000n);
  const clock = `${two(Math.floor(clockSec / 3600))}:${two(Math.floor(clockSec / 60) % 60)}:${two(clockSec % 60)}.${String(ms).padStart(3, '0')}`;
  const icount = s.icount === -1n ? '' : String(s.icount);
  return `${pad(s.id, 9)} ${pad(s.name, 17)} ${pad(sizeToString(s.vmStateSize), 7, true)} ${dateText} ${clock} ${pad(icount, 10, true)}`;
}
