#!/usr/bin/env bash
# bench/report.sh [ROWS...] - how fast `tlsprobe-collector report` answers over a large
# database, for several windows, side by side in one run (issue #8/#9 targets: 1 M rows
# <= 0.3 s, 10 M rows <= 2 s for any window). For each ROWS (default 1000000):
#   1. a real collector creates and migrates an empty database (schema as in production);
#   2. sqlite3 fills it with ROWS results spread evenly over 7 days: 20 targets x 5
#      profiles x 2 regions x 2 agents, 0.5 % failures, a one-certificate chain JSON like
#      ingest stores (the fill bypasses ingest on purpose: this measures the report);
#   3. `report` runs 3 times per query and the median wall time and max RSS are printed:
#      from raw rows (--source raw: 1h, 24h, 7d), then -- after a collector rolled the
#      database up -- as an operator runs it (auto: raw rows up to 6 h, rollups beyond,
#      SLO burn rates from rollups for all but the last hour), by region, the expiry
#      view, JSON, 30 days.
# Output: a Markdown table on stdout; with BENCH_RESULTS=FILE also appended there;
# BENCH_KEEP=1 keeps the work directory (databases, logs) and prints its path.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COLLECTOR=${TP_COLLECTOR:-$ROOT/build/collector/tlsprobe-collector}
[ -x "$COLLECTOR" ] || { echo "build tlsprobe-collector first (or set TP_COLLECTOR)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "sqlite3 missing: deploy/scripts/install-deps.sh" >&2; exit 2; }
ROWS_LIST=("${@:-1000000}")
W=$(mktemp -d /tmp/tp-bench-report.XXXXXX)
# BENCH_KEEP=1 keeps the databases (and logs) for profiling; the path is printed.
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  trap 'echo "kept: $W" >&2' EXIT
else
  trap 'rm -rf "$W"' EXIT
fi

# roll_up DB: a collector with a maintenance pass every second folds every result into
# the rollups (as production does every minute); prints how long that took.
roll_up() {
  printf 'listen: 127.0.0.1:0\ndatabase: %s\ninsecure_plaintext: true\nauth: {allow_unauthenticated: true}\nretention: {interval: 1s, raw: 3650d, rollups: 3650d}\n' "$1" >"$W/m.yaml"
  local start pid
  start=$(date +%s.%N)
  "$COLLECTOR" serve --config "$W/m.yaml" >"$W/maintain.log" 2>&1 &
  pid=$!
  for _ in $(seq 3000); do
    "$COLLECTOR" report --db "$1" --source rollup --since 1m --format json 2>/dev/null |
      grep -q '"not_rolled_up":0,' && break
    sleep 1
  done
  kill -TERM "$pid"; wait "$pid" || true
  echo "$(date +%s.%N) - $start" | bc -l | cut -c1-6
}

make_db() { # DB: an empty, migrated database made by the collector itself
  cat >"$W/c.yaml" <<EOF
listen: 127.0.0.1:0
database: $1
insecure_plaintext: true
auth: {allow_unauthenticated: true}
EOF
  "$COLLECTOR" serve --config "$W/c.yaml" >"$W/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q 'msg="listening"' "$W/serve.log" && break; sleep 0.1; done
  kill -TERM "$pid"; wait "$pid" || true
}

fill() { # DB ROWS NOW_NS
  if [ "$(sqlite3 "$1" "SELECT count(*) FROM sqlite_master WHERE name = 'result_rows'")" = 1 ]; then
    fill_v6 "$@"
    return
  fi
  local span=$((7 * 86400 * 1000000000))
  sqlite3 "$1" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1)
INSERT INTO results (received_unix_ns, agent_id, instance_id, batch_seq, region, target, host,
  port, sni, profile, address, result_seq, started_unix_ns, dns_ns, connect_ns, handshake_ns,
  total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher, grp, alpn,
  resumed, hello_retry_request, server_signature_algorithm, chain_json,
  days_to_earliest_expiry, mode, address_family, emulation_checked, emulation_divergence,
  early_data_policy_violation, ocsp_stapled)
SELECT $3 - $span + i * ($span / $2), 'agent-' || (i % 2), 1, i / 500 + 1,
  CASE (i / 2) % 2 WHEN 0 THEN 'eu' ELSE 'us' END, 'target-' || ((i / 4) % 20),
  '127.0.0.1', 443, 'bench.test', 'profile-' || ((i / 80) % 5), '127.0.0.1', i / 2 + 1,
  $3 - $span + i * ($span / $2), 0, 300000 + (i * 7919) % 200000,
  1000000 + (i * 104729) % 4000000, 1500000 + (i * 104729) % 4000000, (i * 31) % 50000,
  CASE WHEN i % 200 = 7 THEN 0 ELSE 1 END,
  CASE WHEN i % 200 = 7 THEN 'connection_refused' ELSE 'ok' END,
  CASE WHEN i % 200 = 7 THEN 'connect: Connection refused' ELSE '' END,
  'TLS1.3', 'TLS_AES_128_GCM_SHA256', 'X25519', 'h2', 0, 0, 'ECDSA-SECP256R1-SHA256',
  '[{"subject":"CN=target-' || ((i / 4) % 20) || '","issuer":"CN=bench CA","san_dns":["bench.test"],"not_before_unix":1700000000,"not_after_unix":1900000000,"key_type":"EC/ECDSA","key_bits":256,"signature_algorithm":"ECDSA-SHA256"}]',
  60, 'handshake', 'ipv4', 0, '', 0, 0
FROM n;
SQL
}

