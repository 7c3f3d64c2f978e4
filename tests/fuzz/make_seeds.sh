#!/usr/bin/env bash
# make_seeds.sh - writes the seed corpora of the file and certificate fuzz targets:
#   corpus/collector_config  collector.yaml: the shipped and test files, then hostile ones
#                            (empty, comment-only, huge scalars, deep nesting, anchors and
#                            aliases, binary garbage, terminal escapes in quoted values)
#   corpus/agent_config      agent.yaml: the same kinds, plus every profile field
#   corpus/certinfo          DER certificates and chains made with openssl and certtool:
#                            every key type GnuTLS names, odd names and SANs, odd dates
#   corpus/ocsp              OCSP responses made with `openssl ocsp` (good, revoked,
#                            unknown, several singles, delegated responder...) and the
#                            unsuccessful responseStatus values
#   corpus/testssl           client blocks of testssl.sh's client-simulation.txt
#                            (/etc/testssl, Debian package testssl.sh), the test fixture,
#                            and malformed files
# Names carry what the seed runner checks: ok-* must load / yield facts, reject-* must be
# refused; other names only have to run. Files this script does not write (crash inputs
# the fuzzer found, kept as regressions) are left alone. Keys are fresh each run, so the
# certificate and OCSP files differ byte for byte after a rerun; commit what it wrote.
#   tests/fuzz/make_seeds.sh [CORPUS_DIR]     (default: tests/fuzz/corpus)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CORPUS=${1:-$ROOT/tests/fuzz/corpus}
CORPUS=$(mkdir -p "$CORPUS" && cd "$CORPUS" && pwd) # absolute: the script changes directory
DATA=$ROOT/tests/data
SIM=/etc/testssl/client-simulation.txt
BUNDLE=/etc/ssl/certs/ca-certificates.crt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for tool in openssl certtool; do
  command -v "$tool" >/dev/null || { echo "make_seeds.sh: $tool is needed" >&2; exit 1; }
done
[ -r "$SIM" ] || { echo "make_seeds.sh: $SIM is needed (apt-get install testssl.sh)" >&2; exit 1; }

# seed DIR NAME: stdin -> DIR/NAME
seed() { mkdir -p "$CORPUS/$1" && cat >"$CORPUS/$1/$2"; }
# repeat N TEXT: TEXT N times, no newline
repeat() { local i; for ((i = 0; i < $1; i++)); do printf '%s' "$2"; done; }

# ---- collector.yaml ------------------------------------------------------------------
c=collector_config
# with_plaintext: stdin, then what a file without tls: needs to load (plain HTTP said explicitly,
# and a way in: the loader refuses a collector nobody could push to).
with_plaintext() { cat; printf 'insecure_plaintext: true\nauth: {allow_unauthenticated: true}\n'; }
seed $c ok-good <"$DATA/config/collector_good.yaml"
seed $c ok-deploy <"$ROOT/deploy/config/collector.yaml"
printf 'listen: 127.0.0.1:0\ndatabase: tlsprobe.db\n' | with_plaintext | seed $c ok-minimal
printf 'listen: 127.0.0.1:0\ndatabase: t.db\nmax_result_age: 1h\nretention: {raw: 1h, rollups: 2h, interval: 1s}\n' |
  with_plaintext | seed $c ok-retention
printf 'listen: 127.0.0.1:0\ndatabase: t.db\nmax_result_age: 8d\nretention: {raw: 7d}\n' |
  with_plaintext | seed $c reject-retention-raw-below-max-age
printf 'listen: 127.0.0.1:0\ndatabase: t.db\nretention:\n  raw: 30d\n  rollups: 29d\n' |
  with_plaintext | seed $c reject-retention-rollups-below-raw
printf 'listen: 127.0.0.1:0\ndatabase: t.db\nretention: {interval: 0s}\n' |
  with_plaintext | seed $c reject-retention-interval
printf '{listen: "[::1]:8470", database: ./t.db, max_body_bytes: 67108864, log_level: error,\n' |
  { cat; printf ' insecure_plaintext: true, auth: {allow_unauthenticated: true}}\n'; } |
  seed $c ok-flow-ipv6
printf 'listen: &l 0.0.0.0:65535\ndatabase: &d ./tlsprobe.db\nmax_body_bytes: &m 1024\nlog_level: &v debug\n' |
  with_plaintext | seed $c ok-anchors
printf 'listen: 127.0.0.1:8470\ndatabase: t.db\nmetrics: {listen: "[::1]:0", max_series: 100}\n' |
  with_plaintext | seed $c ok-metrics
