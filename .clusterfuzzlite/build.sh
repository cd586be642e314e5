#!/bin/bash -eu
# Builds the Jazzer.js fuzz targets (OSS-Fuzz's JavaScript layout): the project and its dist/, the
# seed images and first inputs (scripts/jazzer-seeds.mjs), then one wrapper per target in $OUT
# (compile_javascript_fuzzer) with its seed corpus beside it. Jazzer.js is installed here, in the
# build image only: it is not a dependency of the project.
cd "$SRC/qcow2"
npm ci
npm install --no-save @jazzer.js/core
npm run build
node scripts/jazzer-seeds.mjs
for entry in fuzz/jazzer/qcow2_*.js; do
  name=$(basename "$entry" .js)
  # Async targets (each case awaits the engine): no --sync. A case is bounded by the oracles
  # (2 s of processor time); libFuzzer's own timeout is a backstop above it.
  compile_javascript_fuzzer qcow2 "$entry" -timeout=30 -rss_limit_mb=2560
  (cd "fuzz/jazzer/inputs/$name" && zip -q -r "$OUT/${name}_seed_corpus.zip" .)
done
