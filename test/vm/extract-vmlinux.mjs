// node extract-vmlinux.mjs BZIMAGE OUT
// Writes the uncompressed ELF kernel found inside a bzImage (Debian's vmlinuz). QEMU boots such an
// ELF through its PVH entry point, skipping the decompressor: about a second faster under TCG.
// The payload is found the way the kernel's scripts/extract-vmlinux finds it: try each offset
// where a compressor's magic occurs, keep the first that decompresses to an ELF image.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node extract-vmlinux.mjs BZIMAGE OUT');
  process.exit(2);
}
const image = readFileSync(input);
const formats = [
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], cmd: ['zstd', '-qdc'] },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], cmd: ['xz', '-dc', '--single-stream'] },
  { name: 'gzip', magic: [0x1f, 0x8b, 0x08], cmd: ['gzip', '-dc'] },
];
const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

for (const f of formats) {
  const magic = Buffer.from(f.magic);
  for (let at = image.indexOf(magic); at >= 0; at = image.indexOf(magic, at + 1)) {
    // Trailing bytes after the payload make the tools complain; what they wrote is what counts.
    const r = spawnSync(f.cmd[0], f.cmd.slice(1), { input: image.subarray(at), maxBuffer: 1 << 30 });
    if (r.error) throw r.error;
    if (r.stdout.length > 1 << 20 && r.stdout.subarray(0, 4).equals(ELF)) {
      writeFileSync(output, r.stdout);
      console.error(`vmlinux: ${f.name} payload at ${at}, ${(r.stdout.length / 2 ** 20).toFixed(1)} MiB`);
      process.exit(0);
    }
  }
}
console.error(`no compressed ELF kernel found in ${input}`);
process.exit(1);
