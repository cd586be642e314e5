/**
 * The one description of the `qcow2` subcommands: each one's synopsis and what it does. From it come
 * `qcow2 help` (and `--help`, and the list printed for an unknown command), `qcow2 COMMAND --help`,
 * the synopsis that usage errors about a command line's shape end with (src/cli/args.ts), and the
 * command table of README.md (`node scripts/gen-readme.mjs` writes it, `--check` compares it; a unit
 * test fails when they differ).
 *
 * Plain data and string functions, with no imports, so the README script can load it alone.
 * Summaries are Markdown-ish: `code` spans are shown without the backquotes on a terminal.
 */

export interface CommandDoc {
  name: string;
  /** The options and operands after `qcow2 NAME`. */
  synopsis: string;
  /** What the command does, in one line (README table, `qcow2 help`). */
  summary: string;
  /** More lines for `qcow2 NAME --help`. */
  details?: string;
}

/** In the README's order. */
export const COMMAND_DOCS: readonly CommandDoc[] = [
  {
    name: 'info',
    synopsis: '[-f FMT] [--output=human|json] [--backing-chain] [--object OBJ] [--image-opts] IMAGE',
    summary: 'what `qemu-img info` reports (qcow2 and raw images), with the same JSON keys and values; `--backing-chain` for every image of the chain, as qemu-img lists them',
  },
  {
    name: 'create',
    synopsis: '[-q] [-f qcow2] [--object OBJ] [-o OPTIONS] [-b FILE -F FMT] [-u] IMAGE [SIZE]',
    summary: 'a new image, byte for byte what `qemu-img create -f qcow2` writes',
    details: [
      'SIZE takes the suffixes k, M, G, T, P, E (powers of 1024); without SIZE the size of the backing',
      "FILE is used. '-o help' lists the options.",
      "  -q  quiet (no 'Formatting ...' line)",
      '  -u  do not open the backing file (SIZE is then required)',
      "  --object secret,id=ID,data=TEXT|file=PATH[,format=raw|base64]  the passphrase for -o encrypt.format=luks,encrypt.key-secret=ID",
    ].join('\n'),
  },
  {
    name: 'io',
    synopsis: '[-f FMT] [-r] [--object OBJ] [--image-opts] -c CMD ... IMAGE',
    summary: "qemu-io's `read`, `write` (`-P`, `-z`, `-u`, `-c`), `discard`, `flush`",
  },
  {
    name: 'convert',
    synopsis:
      '[-f FMT] [--object OBJ] [--image-opts] [-l SNAPSHOT] [-O raw|qcow2] [-o OPTIONS] [-B BACKING_FILE -F BACKING_FMT] [-n [--target-is-zero] [--target-image-opts]] [-S SPARSE_SIZE] [--bitmaps [--skip-broken-bitmaps]] [-c] [-C] [-m N] [-W] [-r RATE] [--salvage] [-p] [-q] [-t CACHE] [-T SRC_CACHE] IN OUT',
    summary:
      "copies guest contents as `qemu-img convert`; `-B` names a backing file and copies only what IN's top layer holds; `-n` writes into an existing OUT (`--target-is-zero`: it reads as zeros); `-S` the shortest run of zeros left out (default 4k; `0` allocates everything); `--bitmaps` copies persistent bitmaps (`--skip-broken-bitmaps` skips inconsistent ones); `-c` compresses (on worker threads); `-p` progress on a terminal; `-t` output cache mode, `unsafe` (no flush) by default as qemu-img convert; `-l` copies an internal snapshot; `-C` copies data without looking for zeros in it; `-m` chunks in flight (1 to 16); `-W` writes out of order; `-r` limits writes to RATE bytes a second; `--salvage` copies unreadable sectors as zeros, with a warning each",
  },
  {
    name: 'check',
    synopsis: '[-r leaks|all] [--output=human|json] [-f FMT] [--object OBJ] [--image-opts] [-q] [-T SRC_CACHE] IMAGE',
    summary:
      'what `qemu-img check` reports (same JSON, human text and exit status: 0 clean, 2 corrupt, 3 leaks, 1 failed, 63 no checks for the format); `-r leaks` frees leaked clusters, `-r all` also fixes refcounts, COPIED flags and rebuilds a broken refcount structure',
  },
  {
    name: 'map',
    synopsis: '[-f FMT] [--output=human|json] [--start-offset=OFFSET] [--max-length=LENGTH] [--object OBJ] [--image-opts] IMAGE',
    summary: 'byte for byte what `qemu-img map` prints',
  },
  {
    name: 'measure',
    synopsis: '[--output=human|json] [-f FMT] [-l SNAPSHOT] [-O qcow2|raw] [-o OPTIONS] [--object OBJ] [--image-opts] (--size N | IMAGE)',
    summary:
      'the file size a new image needs, as `qemu-img measure` prints it: required and fully allocated sizes (and bitmaps size for a qcow2 v3 source), from the target options and the source\'s allocated clusters through its backing chain (`-l`: as they were at an internal snapshot)',
    details: [
      '-O is raw by default, as in qemu-img. -o takes the options of `qcow2 create` (a raw target: size,',
      'preallocation, nocow, extent_size_hint); encrypt.format=luks,encrypt.key-secret=ID needs --object.',
    ].join('\n'),
  },
  {
    name: 'resize',
    synopsis: '[-f FMT] [--shrink] [--preallocation=off|metadata|falloc|full] [--object OBJ] [--image-opts] [-q] IMAGE [+|-]SIZE',
    summary:
      'sets the virtual size as `qemu-img resize` does (same checks, messages and `Image resized.`): raw images grow and shrink (preallocation off, falloc, full); qcow2 images grow (preallocation off, metadata, falloc, full; over a backing file, with extended L2, with an external data file, data_file_raw included) and shrink',
    details: [
      'On an encrypted image, as in QEMU, the preallocated area reads as the decryption of what the file holds there.',
      'Persistent bitmaps follow the new size, as QEMU\'s. A shrunk qcow2 file keeps its length (QEMU cuts it).',
    ].join('\n'),
  },
  {
    name: 'amend',
    synopsis: '[-f FMT] [-o OPTIONS] [-p] [-q] [-t CACHE] [--force] [--object OBJ] [--image-opts] IMAGE',
    summary:
      'changes a qcow2 image\'s options as `qemu-img amend` does (same checks, messages and exit status): `compat` 1.1 (upgrade) and 0.10 (downgrade, zero clusters expanded), `refcount_bits` (the refcounts rewritten at the new width), `lazy_refcounts`, `data_file`, `data_file_raw`, `size`, and a LUKS image\'s key slots (`encrypt.state`, `encrypt.new-secret`, `encrypt.old-secret`, `encrypt.keyslot`, `encrypt.iter-time`); `-o help` lists the options',
    details: [
      'As qemu-img 7.2: backing_file and backing_fmt may only repeat what the image names (use rebase);',
      'options only `create` takes are refused. Key slots (with --object and --image-opts ...,encrypt.key-secret=ID):',
      'encrypt.state=active,encrypt.new-secret=ID[,encrypt.keyslot=N][,encrypt.iter-time=MS] adds one (the first',
      'free slot by default); encrypt.state=inactive with encrypt.keyslot=N or encrypt.old-secret=ID erases it (every',
      'slot that passphrase opens); the last active slot only with --force, as qemu-img. Not implemented, refused',
      'with an error: a downgrade of an image with persistent bitmaps, data_file=\'\'. Shared zero clusters are',
      'not overwritten by a downgrade (QEMU 7.2 overwrites them).',
      '  -p  progress on a terminal; -q quiet',
      '  -t  cache mode: writeback (default), writethrough, unsafe',
    ].join('\n'),
  },
  {
    name: 'bitmap',
    synopsis: '(--add | --remove | --clear | --enable | --disable | --merge SOURCE)... [-g SIZE] [-b SOURCE_FILE [-F SOURCE_FMT]] [-f FMT] [--object OBJ] [--image-opts] IMAGE BITMAP',
    summary:
      'changes a persistent bitmap as `qemu-img bitmap` does: the operations in the order given, QEMU\'s checks and messages; `--merge` from the same image or from SOURCE_FILE',
  },
  {
    name: 'rebase',
    synopsis: '[-f FMT] [-F BACKING_FMT] [-u] [-p] [-q] [-t CACHE] [-T SRC_CACHE] [--object OBJ] [--image-opts] -b BACKING_FILE IMAGE',
    summary:
      'puts IMAGE over another backing file as `qemu-img rebase` does (same checks, messages, progress line and exit status): safe mode first copies into IMAGE every range it does not allocate where the old backing chain and the new backing file differ, so its guest content stays the same; `-u` only changes the names; `-b ""` removes the backing file',
    details: [
      'BACKING_FILE is resolved against the folder of IMAGE. As qemu-img 7.2, a backing file name needs',
      '-F (the header is not changed without it, after the copy of safe mode); a backing file that is a',
      'layer of the old chain is reused, and only what the layers above it allocate is compared.',
      '  -u  unsafe: the old and the new backing files are not opened; without -b the backing file is removed',
      '  -p  progress on stdout (terminal or not, as qemu-img); -q quiet',
      '  -t  cache mode of IMAGE: writeback (default), writethrough, unsafe; -T is checked, backing files are only read',
    ].join('\n'),
  },
  {
    name: 'compare',
    synopsis: '[-f FMT] [-F FMT] [-s] [-q] [-T SRC_CACHE] [--object OBJ] [--image-opts] A B',
    summary: 'exit 0 identical, 1 different, 2 cannot open, as `qemu-img compare`',
  },
  {
    name: 'dd',
    synopsis: '[-f FMT] [-O raw|qcow2] [--object OBJ] [--image-opts] [bs=BLOCK_SIZE] [count=BLOCKS] [skip=BLOCKS] if=INPUT of=OUTPUT',
    summary:
      'copies the input (through its backing chain) into a new raw or qcow2 output, as `qemu-img dd`: bs (default 512, suffixes k, M, G…), count blocks at most, skip blocks off the start; the same messages for bad operands',
    details: [
      'As qemu-img: count limits the input before skip is taken off it (count=2 skip=1 copies one block);',
      'skipping past the end of the input creates an empty output, warns, and succeeds.',
    ].join('\n'),
  },
  {
    name: 'commit',
    synopsis: '[-q] [-f FMT] [-t CACHE] [-b BASE] [-r RATE_LIMIT] [-d] [-p] [--object OBJ] [--image-opts] FILENAME',
    summary:
      'writes what the images above BASE (default: the backing file) hold into BASE and, without `-d`, empties the top image, as `qemu-img commit` (`Image committed.`); `-b` implies `-d`',
    details: [
      'BASE is found in the chain as qemu-img finds it: by the backing name stored in the image above it, or',
      'by the file it names. -t writeback (default), writethrough or unsafe. -r is checked and not applied.',
    ].join('\n'),
  },
  {
    name: 'snapshot',
    synopsis: '[-l | -c NAME | -a NAME | -d NAME] [--object OBJ] [--image-opts] [-q] IMAGE',
    summary: 'internal snapshots, as `qemu-img snapshot`',
  },
  {
    name: 'bench',
    synopsis:
      '[-c COUNT] [-d DEPTH] [-f FMT] [-s SIZE] [-S STEP] [-o OFFSET] [-w] [--pattern=BYTE] [--flush-interval=N] [--no-drain] [-t CACHE] [-i threads] [-q] [--object OBJ] [--image-opts] IMAGE',
    summary: "`qemu-img bench`'s request loop and output on our engine",
    details: [
      'COUNT requests of SIZE bytes (default 75000 of 4096), DEPTH in flight (default 64), at OFFSET,',
      'OFFSET+STEP, ... wrapping at the image size; reads unless -w (writes of the --pattern byte,',
      'default 0). -t writeback|writethrough|unsafe, -i threads.',
    ].join('\n'),
  },
  {
    name: 'nbd',
    synopsis:
      '[-f FMT] [-x NAME] [-D TEXT] [-k SOCKET | -b ADDR -p PORT] [-r] [-s] [-l SNAPSHOT] [-B BITMAP] [-e N] [-t] [-A] [--cache=MODE] [--discard=ignore|unmap] [--detect-zeroes=off|on|unmap] [--untrusted] [--tls-creds DIR [--tls-verify-peer] | --tls-psk FILE] [--fork] [--pid-file=FILE] [-v] [--object OBJ] [--image-opts] IMAGE | -L [-k SOCKET | -b ADDR -p PORT]',
    summary:
      'serves IMAGE over NBD with `qemu-nbd`\'s options: structured replies, block status (`base:allocation`, `-A` `qemu:allocation-depth`, `-B` `qemu:dirty-bitmap:NAME`), many clients on one engine; listens on 0.0.0.0:10809 (all interfaces, as qemu-nbd) unless told; `-L` lists a server\'s exports as `qemu-nbd -L` does',
    details: [
      '  -f FMT            raw or qcow2; without it the format is probed, and a writable export of a',
      '                    probed raw image is refused (give -f raw, or -r)',
      "  -x NAME           export name (default '')",
      '  -D TEXT           description shown to clients',
      '  -k SOCKET         listen on a unix socket instead of TCP',
      '  -b ADDR, -p PORT  TCP address and port (default 0.0.0.0 and 10809: every IPv4 interface)',
      '  -r                read-only export',
      '  -s                writes go to a temporary qcow2 overlay in $TMPDIR (removed at exit); the',
      '                    image is never written',
      '  -l SNAPSHOT       export internal snapshot SNAPSHOT (ID or name, or snapshot.id=ID /',
      '                    snapshot.name=NAME), read-only; the size stays the image\'s, as qemu-nbd',
      '  -B BITMAP         offer persistent bitmap BITMAP as qemu:dirty-bitmap:BITMAP; needs -r (our',
      '                    writes do not keep bitmaps); in-use or stale bitmaps are refused',
      '  -e N              serve at most N clients at once (default 1; 0: no limit); one more is',
      '                    refused with a message',
      '  -t                keep serving after the last client leaves (else exit then, as qemu-nbd)',
      '  -A                offer the qemu:allocation-depth metadata context',
      '  --cache=MODE      writeback (default), writethrough (every write durable), unsafe (no flushes)',
      '  --discard=MODE    ignore (default: trims do nothing) or unmap (trims and zero writes free space)',
      '  --detect-zeroes=MODE  off (default); on: writes of zeros become zero writes; unmap: and may',
      '                    free the space (needs --discard=unmap)',
      '  --untrusted       never open backing or data files the image names',
      '  --tls-creds DIR   require TLS (x509): DIR/ca-cert.pem, server-cert.pem, server-key.pem and',
      '                    optionally ca-crl.pem, as QEMU\'s tls-creds-x509 (DIR itself, not an object id)',
      '  --tls-verify-peer clients must present a certificate the CA signed (QEMU: verify-peer=on)',
      '  --tls-psk FILE    require TLS with pre-shared keys (TLS 1.2): FILE holds username:hexkey lines,',
      '                    as QEMU\'s tls-creds-psk keys.psk',
      '  --fork            run in the background once the socket listens (the command exits 0)',
      '  --pid-file=FILE   write the server\'s process id to FILE (removed at exit)',
      '  -v                connection events on stderr (otherwise only engine errors)',
      '  -L                list the exports of the server at -k or -b/-p (default localhost:10809),',
      '                    printed as qemu-nbd -L prints them; TLS with --tls-creds DIR (ca-cert.pem,',
      '                    client-cert.pem and client-key.pem if present) or --tls-psk FILE (user qemu)',
      'SIGTERM or SIGINT: stop accepting, finish the requests in flight, flush, close the image, exit 0.',
      'With TLS credentials, every option before NBD_OPT_STARTTLS is NBD_REP_ERR_TLS_REQD (EXPORT_NAME closes).',
      'Not implemented: --tls-authz, --tls-hostname, -c (qemu-nbd\'s kernel client: use nbd-client).',
    ].join('\n'),
  },
  {
    name: 'ublk',
    synopsis:
      'add [-f FMT] [-r] [--queues N] [--depth N] [--id N] [--discard=unmap|ignore] [--cache=MODE] [--recoverable] [--untrusted] [--foreground] [-v] [--object OBJ] [--image-opts] IMAGE | list [--output=human|json] | del ID|--all | recover [--foreground] ID',
    summary:
      'serves IMAGE as a Linux block device, `/dev/ublkbN`, through the kernel\'s ublk driver (Linux 6.x, `ublk_drv`): `add` prints the device once it is live and leaves the server in the background; `del` stops it and closes the image clean',
    details: [
      '  add IMAGE         prints /dev/ublkbN as the last line of stdout once the device is live; the',
      '                    server runs detached, its log in /run/qcow2-ublk/ID.log ($QCOW2_UBLK_RUN_DIR)',
      '  -f FMT            raw or qcow2; a writable device of a probed raw image is refused (give -f raw)',
      '  -r                read-only device',
      '  --queues N        queues (one native thread each); --depth N tags per queue (default 128)',
      '  --id N            the device number (default: the kernel picks)',
      '  --discard=MODE    unmap (default: discards free clusters) or ignore (no discard announced)',
      '  --cache=MODE      writeback (default: flushes and FUA reach the image), writethrough, unsafe',
      '  --recoverable     the device survives its server (kill -9): `recover ID` serves it again',
      '  --foreground      stay attached (the device lives as long as the command)',
      '  list              every ublk device, with its image and server (--output=json)',
      '  del ID|--all      stop, finish the requests in flight, flush, close the image clean, delete',
      'SIGTERM or SIGINT to a server does what del does. An engine error fails its request (EIO for a',
      'corrupt image, ENOSPC when the disk is full) and is logged once; the device stays up.',
    ].join('\n'),
  },
  {
    name: 'verify',
    synopsis: '[--runs N] [--round-trips N] [--crash-states N] [--seed S] [--dir DIR] [--filter REGEX]',
    summary:
      'the main job: our reading of a QEMU-built corpus, `check` against `qemu-img check`, the model-based campaign on both engines, round trips judged by QEMU, and a sample of crash states',
  },
  {
    name: 'fuzz',
    synopsis: '[--seed S] [--runs N | --time DURATION] [--target NAME] [--seeds REGEX] [--corpus DIR] [--qemu N] [--out DIR]',
    summary:
      'a structure-aware fuzzer: mutates every field of `spec/` in corpus images (boundary values, bit flips, truncation, splicing), runs open, read, map, check, repair, write and snapshot in process, judges typed errors, time, memory, read-only and handles, and `--qemu N` cases against qemu-img; findings are shrunk and saved as regressions',
    details: [
      '  --seed S          the run\'s seed (the same seed and options give the same cases)',
      '  --runs N          mutated images to run (default 500); or --time DURATION (30s, 5m, 1h)',
      '  --target NAME     open, read, map, check, repair, write, snapshot (repeat or comma-separate; default all)',
      '  --seeds REGEX     only the corpus recipes whose name matches REGEX (default all)',
      '  --corpus DIR      qcow2 files in DIR are seeds too (besides the QEMU-built corpus)',
      '  --qemu N          N cases also run through qemu-img info/convert/check (differential)',
      '  --out DIR         where new findings are saved (default test/fuzz/cases when it exists here)',
      'Prints one row per target (cases, refused, findings, cases per second on one core) and the findings,',
      'each shrunk to its smallest list of mutations. Exit status 1 when a finding is not a saved regression.',
    ].join('\n'),
  },
];

