/** What one L2 entry says about its guest cluster, decoded once; both engines use this union. */
export type Mapping =
  | { kind: 'unallocated' }
  /** Data at hostOffset (in the data file when the image has one). */
  | { kind: 'normal'; hostOffset: number; copied: boolean }
  /** Reads as zeros; hostOffset 0 = no preallocated cluster. */
  | { kind: 'zero'; hostOffset: number; copied: boolean }
  /** Compressed data: `length` bytes from hostOffset to the end of the last sector. */
  | { kind: 'compressed'; hostOffset: number; length: number }
  /** Extended L2: per-subcluster allocated / zero masks; hostOffset 0 = no cluster yet. */
  | { kind: 'subclusters'; hostOffset: number; copied: boolean; alloc: number; zero: number }
  /** `at`: the file offset of the offending entry, where the decoder knows it. */
  | { kind: 'invalid'; reason: string; at?: number };

/** The entries an engine writes. */
export type NewL2Entry = Exclude<Mapping, { kind: 'invalid' }>;
