/** The lines `qemu-img bench` prints (qemu-img.c 7.2, img_bench), with the same formats. */
import type { BenchPlan } from './runner.js';

/** `Sending %d %s requests, %d bytes each, %d in parallel (starting at offset %PRId64, step size %d)` */
export function sendingLine(plan: Pick<BenchPlan, 'count' | 'write' | 'bufferSize' | 'depth' | 'offset' | 'step'>): string {
  const kind = plan.write ? 'write' : 'read';
  return `Sending ${plan.count} ${kind} requests, ${plan.bufferSize} bytes each, ${plan.depth} in parallel (starting at offset ${plan.offset}, step size ${plan.step})\n`;
}

/** `Sending flush every %d requests`, printed only with a flush interval. */
export function flushLine(flushInterval: number): string {
  return `Sending flush every ${flushInterval} requests\n`;
}

/** `Run completed in %3.3f seconds.` */
export function completedLine(seconds: number): string {
  return `Run completed in ${seconds.toFixed(3)} seconds.\n`;
}

/** Requests per second, the figure benchmarks compare (not printed by qemu-img bench). */
export function requestsPerSecond(requests: number, seconds: number): number {
  return seconds > 0 ? requests / seconds : Number.POSITIVE_INFINITY;
}
