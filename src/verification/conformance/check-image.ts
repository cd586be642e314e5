/**
 * Spec conformance of one image: our metadata reader accepts it; every structure decodes the same
 * through both decoders and obeys the spec's rules; `qcow2 info` says what `qemu-img info` says.
 */
import { isQcow2Error } from '../../errors.js';
import type { CorpusImage } from '../corpus/build.js';
import { imageInfo } from '../../image/info.js';
import { readMetadata } from '../../image/metadata.js';
import { NodeFile } from '../../io/node-file.js';
import { compareDecoders } from './agree.js';
import { checkInvariants } from './invariants.js';
import { differences, type Plain } from './plain.js';
import { qemuImgJson } from './qemu.js';
import { collectStructures } from './structures.js';

export interface ImageReport {
  name: string;
  structures: number;
  /** Table entries and refcounts compared between the two decoders. */
  entries: number;
  problems: string[];
}

export async function checkImage(image: CorpusImage): Promise<ImageReport> {
  const report: ImageReport = { name: image.name, structures: 0, entries: 0, problems: [] };
  const file = await NodeFile.open(image.image, { readOnly: true });
  try {
    const meta = await readMetadata(file);
    const structures = await collectStructures(file, meta);
    report.structures = structures.length;
    for (const s of structures) {
      report.entries += 'entries' in s ? s.entries : 1;
      for (const d of compareDecoders(s)) {
        report.problems.push(`decoders differ in ${d.structure} at 0x${d.offset.toString(16)}: ${d.path}: ours ${d.ours}, kaitai ${d.kaitai}`);
      }
      for (const v of checkInvariants(s, meta)) {
        report.problems.push(`${v.structure} entry at 0x${v.offset.toString(16)}: ${v.message}`);
      }
    }
    const ours = imageInfo(meta, image.image, await file.allocatedBytes());
    const theirs = await qemuImgJson(['info', '--output=json', ...image.infoArgs, image.image], image.dir);
    for (const d of differences(ours as Plain, theirs as Plain)) {
      report.problems.push(`info differs at ${d.path}: ours ${d.ours}, qemu-img ${d.kaitai}`);
    }
  } catch (err) {
    report.problems.push(isQcow2Error(err) ? err.describe() : `error: ${(err as Error).message}`);
  } finally {
    await file.close();
  }
  return report;
}
