// The ublk rows (bench/ublk-lib.mjs): fio libaio, direct, QD128, one job, inside one VM boot;
// `qcow2 ublk add` against qemu-nbd + the kernel nbd client (same qcow2 image) and against loop
// --direct-io=on (raw file). Run on their own: node bench/ublk-rows.mjs [--quick] [--rounds N] [NAME...]
import { isMain, main } from './table.mjs';
import { UBLK_ROWS } from './ublk-lib.mjs';

export default UBLK_ROWS;

if (isMain(import.meta.url)) process.exitCode = await main(UBLK_ROWS, process.argv.slice(2));
