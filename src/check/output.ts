/**
 * qemu-img check's two outputs. The JSON object's keys come out in the order QEMU's QDict hash
 * table yields them (bucket order, fixed for this key set), and a count is present only when it
 * is nonzero, except check-errors, filename and format, which are always there.
 */
import type { CheckCounts } from './result.js';

export interface CheckOutput extends CheckCounts {
  filename: string;
  format: string;
}

type Key = keyof CheckCounts;

/** [json key, field], in the order qemu-img 7.2 prints them. */
const JSON_ORDER: Array<[string, Key | 'filename' | 'format']> = [
  ['image-end-offset', 'imageEndOffset'],
  ['compressed-clusters', 'compressedClusters'],
  ['total-clusters', 'totalClusters'],
  ['corruptions', 'corruptions'],
  ['corruptions-fixed', 'corruptionsFixed'],
  ['check-errors', 'checkErrors'],
  ['leaks', 'leaks'],
  ['leaks-fixed', 'leaksFixed'],
  ['allocated-clusters', 'allocatedClusters'],
  ['filename', 'filename'],
  ['format', 'format'],
  ['fragmented-clusters', 'fragmentedClusters'],
];

const ALWAYS = new Set(['checkErrors', 'filename', 'format']);

export function checkJson(out: CheckOutput): string {
  const obj: Record<string, string | number> = {};
  for (const [key, field] of JSON_ORDER) {
    const value = out[field];
    if (ALWAYS.has(field) || value !== 0) obj[key] = value;
  }
  return `${JSON.stringify(obj, null, 4)}\n`;
}

export function checkHuman(c: CheckCounts): string {
  let text = '';
  if (c.corruptions === 0 && c.leaks === 0 && c.checkErrors === 0) {
    text += 'No errors were found on the image.\n';
  } else {
    if (c.corruptions) {
      text += `\n${c.corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n`;
    }
    if (c.leaks) {
      text += `\n${c.leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n`;
    }
    if (c.checkErrors) text += `\n${c.checkErrors} internal errors have occurred during the check.\n`;
  }
  if (c.totalClusters !== 0 && c.allocatedClusters !== 0) {
    const pct = (n: number, d: number) => printfFixed2((n * 100) / d);
    text +=
      `${c.allocatedClusters}/${c.totalClusters} = ${pct(c.allocatedClusters, c.totalClusters)}% allocated, ` +
      `${pct(c.fragmentedClusters, c.allocatedClusters)}% fragmented, ${pct(c.compressedClusters, c.allocatedClusters)}% compressed clusters\n`;
  }
  if (c.imageEndOffset) text += `Image end offset: ${c.imageEndOffset}\n`;
  return text;
}

/** What qemu-img prints before re-checking a repaired image. */
export function repairedHuman(c: Pick<CheckCounts, 'leaksFixed' | 'corruptionsFixed'>): string {
  return (
    'The following inconsistencies were found and repaired:\n\n' +
    `    ${c.leaksFixed} leaked clusters\n    ${c.corruptionsFixed} corruptions\n\n` +
    'Double checking the fixed image now...\n'
  );
}

/**
 * C's "%.2f" for a non-negative number: the exact binary value rounded half to even (3.125 prints
 * as 3.12; JavaScript's toFixed would round that tie up).
 */
export function printfFixed2(x: number): string {
  const exact = x.toFixed(100); // exact decimal expansion of the double
  const dot = exact.indexOf('.');
  const kept = exact.slice(0, dot + 3);
  const rest = exact.slice(dot + 3);
  const tie = /^50*$/.test(rest);
  const up = rest[0] !== undefined && (rest[0] > '5' || (rest[0] === '5' && !tie) || (tie && Number(kept.at(-1)) % 2 === 1));
  if (!up) return kept;
  const cents = BigInt(kept.replace('.', '')) + 1n;
  const digits = cents.toString().padStart(3, '0');
  return `${digits.slice(0, -2)}.${digits.slice(-2)}`;
}
