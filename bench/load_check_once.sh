#!/usr/bin/env bash
# A/B: client CPU of `host load items` (50k NAIP items through set_collection.wasm)
# into host's catalog and pgstac, fresh database per run, interleaved.
set -euo pipefail
eval "$(cd /work/main && scripts/pg env)"
export HOST_PGSTAC_MIGRATIONS=$(/work/main/scripts/pgstac-migrations 0.10.0)
B=/tmp/chk_bench
WASM=$B/set_collection.wasm
COLL=/work/wt/check/tests/fixtures/stac/planetary-computer/naip-collection.json
RUNS=${RUNS:-5}
base=${HOST_DSN%/*}
out=$B/results.tsv
: > $out
for run in $(seq 1 $RUNS); do
  for cat in builtin pgstac; do
    for v in before after; do
      bin=$B/host-$v
      db=chk_bench_$cat
      psql "$HOST_DSN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" 2>/dev/null
      dsn=$base/$db
      if [[ $cat == pgstac ]]; then
        $B/host-after migrate --dir "$HOST_PGSTAC_MIGRATIONS" --dsn "$dsn" >/dev/null 2>&1
      else
        $B/host-after migrate --dsn "$dsn" >/dev/null 2>&1
      fi
      $bin load collections $COLL --dsn "$dsn" --no-progress >/dev/null 2>&1
      la=$(cut -d' ' -f1 /proc/loadavg)
      /usr/bin/time -o $B/time.out -f "%U\t%S\t%e" $bin load items $B/items.ndjson --plugin $WASM --plugin-arg collection=naip --dsn "$dsn" --no-progress >/dev/null 2>$B/last.err || { cat $B/last.err; exit 1; }
      t=$(cat $B/time.out)
      n=$(psql "$dsn" -Atc "SELECT count(*) FROM $( [[ $cat == pgstac ]] && echo pgstac.items || echo host.items )")
      echo -e "$run\t$cat\t$v\t$t\t$n\t$la" | tee -a $out
    done
  done
done
psql "$HOST_DSN" -qc "DROP DATABASE IF EXISTS chk_bench_builtin WITH (FORCE)" -c "DROP DATABASE IF EXISTS chk_bench_pgstac WITH (FORCE)"
