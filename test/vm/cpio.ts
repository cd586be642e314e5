/**
 * A minimal writer for the kernel's initramfs format: a "newc" cpio archive (see the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst). The kernel unpacks archives that
 * follow one another in the initrd one after the other, so one can be appended to a cached base.
 */

export interface CpioEntry {
  /** Path inside the archive, without a leading slash ("vm/cmd"). Parents must come first. */
  name: string;
  /** Directory when absent. */
  data?: Buffer | string;
  /** Permission bits; 0o755 for directories, 0o644 for files unless given. */
  mode?: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function header(ino: number, mode: number, size: number, nameSize: number): string {
  // magic, then 13 eight-digit hex fields: ino mode uid gid nlink mtime filesize devmajor devminor
  // rdevmajor rdevminor namesize check.
  const fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameSize, 0];
  return '070701' + fields.map((v) => v.toString(16).padStart(8, '0')).join('');
}

/** One complete newc archive (ending with its TRAILER!!! entry) holding the given entries. */
export function newcArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const add = (ino: number, name: string, mode: number, data: Buffer) => {
    const nameBytes = Buffer.from(`${name}\0`);
    const head = Buffer.from(header(ino, mode, data.length, nameBytes.length));
    parts.push(head, nameBytes, pad4(head.length + nameBytes.length), data, pad4(data.length));
  };
  entries.forEach((e, i) => {
    if (e.data === undefined) add(i + 1, e.name, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0));
    else add(i + 1, e.name, S_IFREG | (e.mode ?? 0o644), Buffer.from(e.data));
  });
  add(0, 'TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}
