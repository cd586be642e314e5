# Protocol edges through libnbd, run by test/nbd/clients.test.ts as
#   nbdsh -c "exec(open(SCRIPT).read())"    (with NBD_URI and RESULT in the environment)
# against an export of the known image (test/nbd/fixtures.ts): 0xaa over [0, 1 MiB), 0xbb over
# [8 MiB, 8 MiB + 64 KiB), zeros elsewhere. It writes what it saw as JSON to RESULT; the test
# asserts. Writes it makes (mirrored by the test's model): a fast zero of [64 KiB, 128 KiB), a FUA
# write of 0x5a over [16 MiB, 16 MiB + 4 KiB).
import errno
import json
import os

import nbd

KiB = 1024
MiB = 1024 * KiB
out = {}

h = nbd.NBD()
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri(os.environ["NBD_URI"])
out["structured"] = h.get_structured_replies_negotiated()
out["base_allocation"] = h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
out["can_df"] = h.can_df()
out["can_fast_zero"] = h.can_fast_zero()
out["size"] = h.get_size()


def read_chunks(count, offset, flags=0):
    chunks = []

    def chunk(subbuf, off, status, err):
        chunks.append({"status": status, "offset": off, "length": len(subbuf),
                       "zero": not any(subbuf) if status == nbd.READ_DATA else True})
        return 0

    buf = h.pread_structured(count, offset, chunk, flags)
    chunks.sort(key=lambda c: c["offset"])
    return bytes(buf), chunks


# A read of a hole: one range that no write ever touched.
buf, chunks = read_chunks(64 * KiB, 4 * MiB)
out["hole_read"] = {"zero": buf == bytes(64 * KiB), "chunks": chunks}

# A read across data and a hole: [1 MiB - 64 KiB, 1 MiB + 64 KiB).
buf, chunks = read_chunks(128 * KiB, MiB - 64 * KiB)
out["mixed_read"] = {"ok": buf == b"\xaa" * (64 * KiB) + bytes(64 * KiB), "chunks": chunks}

# The same with NBD_CMD_FLAG_DF: at most one content chunk, the zeros sent as data.
if h.can_df():
    buf, chunks = read_chunks(128 * KiB, MiB - 64 * KiB, nbd.CMD_FLAG_DF)
    out["df_read"] = {"ok": buf == b"\xaa" * (64 * KiB) + bytes(64 * KiB), "chunks": chunks}


def status(count, offset, flags=0):
    seen = []

    def extent(metacontext, off, entries, err):
        seen.append({"context": metacontext, "entries": [[entries[i], entries[i + 1]] for i in range(0, len(entries), 2)]})
        return 0

    h.block_status(count, offset, extent, flags)
    return seen


out["req_one_data"] = status(2 * MiB, 0, nbd.CMD_FLAG_REQ_ONE)
out["req_one_hole"] = status(MiB, 4 * MiB, nbd.CMD_FLAG_REQ_ONE)
out["status_all"] = status(h.get_size(), 0)

# FAST_ZERO on an unaligned range over data: ENOTSUP, and nothing changes.
try:
    h.zero(4 * KiB, 1000, nbd.CMD_FLAG_FAST_ZERO)
    out["fast_zero_unaligned"] = {"errno": 0}
except nbd.Error as e:
    out["fast_zero_unaligned"] = {"errno": e.errnum, "name": errno.errorcode.get(e.errnum or 0, "?")}
out["fast_zero_unaligned"]["unchanged"] = h.pread(8 * KiB, 0) == b"\xaa" * (8 * KiB)

# FAST_ZERO on a cluster-aligned range over data: done, and it reads as zero.
try:
    h.zero(64 * KiB, 64 * KiB, nbd.CMD_FLAG_FAST_ZERO)
    out["fast_zero_aligned"] = {"errno": 0}
except nbd.Error as e:
    out["fast_zero_aligned"] = {"errno": e.errnum}
out["fast_zero_aligned"]["zero"] = h.pread(64 * KiB, 64 * KiB) == bytes(64 * KiB)
out["fast_zero_aligned"]["neighbours"] = h.pread(4 * KiB, 60 * KiB) == b"\xaa" * (4 * KiB) and h.pread(4 * KiB, 128 * KiB) == b"\xaa" * (4 * KiB)

# FLUSH, and a FUA write that reads back.
h.flush()
out["flush"] = True
h.pwrite(b"\x5a" * (4 * KiB), 16 * MiB, nbd.CMD_FLAG_FUA)
out["fua_write"] = h.pread(4 * KiB, 16 * MiB) == b"\x5a" * (4 * KiB)

h.shutdown()
with open(os.environ["RESULT"], "w") as f:
    json.dump(out, f)
