/**
 * `qcow2 snapshot [-l | -c NAME | -a NAME | -d NAME] [-q] IMAGE`, as `qemu-img snapshot`: list,
 * create, apply (revert to) or delete internal snapshots.
 */
import { openQcow2 } from '../device/open.js';
import { isQcow2Error, usage } from '../errors.js';
import { commandLineError, parse } from './args.js';
import type { CliContext } from './context.js';
import { forgetSecrets, IMAGE_OPTS_OPTIONS, imageArg, keyOptions, Secrets } from './image-opts.js';
import { snapshotTable } from './snapshot-table.js';

export async function snapshot(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      list: { type: 'boolean', short: 'l' },
      create: { type: 'string', short: 'c' },
      apply: { type: 'string', short: 'a' },
      delete: { type: 'string', short: 'd' },
      quiet: { type: 'boolean', short: 'q' },
      format: { type: 'string', short: 'f' },
      'force-share': { type: 'boolean', short: 'U' },
      ...IMAGE_OPTS_OPTIONS,
    },
    'snapshot',
  );
  if (positionals.length !== 1) throw commandLineError('snapshot', `expected one image, got ${positionals.length}`);
  const actions = [values.list, values.create, values.apply, values.delete].filter((a) => a !== undefined && a !== false);
  if (actions.length > 1) throw usage('snapshot: only one of -l, -c, -a, -d can be given');
  if (values.format !== undefined && values.format !== 'qcow2') throw usage(`snapshot: format '${values.format}' has no snapshots`);
  const list = actions.length === 0 || values.list === true;
  const secrets = new Secrets(values.object);
  const operand = imageArg(positionals[0]!, values['image-opts'] === true, secrets);
  secrets.dispose();
  let image: Awaited<ReturnType<typeof openQcow2>>;
  try {
    image = await openQcow2(operand.path, { readOnly: list, ...keyOptions(operand) });
  } finally {
    forgetSecrets(operand);
  }
  try {
    if (list) {
      ctx.stdout(snapshotTable(await image.listSnapshots()));
      return 0;
    }
    const [verb, name, action] =
      values.create !== undefined
        ? (['create', values.create, () => image.createSnapshot(values.create!)] as const)
        : values.apply !== undefined
          ? (['apply', values.apply, () => image.applySnapshot(values.apply!)] as const)
          : (['delete', values.delete!, () => image.deleteSnapshot(values.delete!)] as const);
    try {
      await action();
    } catch (err) {
      if (!isQcow2Error(err)) throw err;
      ctx.stderr(`qcow2 snapshot: Could not ${verb} snapshot '${name}': ${err.message}\n`);
      return 1;
    }
    return 0;
  } finally {
    await image.close();
  }
}
