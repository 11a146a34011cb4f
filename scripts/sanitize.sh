#!/usr/bin/env bash
# The compiled extensions built with AddressSanitizer and UndefinedBehaviorSanitizer (gcc) into a copy of the
# tree (build/sanitize), and the unit tests that reach their code run against them, Python's allocator off so
# that ASan sees every buffer: a memory error or undefined behaviour in the C code fails the run.
# `make sanitize`; CI runs it after `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py=$repo/.venv/bin/python
out=build/sanitize
rm -rf "$out"
mkdir -p "$out"
cp -r pipeline schemas bench tests config samples pyproject.toml README.md "$out"/
ln -sfn "$(cd .. && pwd)/shared" build/shared  # the tests' ../shared (skipped where absent)
include=$($py -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$($py -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
flags=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1 -fwrapv
       -fPIC -shared -I"$include")
gcc "${flags[@]}" pipeline/tagging/_automaton.c -o "$out/pipeline/tagging/_automaton$suffix"
gcc "${flags[@]}" -ffp-contract=off pipeline/tagging/_accel.c -o "$out/pipeline/tagging/_accel$suffix"
gcc "${flags[@]}" pipeline/parsing/_accel.c -o "$out/pipeline/parsing/_accel$suffix"
cd "$out"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 PYTHONMALLOC=malloc
export PYTHONPATH=$PWD
# the tests of the compiled code, of the stages that call it, and the hostile archives through the backfill
"$repo/.venv/bin/pytest" -q -p no:cacheprovider -m "not integration" \
    tests/test_accel.py tests/test_automaton.py tests/test_tagging_compiled.py tests/test_text.py \
    tests/test_simple_html.py tests/test_fastfeed.py tests/test_fastfeed_reader.py tests/test_normalize.py \
    tests/test_parquet.py tests/test_keyindex.py tests/test_stories.py tests/test_urls.py \
    "tests/test_backfill.py::test_a_hostile_json_lines_archive_accounts_for_every_line" \
    "tests/test_backfill.py::test_a_hostile_snapshot_archive_accounts_for_every_input" "$@"
