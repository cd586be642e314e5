/** Human-readable numbers the way qemu-img prints them. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** qemu's size_to_str: three significant digits with a binary unit ("1 GiB", "452 KiB", "1.5 MiB"). */
export function sizeToString(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? String(value) : Number(value.toPrecision(3)).toString();
  return `${text} ${UNITS[unit]}`;
}

export function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}
