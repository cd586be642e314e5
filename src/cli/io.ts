/**
 * `qcow2 io [-f raw|qcow2] [-r] -c CMD [-c CMD …] IMAGE`: qemu-io's commands (read, write,
 * discard, flush; see io/parse.ts) run on our engines, with qemu-io's output. Every command is
 * parsed before the image is opened; then they all run in order, and the exit status is 1 when any
 * of them failed (qemu-io's rule), else 0.
 */
import { usage } from '../errors.js';
import { openImage, type ImageFormat } from '../device/open.js';
import { onePositional, parse } from './args.js';
import type { CliContext } from './context.js';
import { parseScript } from './io/parse.js';
import { runOps } from './io/run.js';

export async function io(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      cmd: { type: 'string', short: 'c', multiple: true },
      format: { type: 'string', short: 'f' },
      'read-only': { type: 'boolean', short: 'r' },
    },
    'io',
  );
  const filename = onePositional(positionals, 'image', 'io');
  const format = imageFormat(values.format);
  const commands = values.cmd ?? [];
  if (commands.length === 0) throw usage('io: give the commands with -c (interactive mode is not supported)');
  const ops = parseScript(commands);
  const device = await openImage(filename, { format, readOnly: values['read-only'] === true });
  try {
    const { failures } = await runOps(device, ops, ctx);
    return failures === 0 ? 0 : 1;
  } finally {
    await device.close();
  }
}

function imageFormat(value: string | undefined): ImageFormat | undefined {
  if (value === undefined || value === 'raw' || value === 'qcow2') return value;
  throw usage(`io: -f must be 'raw' or 'qcow2', not '${value}'`);
}
