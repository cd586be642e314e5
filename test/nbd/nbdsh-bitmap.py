# Block status of one qemu:dirty-bitmap context at odd offsets and lengths, run by
# test/nbd/exports.test.ts as  nbdsh -c "exec(open(SCRIPT).read())"  with NBD_URI, CONTEXT and
# RESULT in the environment; writes the (context, offset, entries) triples it got as JSON to RESULT.
import json
import os

h.add_meta_context(os.environ["CONTEXT"])
h.connect_uri(os.environ["NBD_URI"])
out = []
for (off, ln) in [(40100, 5000), (1048576 - 512, 1024), (10485760 + 700, 100), (0, 1 << 20),
                  (99 * 1048576 + 1, 1048575), (39936 + 1, 3071), (1 << 20, 9 << 20)]:
    got = []

    def seen(meta, offset, entries, err):
        got.append([meta, offset, list(entries)])
        return 0

    h.block_status(ln, off, seen)
    out.append(got)
h.shutdown()
with open(os.environ["RESULT"], "w") as f:
    json.dump(out, f)