# The same rows for a schema version 6 database, written into its tables directly (the
# `results` view would take them row by row through its trigger, ~5x slower): the
# dictionaries first, with ids the rows compute (series = target x profile x region),
# then the rows, then what the writer keeps beside them (seen, series_latest). Their
# dictionaries have no `h`: a collector that ingests into the file adds its own rows
# for the same content once, which the report does not mind.
fill_v6() { # DB ROWS NOW_NS
  local span=$((7 * 86400 * 1000000000))
  sqlite3 "$1" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
INSERT INTO spool_keys (id, agent_id, instance_id) VALUES (1, 'agent-0', 1), (2, 'agent-1', 1);
WITH RECURSIVE t(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM t WHERE x < 19),
  p(y) AS (SELECT 0 UNION ALL SELECT y + 1 FROM p WHERE y < 4),
  g(r, name) AS (VALUES (0, 'eu'), (1, 'us'))
INSERT INTO series (id, target, profile, region, host, port, sni, address, address_family)
SELECT x * 10 + y * 2 + r + 1, 'target-' || x, 'profile-' || y, name, '127.0.0.1', 443,
  'bench.test', '127.0.0.1', 'ipv4' FROM t, p, g;
INSERT INTO shapes (id, error_class, tls_version, cipher, grp, alpn, server_signature_algorithm,
  mode, groups_offered, key_shares_offered, fidelity_note, emulation_divergence, ocsp_cert_status)
VALUES (1, 'ok', 'TLS1.3', 'TLS_AES_128_GCM_SHA256', 'X25519', 'h2', 'ECDSA-SECP256R1-SHA256',
  'handshake', NULL, NULL, NULL, '', NULL),
  (2, 'connection_refused', 'TLS1.3', 'TLS_AES_128_GCM_SHA256', 'X25519', 'h2',
  'ECDSA-SECP256R1-SHA256', 'handshake', NULL, NULL, NULL, '', NULL);
WITH RECURSIVE t(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM t WHERE x < 19)
INSERT INTO chains (id, chain_json)
SELECT x + 1, '[{"subject":"CN=target-' || x || '","issuer":"CN=bench CA","san_dns":["bench.test"],"not_before_unix":1700000000,"not_after_unix":1900000000,"key_type":"EC/ECDSA","key_bits":256,"signature_algorithm":"ECDSA-SHA256"}]'
FROM t;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1)
INSERT INTO result_rows (spool, result_seq, series, shape, chain, started_unix_ns,
  received_delay_ns, batch_seq, dns_ns, connect_ns, handshake_ns, total_ns, loop_lag_ns,
  schedule_lateness_ns, resumption_handshake_ns, flags, error_detail, days_to_earliest_expiry,
  chain_length_sent, ocsp_this_update_unix, ocsp_next_update_unix, ocsp_age_seconds,
  http_status, http_first_byte_ns)
