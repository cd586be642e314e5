/**
 * The library: what `import … from 'qcow2-verified'` gives. Everything here is re-exported from the
 * module that implements it; the verification wing is a separate entry ('qcow2-verified/verification',
 * src/verification/index.ts) that this one never imports.
 */

// Opening images: the composition root (qcow2 on the optimized engine, raw through the raw adapter).
export { openImage, openQcow2, probeFormat, type ImageFormat, type OpenImageOptions } from './device/open.js';

// The serving contract every device keeps.
export type {
  BlockDevice,
  DeviceCapabilities,
  Extent,
  ExtentKind,
  Qcow2Device,
  SnapshotInfo,
  StatusExtent,
  WriteOptions,
  WriteZeroesOptions,
} from './engine/types.js';

// The error family, and the errno a block layer answers for each error.
export { Qcow2Error, errnoOf, errnoText, isQcow2Error, type Errno, type Qcow2ErrorCode, type Qcow2ErrorDetails } from './errors.js';

// Creating images (laid out as `qemu-img create -f qcow2` lays them out).
export { createImage, type CreateResult } from './create/create.js';
export type { CompressionType, CreateOptions, Preallocation, ResolvedCreateOptions } from './create/options.js';

// Copying guest contents (`qemu-img convert`), and streaming them.
export {
  convertImage,
  copyContents,
  createOutput,
  type ConvertOptions,
  type CopyOptions,
  type OutputCache,
  type OutputCreateOptions,
} from './convert/copy.js';
export { guestStream, type GuestStreamOptions } from './convert/stream.js';

// Files: what `info` and `check` read (and what OpenImageOptions.wrapFile wraps).
export { NodeFile, type FileDriving, type IoMode } from './io/node-file.js';
export type { BlockFile, FileCapabilities, WriteTag } from './io/block-file.js';

// `qemu-img info`: an image's metadata, and the report computed from it (QEMU's JSON keys).
export { readMetadata, type ImageMetadata } from './image/metadata.js';
export { imageInfo, type Json } from './image/info.js';

// `qemu-img check`: one pass, or a pass plus the repair and re-check the command does.
export { checkAndRepair, checkImage, type CheckCounts, type CheckOptions, type CheckReport, type RepairMode } from './check/index.js';