printf 'listen: 127.0.0.1:8470\ndatabase: t.db\nmetrics: {listen: 127.0.0.1:8470}\n' |
  with_plaintext | seed $c reject-metrics-same-listen
printf 'listen: 127.0.0.1:0\ndatabase: t.db\nmetrics: {max_series: 50000}\n' |
  with_plaintext | seed $c reject-metrics-no-listen
# Every key; the system CA bundle stands for every file (the loader checks that each is
# a readable file, its user reads it).
seed $c ok-every-field <<EOF
listen: "[::]:8470"
database: /tmp/tlsprobe-fuzz-seed.db
max_body_bytes: 1024
log_level: debug
tls:
  cert_file: $BUNDLE
  key_file: $BUNDLE
  client_ca_file: $BUNDLE
  client_crl_file: $BUNDLE
auth:
  tokens_file: $BUNDLE
  allow_unauthenticated: false
max_result_age: 3650d
max_clock_skew: 0s
limits:
  max_connections: 4096
  max_connections_per_ip: 4096
  connection_timeout: 10m
  header_timeout: 1s
  request_timeout: 1h
  max_buffered_bytes: 1024
  agent_requests_per_second: 100000
  agent_burst: 1000000
retention:
  raw: 3650d
  rollups: 3650d
  interval: 1h
EOF
printf 'listen: 127.0.0.1:0\ndatabase: a.db\nauth: {allow_unauthenticated: true}\n' |
  seed $c reject-no-tls
printf 'listen: 127.0.0.1:0\ndatabase: a.db\ninsecure_plaintext: true\n' | seed $c reject-no-way-in
printf 'listen: 127.0.0.1:0\ndatabase: a.db\nauth: {allow_unauthenticated: true}\n' |
  { cat; printf 'tls: {cert_file: %s, key_file: "/nonexistent\\e[2J"}\n' "$BUNDLE"; } |
  seed $c reject-escape-key-file
printf 'listen: 127.0.0.1:0\ndatabase: a.db\nlimits: {max_connections: 2, max_connections_per_ip: 3}\n' |
  with_plaintext | seed $c reject-per-ip-above-total
seed $c reject-empty </dev/null
seed $c reject-comment-only <"$DATA/config/comment_only.yaml"
printf '\n   \n\n' | seed $c reject-blank
printf '~\n' | seed $c reject-null-document
printf -- '- listen\n- database\n' | seed $c reject-top-level-list
printf 'listen\n' | seed $c reject-top-level-scalar
seed $c reject-tab-indent <"$DATA/config/collector_tab_indent.yaml"
seed $c reject-bad-listen-port <"$DATA/config/collector_bad_listen_port.yaml"
seed $c reject-bad-max-body <"$DATA/config/collector_bad_max_body.yaml"
seed $c reject-bad-database <"$DATA/config/collector_bad_database.yaml"
seed $c reject-agent-file <"$DATA/config/good.yaml"
printf 'listen: 127.0.0.1:0\ndatabase: a.db\n---\nlisten: 127.0.0.1:1\n' | seed $c reject-second-document
printf 'listen: 127.0.0.1:0\nlisten: 127.0.0.1:1\ndatabase: a.db\n' | with_plaintext | seed $c reject-duplicate-key
printf 'listen: 127.0.0.1:0\ndatabase: a.db\nport: 8470\n' | with_plaintext | seed $c reject-unknown-key
printf 'listen: 127.0.0.1:0\n' | with_plaintext | seed $c reject-missing-database
printf 'listen: 127.0.0.1:0\ndatabase: /tmp\n' | with_plaintext | seed $c reject-database-is-directory
printf 'listen: 127.0.0.1:0\ndatabase: ./dir/\n' | with_plaintext | seed $c reject-database-slash
printf 'listen: 127.0.0.1:0\ndatabase: a.db\nmax_body_bytes: -1\n' | with_plaintext | seed $c reject-negative
printf 'listen: 127.0.0.1:0\ndatabase: a.db\nmax_body_bytes: 184467440737095516160000\n' |
  with_plaintext | seed $c reject-huge-number
{ printf 'listen: "'; repeat 400 9; printf '"\ndatabase: a.db\n'; } | with_plaintext | seed $c reject-huge-listen
{ printf 'listen: 127.0.0.1:0\ndatabase: /'; repeat 5000 a; printf '\n'; } | with_plaintext | seed $c reject-huge-database
{ printf 'listen: '; repeat 3000 '['; repeat 3000 ']'; printf '\ndatabase: a.db\n'; } |
  seed $c reject-deep-flow
{
  printf 'listen: 127.0.0.1:0\ndatabase: a.db\n'
  for ((i = 0; i < 80; i++)); do repeat "$i" ' '; printf 'k%d:\n' "$i"; done
  repeat 80 ' '; printf 'v\n'
} | with_plaintext | seed $c reject-deep-block
printf 'listen: *nowhere\ndatabase: a.db\n' | with_plaintext | seed $c reject-alias-undefined
printf 'listen: &m {a: 1}\ndatabase: *m\n' | with_plaintext | seed $c reject-alias-mapping
printf 'listen: &l 127.0.0.1:0\ndatabase: a.db\nlog_level: *l\n' | with_plaintext | seed $c reject-alias-wrong-value
printf 'x: &a [1, 1, 1, 1]\ny: &b [*a, *a, *a, *a]\nz: [*b, *b, *b, *b]\n' | with_plaintext | seed $c reject-alias-fanout
printf 'listen: 127.0.0.1:0\ndatabase: a.db\nlog_level: "\\e[2J\\e[31mred"\n' | with_plaintext | seed $c reject-escape-log-level
printf 'listen: "\\e]0;title\\a127.0.0.1:0"\ndatabase: a.db\n' | with_plaintext | seed $c reject-escape-listen
printf 'listen: 127.0.0.1:0\ndatabase: "/nonexistent\\e[2J/a.db"\n' | with_plaintext | seed $c reject-escape-database
printf 'listen: 127.0.0.1:0\ndatabase: \xc3\x28.db\n' | with_plaintext | seed $c reject-invalid-utf8
printf 'listen: 127.0.0.1:0\n\x00\xff\xfe\x01database: a.db\n' | seed $c reject-nul-byte
printf '\xff\xfel\x00i\x00s\x00t\x00e\x00n\x00:\x00 \x001\x00\n\x00' | seed $c reject-utf16