SELECT i % 2 + 1, i / 2 + 1, ((i / 4) % 20) * 10 + ((i / 80) % 5) * 2 + (i / 2) % 2 + 1,
  CASE WHEN i % 200 = 7 THEN 2 ELSE 1 END, (i / 4) % 20 + 1, $3 - $span + i * ($span / $2), 0,
  i / 500 + 1, 0, 300000 + (i * 7919) % 200000, 1000000 + (i * 104729) % 4000000,
  1500000 + (i * 104729) % 4000000, (i * 31) % 50000, NULL, NULL,
  -- ok; ticket, early data and chain_complete not recorded (NULL), as the v5 fill left them
  CASE WHEN i % 200 = 7 THEN 0 ELSE 1 END | 4096 | 8192 | 16384 | 65536,
  CASE WHEN i % 200 = 7 THEN 'connect: Connection refused' ELSE '' END, 60, NULL, NULL, NULL,
  NULL, NULL, NULL
FROM n;
INSERT INTO seen (spool, first_seq, last_seq)
SELECT spool, min(result_seq), max(result_seq) FROM result_rows GROUP BY spool;
INSERT INTO series_latest (series, started_unix_ns, id)
SELECT series, max(started_unix_ns), max(id) FROM result_rows GROUP BY series;
COMMIT;
SQL
}

median3() { sort -n | sed -n 2p; }

measure() { # LABEL ARGS... -> "| label | seconds | MiB |"
  local label=$1 t m
  shift
  for run in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$W/time.$run" "$COLLECTOR" report --db "$W/db" "$@" \
      >"$W/out.$run" 2>/dev/null || true
  done
  t=$(cat "$W"/time.[123] | awk '{print $1}' | median3)
  m=$(cat "$W"/time.[123] | awk '{print $2}' | median3)
  printf '| %s | %s | %.1f |\n' "$label" "$t" "$(echo "$m / 1024" | bc -l)"
}

{
  echo "report benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| rows, query | seconds (median of 3) | max RSS MiB |"
  echo "|---|---|---|"
} | tee "$W/table"
for rows in "${ROWS_LIST[@]}"; do
  rm -f "$W/db" "$W/db-wal" "$W/db-shm"
  make_db "$W/db"
  now_ns=$(($(date +%s) * 1000000000))
  start=$(date +%s.%N)
  fill "$W/db" "$rows" "$now_ns"
  echo "| $rows: fill (sqlite3, not ingest) | $(echo "$(date +%s.%N) - $start" | bc -l | cut -c1-6) | - |" | tee -a "$W/table"
  [ -n "${BENCH_FILL_ONLY:-}" ] && continue
  for since in 1h 24h 7d; do
    measure "$rows: report --since $since --source raw" --since "$since" --source raw | tee -a "$W/table"
  done
  echo "| $rows: rolling up (maintenance pass every 1 s) | $(roll_up "$W/db") | - |" | tee -a "$W/table"
  for since in 1h 24h 7d; do
    measure "$rows: report --since $since (auto)" --since "$since" | tee -a "$W/table"
  done
  [ -n "${BENCH_FILL_ONLY:-}" ] && continue
  measure "$rows: report --since 7d --by region" --since 7d --by region | tee -a "$W/table"
  measure "$rows: report expiry --since 7d" expiry --since 7d | tee -a "$W/table"
  measure "$rows: report --since 1h --format json" --since 1h --format json | tee -a "$W/table"
  measure "$rows: report --since 30d --by region (rollups)" --since 30d --by region | tee -a "$W/table"
  echo "| $rows: database size MiB | $(du -m "$W/db" | cut -f1) | - |" | tee -a "$W/table"
done
if [ -n "${BENCH_RESULTS:-}" ]; then cat "$W/table" >>"$BENCH_RESULTS"; fi
# BENCH_KEEP_DB=FILE: keep the last database (for perf / callgrind of one query).
if [ -n "${BENCH_KEEP_DB:-}" ]; then mv "$W/db" "$BENCH_KEEP_DB"; fi
