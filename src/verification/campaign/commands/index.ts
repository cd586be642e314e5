/** All commands, as fast-check arbitraries. */
import fc from 'fast-check';
import type { Model } from '../model.js';
import type { System } from '../system.js';
import { BatchCommand } from './batch.js';
import { BitmapEditCommand } from './bitmap.js';
import { CompressedWriteCommand, DiscardCommand, ReadCommand, WriteCommand, ZeroCommand } from './data.js';
import { FlushCommand, ReopenCommand, ResizeCommand, SnapshotApplyCommand, SnapshotCreateCommand } from './image.js';

const frac = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

export const commandArbs: fc.Arbitrary<fc.AsyncCommand<Model, System>>[] = [
  fc.tuple(frac, frac, fc.nat(), fc.boolean()).map(([a, l, s, c]) => new WriteCommand(a, l, s, c)),
  fc.tuple(frac, frac, fc.nat(), fc.boolean()).map(([a, l, s, c]) => new WriteCommand(a, l, s, c)),
  fc.tuple(frac, frac, fc.boolean()).map(([a, l, u]) => new ZeroCommand(a, l, u)),
  fc.tuple(frac, frac).map(([a, l]) => new DiscardCommand(a, l)),
  fc.tuple(frac, fc.nat(), fc.boolean()).map(([a, s, c]) => new CompressedWriteCommand(a, s, c)),
  fc.tuple(frac, frac).map(([a, l]) => new ReadCommand(a, l)),
  fc.constant(new FlushCommand()),
  fc.constant(new ReopenCommand()),
  fc.constant(new SnapshotCreateCommand()),
  fc.nat().map((p) => new SnapshotApplyCommand(p)),
  fc.nat().map((g) => new ResizeCommand(g)),
  fc.tuple(fc.constantFrom('add' as const, 'remove' as const, 'clear' as const, 'enable' as const, 'disable' as const), fc.nat()).map(([op, p]) => new BitmapEditCommand(op, p)),
  fc
    .tuple(frac, fc.integer({ min: 2, max: 8 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.nat(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }))
    .map(([a, n, step, cut, seed, zeroEvery, reads]) => new BatchCommand(a, n, step, cut, seed, zeroEvery, reads)),
];