# ---- agent.yaml ----------------------------------------------------------------------
a=agent_config
head_yaml='agent: {id: fuzz-agent}
collector: {url: "http://127.0.0.1:8470/v1/results", insecure_plaintext: true}
targets: [{name: web, host: web.example.test, port: 443}]'
seed $a ok-good <"$DATA/config/good.yaml"
seed $a ok-deploy <"$ROOT/deploy/config/agent.yaml"
printf '%s\njobs: [{targets: [web], profiles: [modern, old, android-4.4, java-8, ie11-win7], interval: 1s}]\n' \
  "$head_yaml" | seed $a ok-builtins
printf '%s\nprofiles: []\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' "$head_yaml" |
  seed $a ok-empty-profiles # what import-testssl writes when it skips every client
printf '%s\nmetrics: {listen: 127.0.0.1:9465}\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' \
  "$head_yaml" | seed $a ok-metrics
printf '%s\nmetrics: {listen: localhost:9465}\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' \
  "$head_yaml" | seed $a reject-metrics-listen
seed $a ok-every-field <<'EOF'
agent: {id: edge-eu-1, region: "eu west 1", log_level: warn}
collector:
  url: https://collector.internal:8470/v1/results
  batch_size: 10000
  max_batch_bytes: 67108864
  flush_interval: 1h
  timeout: 5m
  ca_file: /dev/null
  client_cert_file: /dev/null
  client_key_file: /dev/null
  token_file: /dev/null
spool: {path: /tmp/tlsprobe-fuzz-seed.spool, max_bytes: 1099511627776}
limits: {loops: 64, max_in_flight: 4096, max_pending: 65536}
defaults:
  connect_timeout: 10ms
  handshake_timeout: 5m
  dns_servers: "10.0.0.53:53,[fd00::53]:53,127.0.0.1"
profiles:
  - name: old-android
    base: android-4.4
    versions: [TLS1.0, TLS1.2]
    ciphers: [AES-128-GCM, AES-256-CBC]
    key_exchanges: [ECDHE-RSA, RSA]
    macs: [AEAD, SHA1]
    groups: [X25519, SECP256R1]
    signature_algorithms: [RSA-PSS-RSAE-SHA256, ECDSA-SECP256R1-SHA256, RSA-SHA1]
    alpn: [h2, http/1.1]
    trust: /etc/ssl/certs
    intermediates: /dev/null
    client_certificate: /dev/null
    client_key: /dev/null
    sni: alt.example.test
    ocsp_status_request: on
    mode: resumption
    http: {method: HEAD, path: /healthz, host: www.example.com}
    aia_fetch: "off"
    fidelity_note: "hand-written seed: \u00e9\u65e5"
  - name: zero-rtt
    mode: early_data
    early_data: {data: "PING\r\n", expect_reply: "yes"}
    sni: "off"
  - name: zero-rtt-post
    mode: early_data
    http: {method: POST, path: /submit}
  - name: imported
    description: "Java 8u161 (testssl.sh client-simulation)"
    versions: [TLS1.2, TLS1.3]
    min_dh_bits: 1024
    max_dh_bits: 2048
    recorded_offer:
      versions: [TLS1.2, TLS1.3]
      cipher_suites: [0x1301, 0xc02b, 0x009c]
      groups: [0x001d, 0x0017]
      signature_algorithms: [0x0403, 0x0804]
  - name: raw
    priority: "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM"