export function commandDoc(name: string): CommandDoc | undefined {
  return COMMAND_DOCS.find((c) => c.name === name);
}

/** `qcow2 NAME SYNOPSIS`. */
export function usageLine(name: string): string {
  const doc = commandDoc(name);
  return doc === undefined ? `qcow2 ${name}` : `qcow2 ${doc.name} ${doc.synopsis}`;
}

/** A summary for a terminal: `code` spans without their backquotes. */
function plain(text: string): string {
  return text.replaceAll('\u0060', '');
}

/** What `qcow2 help` (and `qcow2` alone, and an unknown command) prints. */
export function mainHelp(): string {
  const lines = ['usage: qcow2 COMMAND [OPTIONS] ...', '', 'Commands:'];
  for (const c of COMMAND_DOCS) {
    lines.push(`  ${c.name} ${c.synopsis}`, `      ${plain(c.summary)}`);
  }
  lines.push('', "'qcow2 help COMMAND' or 'qcow2 COMMAND --help' says more about one command.");
  return `${lines.join('\n')}\n`;
}

/** What `qcow2 NAME --help` and `qcow2 help NAME` print. */
export function commandHelp(name: string): string {
  const doc = commandDoc(name);
  if (doc === undefined) return mainHelp();
  const text = [`usage: ${usageLine(name)}`, '', `${plain(doc.summary)}.`];
  if (doc.details !== undefined) text.push('', doc.details);
  return `${text.join('\n')}\n`;
}

/** README.md's command table (Markdown; `|` inside a cell is escaped). */
export function readmeTable(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = COMMAND_DOCS.map((c) => `| \`${cell(usageLine(c.name))}\` | ${cell(c.summary)} |`);
  return ['| command | what it does |', '| --- | --- |', ...rows].join('\n');
}

/** The comments around the generated table in README.md. */
export const README_TABLE_BEGIN = '<!-- commands: generated by scripts/gen-readme.mjs from src/cli/commands.ts; do not edit -->';
export const README_TABLE_END = '<!-- commands: end -->';

/** README.md's text with the command table between the markers made {@link readmeTable}'s. */
export function spliceReadmeTable(readme: string): string {
  const begin = readme.indexOf(README_TABLE_BEGIN);
  const end = readme.indexOf(README_TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`README.md has no '${README_TABLE_BEGIN}' ... '${README_TABLE_END}' markers`);
  return `${readme.slice(0, begin + README_TABLE_BEGIN.length)}\n${readmeTable()}\n${readme.slice(end)}`;
}
