/**
 * QEMU's guess that a qcow2 image was created with preallocation=metadata
 * (qcow2_detect_metadata_preallocation, block/qcow2-refcount.c, run once per open by
 * qcow2_co_block_status): far more clusters of the image file are in use (refcount > 0) than the
 * file system has allocated for it.
 *
 *   real_clusters = allocated bytes (st_blocks * 512) / cluster size           (rounded down)
 *   threshold     = max(real_clusters * 10 / 9 (rounded down), real_clusters + 2)
 *   yes, when at least `threshold` of the clusters covering the file (its length rounded up to 512,
 *   then to clusters) have a non-zero refcount.
 *
 * When it says yes, each data extent with a host offset is refined by the holes of the file it is in.
 * An error while reading refcounts counts as no (QEMU: `metadata_preallocation = (ret == 1)`).
 */
export interface PreallocInput {
  /** Length of the image file in bytes. */
  fileLength: number;
  /** st_blocks * 512 of the image file. */
  allocatedBytes: number;
  clusterSize: number;
  /** Refcount of host cluster `index` of the image file. */
  refcount(index: number): Promise<number>;
}

export async function detectMetadataPreallocation(input: PreallocInput): Promise<boolean> {
  const C = input.clusterSize;
  const realClusters = Math.floor(input.allocatedBytes / C);
  const threshold = Math.max(Math.floor((realClusters * 10) / 9), realClusters + 2);
  const endCluster = Math.ceil(Math.ceil(input.fileLength / 512) * 512 / C);
  let count = 0;
  try {
    for (let i = 0; i < endCluster && count < threshold; i++) {
      // Stop as soon as the threshold is out of reach: same answer, without reading every refcount
      // of a well-filled image (where real_clusters * 10/9 exceeds the whole file).
      if (count + (endCluster - i) < threshold) return false;
      if ((await input.refcount(i)) !== 0) count++;
    }
  } catch {
    return false;
  }
  return count >= threshold;
}