targets:
  - {name: shop, host: shop.example.com, port: 443, family: both}
  - {name: v4, host: 192.0.2.1, port: 8443, sni: v4.example.com, family: ipv4}
  - {name: v6, host: "2001:db8::1", port: 65535, family: ipv6}
  - {name: "caf\u00e9", host: cafe.example.com, port: 1, family: any}
jobs:
  - name: storefront
    targets: [shop, v4, v6, "caf\u00e9"]
    profiles: [old-android, zero-rtt, zero-rtt-post, imported, raw, modern]
    interval: 1d
EOF
printf '%s\nspool: {memory: true, max_bytes: 65536}\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' \
  "$head_yaml" | seed $a ok-memory-spool
printf '%s\nspool: {memory: true, path: /tmp/x.spool}\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' \
  "$head_yaml" | seed $a reject-spool-path-and-memory
printf 'agent: {id: a}\ncollector: {url: "http://127.0.0.1:1/v1/results"}\ntargets: [{name: web, host: h, port: 443}]\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' |
  seed $a reject-plaintext-not-allowed
seed $a ok-anchors-aliases <<'EOF'
agent: {id: a}
collector: {url: "http://127.0.0.1:1/v1/results", insecure_plaintext: true}
targets:
  - {name: &web web, host: &h web.example.test, port: &p 443}
  - {name: api, host: *h, port: *p, sni: *h}
jobs:
  - {targets: &both [*web, api], profiles: &pr [modern], interval: &i 30s}
  - {targets: *both, profiles: *pr, interval: *i}
EOF
{
  printf '%s\njobs:\n' "$head_yaml"
  printf '  - {targets: &t [web, web, web, web, web, web, web, web], profiles: &p [modern, modern, old, old], interval: 5s}\n'
  for ((i = 0; i < 16; i++)); do printf '  - {targets: *t, profiles: *p, interval: 5s}\n'; done
} | seed $a ok-alias-fanout
for f in "$DATA"/config/bad_*.yaml; do
  n=$(basename "$f" .yaml)
  n=${n#bad_}
  seed $a "reject-${n//_/-}" <"$f"
done
seed $a reject-empty </dev/null
seed $a reject-comment-only <"$DATA/config/comment_only.yaml"
seed $a reject-collector-file <"$DATA/config/collector_good.yaml"
printf '%s\njobs: [{targets: [web], profiles: [nope], interval: 5s}]\n' "$head_yaml" |
  seed $a reject-unknown-profile
printf '%s\njobs: [{targets: ["\\e[2Jweb"], profiles: [modern], interval: 5s}]\n' "$head_yaml" |
  seed $a reject-escape-target-ref
printf '%s\njobs: [{targets: [web], profiles: ["\\e[2Jx"], interval: 5s}]\n' "$head_yaml" |
  seed $a reject-escape-profile-ref
printf 'agent: {id: a, log_level: "\\e[31mloud"}\ncollector: {url: "http://127.0.0.1:1/v1/results", insecure_plaintext: true}\ntargets: [{name: web, host: h, port: 443}]\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' |
  seed $a reject-escape-log-level
printf 'agent: {id: a}\ncollector: {url: "http://127.0.0.1:1/v1/results", insecure_plaintext: true}\ntargets: [{name: web, host: h, port: 443, family: "\\e[31mv4"}]\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' |
  seed $a reject-escape-family
printf 'agent: {id: a}\ncollector: {url: "http://127.0.0.1:1/v1/results", insecure_plaintext: true}\ndefaults: {dns_servers: "\\e[2J1.2.3.4"}\ntargets: [{name: web, host: h, port: 443}]\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n' |
  seed $a reject-escape-dns-servers
printf '%s\nprofiles: [{name: p, groups: ["\\e[2JX25519"]}]\njobs: [{targets: [web], profiles: [p], interval: 5s}]\n' "$head_yaml" |
  seed $a reject-escape-group
printf '%s\nprofiles: [{name: p, base: "\\e[2Jmodern"}]\njobs: [{targets: [web], profiles: [p], interval: 5s}]\n' "$head_yaml" |
  seed $a reject-escape-base
{ printf '%s\njobs: [{targets: [web], profiles: [modern], interval: "' "$head_yaml"; repeat 40 9; printf '"}]\n'; } |
  seed $a reject-huge-interval
{ printf 'agent: {id: "'; repeat 2000 a; printf '"}\n'; } | seed $a reject-huge-agent-id
{ printf '%s\nprofiles: [{name: p, priority: "NORMAL' "$head_yaml"; repeat 500 ':+AES-128-GCM'; printf '"}]\njobs: [{targets: [web], profiles: [p], interval: 5s}]\n'; } |
  seed $a reject-huge-priority
{ printf '%s\njobs: [{targets: ' "$head_yaml"; repeat 3000 '['; repeat 3000 ']'; printf ', profiles: [modern], interval: 5s}]\n'; } |
  seed $a reject-deep-flow
printf '%s\njobs: [{targets: [*t], profiles: [modern], interval: 5s}]\n' "$head_yaml" | seed $a reject-alias-undefined
printf '%s\njobs: [{targets: &m {a: b}, profiles: [modern], interval: 5s}]\n' "$head_yaml" | seed $a reject-alias-mapping
printf '%s\njobs: [{targets: [web], profiles: [modern], interval: 5s}]\n\x00\xff\xfe' "$head_yaml" | seed $a reject-nul-byte
printf '%s\njobs: [{targets: [web], profiles: [\xc3\x28], interval: 5s}]\n' "$head_yaml" | seed $a reject-invalid-utf8

# ---- certificates (DER) -----------------------------------------------------------------
x=certinfo
cd "$TMP"
# der NAME PEM: the DER of a PEM certificate as seed NAME
der() { openssl x509 -in "$2" -outform DER | seed $x "$1"; }
# selfsigned NAME KEY_ARGS... (subject and extensions from $SUBJ / $EXT)
selfsigned() {
  local name=$1
  shift
  openssl req -x509 -new "$@" -keyout "$name.key" -out "$name.pem" -days 397 -nodes \
    -subj "${SUBJ:-/CN=$name.example.test/O=tlsprobe fuzz}" ${EXT:+-addext "$EXT"} 2>/dev/null
  der "ok-$name" "$name.pem"
}
selfsigned rsa2048 -newkey rsa:2048
selfsigned rsa4096 -newkey rsa:4096
selfsigned ec-p256 -newkey ec -pkeyopt ec_paramgen_curve:P-256
selfsigned ec-p384 -newkey ec -pkeyopt ec_paramgen_curve:P-384
selfsigned ec-p521 -newkey ec -pkeyopt ec_paramgen_curve:P-521
selfsigned ed25519 -newkey ed25519
selfsigned ed448 -newkey ed448
selfsigned rsa-pss -newkey rsa-pss -pkeyopt rsa_keygen_bits:2048
openssl dsaparam -out dsa.param 2048 2>/dev/null
selfsigned dsa -newkey dsa:dsa.param
selfsigned rsa1024-sha1 -newkey rsa:1024 -sha1
SUBJ=$'/CN=Caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac/O=\xd0\x9f\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80' \
  selfsigned utf8-subject -newkey ec -pkeyopt ec_paramgen_curve:P-256 -utf8
long_ou=$(repeat 60 o)
SUBJ="/CN=long.example.test$(for i in $(seq 1 24); do printf '/OU=%s%02d' "$long_ou" "$i"; done)" \
  selfsigned long-subject -newkey ec -pkeyopt ec_paramgen_curve:P-256
EXT="subjectAltName=$(for i in $(seq 1 100); do printf 'DNS:h%03d.example.test,' "$i"; done)IP:192.0.2.1,email:a@example.test,URI:https://example.test/" \
  selfsigned many-sans -newkey ec -pkeyopt ec_paramgen_curve:P-256
EXT="subjectAltName=DNS:$(repeat 250 a).example.test,DNS:*.example.test,IP:2001:db8::1,otherName:1.2.3.4;UTF8:other" \
  selfsigned long-san -newkey ec -pkeyopt ec_paramgen_curve:P-256
EXT="1.3.6.1.4.1.99999.1=critical,DER:01020304" \
  selfsigned unknown-critical-extension -newkey ec -pkeyopt ec_paramgen_curve:P-256
# A chain as a server sends it: leaf, intermediate, root (RSA root, EC intermediate).
openssl req -x509 -new -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 3650 \
  -subj "/CN=fuzz root CA/O=tlsprobe fuzz" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout int.key -out int.csr \
  -subj "/CN=fuzz intermediate CA/O=tlsprobe fuzz" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nauthorityInfoAccess=caIssuers;URI:http://127.0.0.1:1/root.der,OCSP;URI:http://127.0.0.1:1/ocsp\n' >int.ext
openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 1825 \
  -extfile int.ext -out int.pem 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr \
  -subj "/CN=leaf.example.test" 2>/dev/null
printf 'subjectAltName=DNS:leaf.example.test,DNS:www.leaf.example.test\nextendedKeyUsage=serverAuth\n' >leaf.ext
openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -days 90 \
  -extfile leaf.ext -out leaf.pem 2>/dev/null
der ok-root-ca root.pem
der ok-intermediate-ca int.pem
der ok-leaf leaf.pem
openssl x509 -in leaf.pem -outform DER >leaf.der
for f in leaf int root; do openssl x509 -in $f.pem -outform DER; done | seed $x ok-chain-3
for f in leaf root; do openssl x509 -in $f.pem -outform DER; done | seed $x ok-chain-gap
# More certificates than the chain cap (16): facts for 16, chain_length_sent 20.
for i in $(seq 1 20); do openssl x509 -in leaf.pem -outform DER; done | seed $x cap-chain-20
# Odd dates through certtool templates: expired, the far future (GeneralizedTime), 1950.
certtool --generate-privkey --key-type ecdsa --curve secp256r1 --outfile ct.key 2>/dev/null
ct() {
  printf 'cn = "%s"\nserial = 7\n%s\n' "$1" "$3" >"$1.tmpl"
  certtool --generate-self-signed --load-privkey ct.key --template "$1.tmpl" \
    --outfile "$1.pem" 2>/dev/null
  der "$2" "$1.pem"
}
ct expired ok-expired 'activation_date = "2004-02-29 16:21:42"
expiration_date = "2005-02-28 16:24:41"'
ct far-future ok-far-future 'activation_date = "2020-01-01 00:00:00"
expiration_date = "9999-12-31 23:59:59"'
ct old ok-not-before-1950 'activation_date = "1950-01-01 00:00:00"
expiration_date = "2049-12-31 23:59:59"'
ct ca ok-certtool-ca 'ca
cert_signing_key
dns_name = "ca.example.test"
ip_address = "192.0.2.7"
email = "ca@example.test"
crl_dist_points = "http://127.0.0.1:1/crl"
ocsp_uri = "http://127.0.0.1:1/ocsp"
ca_issuers_uri = "http://127.0.0.1:1/ca.der"
policy1 = 1.3.6.1.4.1.5484.1.10.99.1.0'
# Real roots as a server may send them.
der ok-isrg-root-x1 /etc/ssl/certs/ISRG_Root_X1.pem
der ok-isrg-root-x2 /etc/ssl/certs/ISRG_Root_X2.pem
der ok-gts-root-r4 /etc/ssl/certs/GTS_Root_R4.pem
# Byte surgery (the signature no longer verifies, which facts never check): a NUL inside
# a SAN DNS name, an escape sequence in the subject.
openssl x509 -in long-san.pem -outform DER >long-san.der
sed 's/aaaaaaaaaa/aaaa\x00aaaaa/' long-san.der | seed $x ok-san-with-nul
SUBJ="/CN=escXXXXXXape.example.test" selfsigned escape-subject-src -newkey ec -pkeyopt ec_paramgen_curve:P-256
rm "$CORPUS/$x/ok-escape-subject-src"
openssl x509 -in escape-subject-src.pem -outform DER | sed 's/XXXXXX/\x1b[2J\x07\x7f/' |
  seed $x ok-escape-subject
openssl x509 -in leaf.pem -outform DER | head -c 200 | seed $x reject-truncated
openssl x509 -in leaf.pem | seed $x reject-pem
seed $x reject-empty </dev/null
printf '\x30\x84\xff\xff\xff\xff\x02\x01\x00' | seed $x reject-length-overrun
printf '\x30\x03\x02\x01\x00' | seed $x reject-not-a-certificate

# ---- OCSP responses -----------------------------------------------------------------------
o=ocsp
mkdir -p ocsp && cd ocsp
openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
  -subj "/CN=fuzz OCSP CA" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ecca.key \
  -out ecca.pem -days 3650 -subj "/CN=fuzz EC OCSP CA" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
# issue NAME CA: a leaf signed by CA
issue() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -out "$1.csr" -subj "/CN=$1.example.test" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 90 \
    -out "$1.pem" ${3:+-extfile "$3"} 2>/dev/null
}
printf 'extendedKeyUsage=OCSPSigning\n' >signer.ext
issue good ca
issue revoked ca
issue unknown ca
issue signer ca signer.ext
issue ecgood ecca
# index.txt: V for good (and the signer), R for revoked with a reason.
serial() { openssl x509 -in "$1.pem" -noout -serial | cut -d= -f2; }
subject() { openssl x509 -in "$1.pem" -noout -subject -nameopt compat | sed 's/^subject=//'; }
{
  printf 'V\t301231235959Z\t\t%s\tunknown\t%s\n' "$(serial good)" "$(subject good)"
  printf 'R\t301231235959Z\t231101000000Z,keyCompromise\t%s\tunknown\t%s\n' "$(serial revoked)" "$(subject revoked)"
  printf 'V\t301231235959Z\t\t%s\tunknown\t%s\n' "$(serial signer)" "$(subject signer)"
} >index.txt
printf 'V\t301231235959Z\t\t%s\tunknown\t%s\n' "$(serial ecgood)" "$(subject ecgood)" >ecindex.txt
# respond NAME CA INDEX SIGNER SIGNER_KEY [ocsp options] -- CERT...: seed NAME
respond() {
  local name=$1 ca=$2 index=$3 signer=$4 key=$5
  shift 5
  local opts=() certs=()
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  for cert in "$@"; do certs+=(-cert "$cert.pem"); done
  openssl ocsp -issuer "$ca.pem" "${certs[@]}" -reqout "$name.req" -no_nonce 2>/dev/null
  openssl ocsp -index "$index" -CA "$ca.pem" -rsigner "$signer.pem" -rkey "$key.key" \
    -reqin "$name.req" -respout "$name.der" "${opts[@]}" 2>/dev/null
  seed $o "$name" <"$name.der"
}
respond ok-good ca index.txt ca ca -ndays 7 -- good
respond ok-good-no-next-update ca index.txt ca ca -- good
respond ok-revoked ca index.txt ca ca -ndays 1 -- revoked
respond ok-unknown ca index.txt ca ca -ndays 1 -- unknown
respond ok-several-singles ca index.txt ca ca -ndays 1 -- revoked good unknown
respond ok-responder-key-id ca index.txt ca ca -ndays 1 -resp_key_id -- good
respond ok-no-certs ca index.txt ca ca -ndays 1 -resp_no_certs -- good
respond ok-delegated-responder ca index.txt signer signer -ndays 1 -- good
respond ok-ec-responder ecca ecindex.txt ecca ecca -nmin 30 -- ecgood
openssl ocsp -issuer ca.pem -cert good.pem -reqout nonce.req 2>/dev/null
openssl ocsp -index index.txt -CA ca.pem -rsigner ca.pem -rkey ca.key -reqin nonce.req \
  -respout nonce.der -ndays 1 2>/dev/null
seed $o ok-nonce <nonce.der
# OCSPResponse with an unsuccessful responseStatus (RFC 6960 §4.2.1): no responseBytes.
for s in 1:malformed-request 2:internal-error 3:try-later 5:sig-required 6:unauthorized; do
  printf "\\x30\\x03\\x0a\\x01\\x0${s%%:*}" | seed $o "reject-${s#*:}"
done
seed $o reject-request <ok-good.req
head -c 120 ok-good.der | seed $o reject-truncated
seed $o reject-empty </dev/null
openssl x509 -in ../leaf.pem -outform DER | seed $o reject-certificate
# Binary garbage where YAML is expected: a certificate.
seed $c reject-binary <"$TMP/leaf.der"
seed $a reject-binary <"$TMP/leaf.der"
cd "$ROOT"

# ---- testssl.sh client-simulation data ----------------------------------------------------
t=testssl
# block NAME...: the client blocks of those names, as in the file
block() {
  local IFS='|'
  awk -v want="$*" '
    BEGIN { n = split(want, w, "|"); for (i = 1; i <= n; i++) keep[w[i]] = 1 }
    /names\+=\(/ { match($0, /"[^"]*"/); on = (substr($0, RSTART + 1, RLENGTH - 2) in keep) }
    on' "$SIM"
}
seed $t ok-fixture <"$DATA/profiles/client-simulation-mini.txt"
for client in "Android 2.3.7" "Android 4.0.4" "Android 8.1 (native)" "Android 12 (native)" \
  "Chrome 57 Win 7" "Chrome 101 (Win 10)" "Firefox 100 (Win 10)" "IE 6 XP" "IE 8 XP" \
  "IE 11 Win 7" "Edge 101 Win 10 21H2" "Opera 12.15 Win 7" "Safari 5.1.9 OS X 10.6.8" \
  "Safari 15.4 (macOS 12.3.1)" "Java 6u45" "Java 8u161" "Java 17.0.3 (OpenJDK)" "go 1.17.8" \
  "OpenSSL 0.9.8y" "OpenSSL 1.1.1d (Debian)" "OpenSSL 3.0.3 (git)" "Thunderbird (91.9)" \
  "Googlebot Feb 2018" "YandexBot Sep 2014"; do
  n=$(printf '%s' "$client" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9.\n' '-' | sed 's/--*/-/g; s/-$//')
  block "$client" | seed $t "ok-$n"
done
{ block "Firefox 100 (Win 10)"; block "Firefox 100 (Win 10)"; } | seed $t ok-duplicate-client
# Clients the importer skips, each for its own reason; the file still imports.
hello=$(block "go 1.17.8" | sed -n 's/.*handshakebytes+=("\(.*\)").*/\1/p')
{
  printf 'names+=("bad hex")\nhandshakebytes+=("zz%s")\n' "${hello:2}"
  printf 'names+=("odd length")\nhandshakebytes+=("%s0")\n' "$hello"
  printf 'names+=("truncated")\nhandshakebytes+=("%s")\n' "${hello:0:80}"
  printf 'names+=("no hello")\nshort+=("no_hello")\n'
  printf 'names+=("bad dh")\nhandshakebytes+=("%s")\nminDhBits+=(4096)\nmaxDhBits+=(1024)\n' "$hello"
  printf 'names+=("\x1b[2J\x07 hostile \xff name")\nshort+=("\x1b]0;t\x07")\nhandshakebytes+=("%s")\ncurrent+=(true)\n' "$hello"
  printf 'names+=("lowest above")\nhandshakebytes+=("%s")\nlowest_protocol+=("0x0304")\n' "$hello"
} | seed $t ok-skipped-clients
# hello_hex ALPN_LIST_HEX: a TLS 1.2 ClientHello (one suite, ECDHE-RSA-AES128-GCM) whose only
# extension is ALPN (RFC 7301 §3.1) with that ProtocolNameList body, as handshakebytes hex.
hello_hex() {
  local alpn=$1 ext body
  ext=$(printf '0010%04x%04x%s' $((${#alpn} / 2 + 2)) $((${#alpn} / 2)) "$alpn")
  body=$(printf '0303%s00' "$(repeat 32 00)")$(printf '0002c02f0100%04x%s' $((${#ext} / 2)) "$ext")
  printf '160301%04x01%06x%s' $((${#body} / 2 + 4)) $((${#body} / 2)) "$body"
}
# alpn NAME...: ProtocolNameList hex of those names (bytes given as in printf)
alpn() { local n h; for n in "$@"; do h=$(printf "$n" | od -An -tx1 | tr -d ' \n'); printf '%02x%s' $((${#h} / 2)) "$h"; done; }
{
  # What agent.yaml could not hold back: the name the profile gets, its description and
  # its ALPN list are cut or filtered to the loader's limits.
  printf 'names+=("")\nhandshakebytes+=("%s")\n' "$(hello_hex "$(alpn h2)")"
  printf 'names+=("%s")\nhandshakebytes+=("%s")\n' "$(repeat 400 'Long client ')" \
    "$(hello_hex "$(alpn h2 http/1.1)")"
  printf 'names+=("x")\nshort+=("%s")\nhandshakebytes+=("%s")\n' "$(repeat 40 short_)" \
    "$(hello_hex "$(alpn h2 h2 '\xff\xfe' 'a\x01b' http/1.1)")"
  printf 'names+=("many alpn")\nhandshakebytes+=("%s")\n' \
    "$(hello_hex "$(alpn $(for i in $(seq 1 40); do printf 'p%d ' "$i"; done))")"
} | sed 's/^handshakebytes.*/&\nlowest_protocol+=("0x0303")/' | seed $t ok-agent-yaml-limits
seed $t reject-empty </dev/null
printf '# only a comment\n\n' | seed $t reject-no-clients
printf 'names+=("$(touch /tmp/pwned)")\n' | seed $t reject-command-substitution
printf 'names+=("a\\"b")\n' | seed $t reject-backslash
printf 'names+=("unterminated)\n' | seed $t reject-unterminated
printf 'short+=("first")\nnames+=("x")\n' | seed $t reject-key-before-names
printf 'names+=("x")\nshort+=("a")\nshort+=("b")\n' | seed $t reject-second-key
printf 'names+=("x") ; rm -rf /\n' | seed $t reject-text-after
printf 'names=("x")\n' | seed $t reject-not-an-append
printf 'names+=("x")\n\x1b[2J\x07garbage\xff\n' | seed $t reject-escape-in-error
