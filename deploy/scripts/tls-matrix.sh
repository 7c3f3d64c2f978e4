#!/usr/bin/env bash
# tls-matrix.sh - the servers of the server matrix (tests/integration/test_matrix.sh): real TLS
# (and deliberately non-TLS) servers on 127.0.0.1, each showing one server-side condition.
#
#   tls-matrix.sh start DIR [SERVER...]   generate the PKI into DIR, start the servers (all,
#                                         or only those named), verify each one is ours
#   tls-matrix.sh stop DIR                stop every server recorded in DIR/pids
#   tls-matrix.sh list                    print the server names, one per line
#
# Outputs:
#   DIR/ca.pem            the root CA to trust (a probe trusting it sees the chains as intended)
#   DIR/intermediate.pem  the intermediate CA (evidence for incomplete-chain detection)
#   DIR/client.pem/.key   a client certificate from the trusted root (mtls server accepts it)
#   DIR/rogue-client.pem/.key  a client certificate from an untrusted CA (mtls rejects it)
#   DIR/servers.tsv       name <TAB> port <TAB> sni, one line per started server
#   DIR/servers.env       NAME_PORT=... lines (sourceable; '-' in names becomes '_')
#   DIR/pids              one pid per line;  DIR/logs/<server>.log  server output
#
# PKI: root CA -> intermediate CA -> leaves (ECDSA P-256 unless noted; certtool, because its
# templates take explicit validity dates, which OpenSSL 3.0's `x509 -req` cannot backdate).
# Each leaf's SAN is <server>.test and probes send that name as SNI, except `wrongname`.
# OCSP responses are made with `openssl ocsp` from an index file, signed by the intermediate.
#
# Servers (name: what it is -> what a correct probe reports):
#   good       leaf + intermediate, TLS 1.2/1.3                       -> ok
#   leafonly   leaf without the intermediate                          -> incomplete_chain
#              (given the intermediate as evidence, else unknown_ca)
#   leafonly-aia  same, the leaf names its issuer's URL (AIA caIssuers), which the matrix's
#              AIA file server serves                                 -> incomplete_chain
#              (proven by fetching and re-verifying; unknown_ca with aia_fetch: off)
#   untrusted-aia  a leaf from the untrusted rogue root, served alone, whose AIA URL serves
#              that root: fetching proves nothing verifies            -> unknown_ca
#   deadaia    a leaf of the intermediate, served alone, whose AIA URL answers 404
#                                                                     -> unknown_ca
#   expired    leaf past notAfter (2020-2021)                         -> expired
#   notyet     leaf with notBefore 30 days ahead                      -> not_yet_valid
#   wrongname  leaf for other.test (probes send wrongname.test)       -> hostname_mismatch
#   unknownca  leaf from an untrusted root                            -> unknown_ca
#   sha1       leaf signed with ecdsa-with-SHA1                       -> insecure_algorithm
#   revoked    leaf + stapled OCSP response "revoked"                 -> revoked
#   stapled    leaf + stapled OCSP response "good"                    -> ok, OCSP facts
#   tls13      TLS 1.3 only (-tls1_3)
#   tls12      TLS 1.2 only (-tls1_2)
#   tls10      TLS 1.0 only (-tls1, DEFAULT:@SECLEVEL=0), RSA leaf
#   p384       TLS 1.3 only, key exchange group secp384r1 only -> HelloRetryRequest for
#              clients whose key shares are X25519/P-256; no common group for X25519-only
#   rsakx      TLS 1.2 only, AES128-SHA (RSA key exchange) only, RSA leaf
#   camellia   TLS 1.2 only, CAMELLIA128-SHA only, RSA leaf: a cipher GnuTLS's "+CIPHER-ALL"
#              leaves out                                             -> no_shared_cipher
#   dhcustom   TLS 1.2 only, DHE-RSA with a server-generated (unnamed) 2048-bit prime
#                                                                     -> group CUSTOM2048
#   longsubject  a legal leaf whose subject is ~1,600 bytes (eight description attributes) and
#              whose SANs include one that is not UTF-8 and holds a terminal escape: the result
#              must still reach the collector, its text fitted and escaped -> ok
#   mtls       requires a client certificate from the trusted root (-Verify 1)
#   nottls     plain TCP: reads, answers "HTTP/1.1 400 Bad Request", closes  -> not_tls
#   hang       accepts TCP and never answers                          -> handshake_timeout
#   refused    a port bound (so nobody else takes it) but not listening -> connection_refused
#   ngx-resume nginx, TLS 1.3, session tickets on                     -> resumed
#   ngx-early  nginx, TLS 1.3, session tickets + ssl_early_data on    -> 0-RTT accepted
#              + `lingering_close always`: nginx answers a 0-RTT "Connection: close" request
#              right after its Finished and closes; without lingering, the client's
#              EndOfEarlyData/Finished can reach a closed socket, which answers with RST
#   ngx-early-raw  the same with nginx's default lingering_close: the probe no longer asks
#                  the server to close, so 0-RTT against a default config works too
#   ngx-early425  the same, answering 425 Too Early to any request that came as 0-RTT data
#              (RFC 8470 §5.2: how a server refuses early data it will not process)
#   ngx-ocsp   nginx, OCSP staple "good" from ssl_stapling_file       -> ok, OCSP facts
#              (and a Strict-Transport-Security header on every answer)
#   ngx-noticket nginx, TLS 1.3, no tickets and no session cache      -> not resumed
# Every nginx server answers GET / with 200 and GET /status/NNN with NNN (204, 404, 503).
#
# TLS servers are `openssl s_server -accept 127.0.0.1:PORT -www` (gnutls-serv cannot bind to
# loopback only) and one nginx (its own prefix, config, pid and logs in DIR/nginx, running as
# the current user). The plain-TCP servers are small Perl programs (perl-base is essential on
# Debian). Every server listens on 127.0.0.1 only, on a free port; each TLS server is checked
# with `openssl s_client` to present exactly our leaf before it is recorded (another test
# suite may grab ports concurrently); a server that loses its port is restarted elsewhere.
set -euo pipefail

PROG=${0##*/}
READY_TIMEOUT_S=10
ALL_SERVERS=(good leafonly leafonly-aia expired notyet wrongname unknownca sha1 revoked stapled
  tls13 tls12 tls10 p384 rsakx camellia dhcustom longsubject untrusted-aia deadaia mtls nottls
  hang refused
  ngx-resume ngx-early ngx-early-raw ngx-early425 ngx-ocsp ngx-noticket)

die() { echo "$PROG: $*" >&2; exit 1; }
say() { echo "$PROG: $*" >&2; }
usage() { echo "usage: $PROG start DIR [SERVER...] | stop DIR | list" >&2; exit 2; }

# --- PKI ------------------------------------------------------------------------------------

utc() { date -u -d "$1" '+%Y-%m-%d %H:%M:%S UTC'; }

# make_key OUT [rsa]
make_key() {
  local args=(--key-type=ecdsa --curve=secp256r1)
  [ "${2:-}" = rsa ] && args=(--key-type=rsa --bits=2048)
  certtool --generate-privkey "${args[@]}" --no-text --outfile "$1" >/dev/null 2>&1 ||
    die "certtool could not generate key $1"
}

# make_ca NAME CN [ISSUER]: self-signed root, or an intermediate signed by ISSUER. Valid from
# 2015 until 10 years from now, so every leaf's validity lies inside its issuers'.
make_ca() {
  local name=$1 cn=$2 issuer=${3:-} p=$PKI serial=$NEXT_SERIAL
  NEXT_SERIAL=$((NEXT_SERIAL + 1))
  make_key "$p/$name.key"
  cat >"$p/$name.tmpl" <<EOF
cn = "$cn"
organization = "tlsprobe matrix"
serial = $serial
ca
cert_signing_key
crl_signing_key
activation_date = "$(utc '2015-01-01 00:00:00')"
expiration_date = "$(utc '+10 years')"
EOF
  if [ -z "$issuer" ]; then
    certtool --generate-self-signed --no-text --load-privkey "$p/$name.key" \
      --template "$p/$name.tmpl" --outfile "$p/$name.pem" >"$p/$name.log" 2>&1
  else
    echo "path_len = 0" >>"$p/$name.tmpl"
    certtool --generate-certificate --no-text --load-privkey "$p/$name.key" \
      --load-ca-certificate "$p/$issuer.pem" --load-ca-privkey "$p/$issuer.key" \
      --template "$p/$name.tmpl" --outfile "$p/$name.pem" >"$p/$name.log" 2>&1
  fi || die "certtool failed for CA $name (see $p/$name.log)"
}

# make_leaf NAME ISSUER SAN NOT_BEFORE NOT_AFTER [KEYTYPE [HASH [PURPOSE [CA_ISSUERS_URL]]]]
# KEYTYPE ecdsa|rsa (an RSA leaf may also encrypt: RSA key exchange); PURPOSE server|client.
make_leaf() {
  local name=$1 issuer=$2 san=$3 nb=$4 na=$5 kt=${6:-ecdsa} hash=${7:-SHA256} purpose=${8:-server}
  local aia=${9:-} p=$PKI serial=$NEXT_SERIAL
  NEXT_SERIAL=$((NEXT_SERIAL + 1))
  make_key "$p/$name.key" "$kt"
  {
    echo "cn = \"$san\""
    echo "organization = \"tlsprobe matrix\""
    echo "serial = $serial"
    if [ "$purpose" = client ]; then echo tls_www_client; else
      echo "dns_name = \"$san\""
      echo tls_www_server
    fi
    echo signing_key
    [ "$kt" = rsa ] && echo encryption_key
    [ -z "$aia" ] || echo "ca_issuers_uri = \"$aia\""
    echo "activation_date = \"$nb\""
    echo "expiration_date = \"$na\""
  } >"$p/$name.tmpl"
  certtool --generate-certificate --no-text --hash="$hash" --load-privkey "$p/$name.key" \
    --load-ca-certificate "$p/$issuer.pem" --load-ca-privkey "$p/$issuer.key" \
    --template "$p/$name.tmpl" --outfile "$p/$name.pem" >"$p/$name.log" 2>&1 ||
    die "certtool failed for leaf $name (see $p/$name.log)"
}

# make_ocsp LEAF STATUS: PKI/LEAF.ocsp.der, a response for LEAF (issued by the intermediate)
# saying STATUS (good|revoked), signed by the intermediate, valid for 7 days.
make_ocsp() {
  local leaf=$1 status=$2 p=$PKI serial exp idx
  serial=$(openssl x509 -in "$p/$leaf.pem" -noout -serial | sed 's/^serial=//')
  exp=$(date -u -d "$(openssl x509 -in "$p/$leaf.pem" -noout -enddate | sed 's/^notAfter=//')" +%y%m%d%H%M%SZ)
  idx=$p/$leaf.index
  if [ "$status" = revoked ]; then
    printf 'R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=%s\n' "$exp" \
      "$(date -u -d '-1 day' +%y%m%d%H%M%SZ)" "$serial" "$leaf" >"$idx"
  else
    printf 'V\t%s\t\t%s\tunknown\t/CN=%s\n' "$exp" "$serial" "$leaf" >"$idx"
  fi
  {
    openssl ocsp -issuer "$p/inter.pem" -cert "$p/$leaf.pem" -no_nonce -reqout "$p/$leaf.ocsp-req.der" &&
      openssl ocsp -index "$idx" -CA "$p/inter.pem" -rsigner "$p/inter.pem" -rkey "$p/inter.key" \
        -reqin "$p/$leaf.ocsp-req.der" -respout "$p/$leaf.ocsp.der" -ndays 7 &&
      openssl ocsp -respin "$p/$leaf.ocsp.der" -issuer "$p/inter.pem" -CAfile "$p/root.pem" \
        -cert "$p/$leaf.pem" -no_nonce
  } >"$p/$leaf.ocsp.log" 2>&1 || die "openssl ocsp failed for $leaf (see $p/$leaf.ocsp.log)"
  grep -q ": $status" "$p/$leaf.ocsp.log" || die "OCSP response for $leaf does not say $status (see $p/$leaf.ocsp.log)"
}

make_pki() {
  PKI=$DIR/pki
  mkdir -p "$PKI"
  NEXT_SERIAL=$((0x1000 + RANDOM))
  local nb na s
  nb=$(utc '-1 day')
  na=$(utc '+1 year')
  make_ca root "tlsprobe matrix root CA"
  make_ca inter "tlsprobe matrix intermediate CA" root
  make_ca rogue "tlsprobe matrix rogue CA (not trusted)"
  for s in good leafonly revoked stapled tls13 tls12 p384 mtls ngx-resume ngx-early ngx-early-raw \
    ngx-early425 ngx-ocsp ngx-noticket; do
    make_leaf "$s" inter "$s.test" "$nb" "$na"
  done
  make_leaf leafonly-aia inter leafonly-aia.test "$nb" "$na" ecdsa SHA256 server \
    "http://127.0.0.1:$AIA_PORT/inter.der"
  make_leaf untrusted-aia rogue untrusted-aia.test "$nb" "$na" ecdsa SHA256 server \
    "http://127.0.0.1:$AIA_PORT/rogue.der"
  make_leaf deadaia inter deadaia.test "$nb" "$na" ecdsa SHA256 server \
    "http://127.0.0.1:$AIA_PORT/missing.der"
  local ca
  for ca in inter rogue; do
    openssl x509 -in "$PKI/$ca.pem" -outform DER -out "$PKI/$ca.der" || die "cannot write $ca.der"
  done
  make_leaf tls10 inter tls10.test "$nb" "$na" rsa
  make_leaf rsakx inter rsakx.test "$nb" "$na" rsa
  make_leaf camellia inter camellia.test "$nb" "$na" rsa
  make_leaf dhcustom inter dhcustom.test "$nb" "$na" rsa
  make_long_subject_leaf longsubject
  # A 2048-bit prime no RFC names (DSA-style generation is fast); GnuTLS knows it by size only.
  openssl dhparam -dsaparam -out "$PKI/dhcustom.dh.pem" 2048 >"$PKI/dhcustom.dh.log" 2>&1 ||
    die "openssl dhparam failed (see $PKI/dhcustom.dh.log)"
  make_leaf expired inter expired.test "$(utc '2020-01-01 00:00:00')" "$(utc '2021-01-01 00:00:00')"
  make_leaf notyet inter notyet.test "$(utc '+30 days')" "$(utc '+1 year')"
  make_leaf wrongname inter other.test "$nb" "$na"
  make_leaf unknownca rogue unknownca.test "$nb" "$na"
  make_leaf sha1 inter sha1.test "$nb" "$na" ecdsa SHA1
  openssl x509 -in "$PKI/sha1.pem" -noout -text | grep -q 'Signature Algorithm: ecdsa-with-SHA1' ||
    die "sha1 leaf is not signed with ecdsa-with-SHA1"
  make_leaf client root "tlsprobe matrix client" "$nb" "$na" ecdsa SHA256 client
  make_leaf rogue-client rogue "tlsprobe matrix rogue client" "$nb" "$na" ecdsa SHA256 client
  make_ocsp revoked revoked
  make_ocsp stapled good
  make_ocsp ngx-ocsp good
  cat "$PKI/root.pem" "$PKI/rogue.pem" >"$PKI/client-ca-names.pem"
  cp "$PKI/root.pem" "$DIR/ca.pem"
  cp "$PKI/inter.pem" "$DIR/intermediate.pem"
  for s in client rogue-client; do cp "$PKI/$s.pem" "$PKI/$s.key" "$DIR/"; done
  # Served chains: leaf + intermediate (nginx wants them in one file).
  for s in good expired notyet wrongname sha1 revoked stapled tls13 tls12 tls10 p384 rsakx mtls \
    camellia dhcustom longsubject ngx-resume ngx-early ngx-early-raw ngx-early425 ngx-ocsp \
    ngx-noticket; do
    cat "$PKI/$s.pem" "$PKI/inter.pem" >"$PKI/$s.chain.pem"
  done
}

# --- ports ----------------------------------------------------------------------------------

# True if something accepts TCP connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Alive and not a zombie.
alive() { [ -r "/proc/$1/status" ] && ! grep -q "^State:[[:space:]]*Z" "/proc/$1/status" 2>/dev/null; }

# TP_MATRIX_PORT_BASE pins the first port tried (debugging); random otherwise.
NEXT_PORT=${TP_MATRIX_PORT_BASE:-$((20000 + RANDOM % 20000))}
# free_port: sets PORT (a global: the cursor must advance, which $(...) would lose).
free_port() {
  local tries=0 p
  while [ $tries -lt 200 ]; do
    p=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT >= 40000 ? 20000 : NEXT_PORT + 1))
    tries=$((tries + 1))
    if ! port_busy "$p"; then PORT=$p; return 0; fi
  done
  die "no free port found in 200 tries"
}

# --- the plain-TCP servers (Perl, core modules only) ----------------------------------------

# perl PLAIN_TCP MODE PORT: prints "bound PORT" once its socket is bound (and listening).
#  nottls:  per connection: read what the client sends (up to 1 s), answer a bare HTTP 400,
#           half-close, drain until the client closes (at most 2 s): no RST on our side.
#  hang:    accept and hold every connection, reading and discarding, never writing; a
#           connection is dropped after 60 s.
#  refused: bind without listen: connecting gets RST, and nobody else can take the port.
# Every mode exits after TP_MATRIX_MAX_LIFETIME seconds (default 1 h) so that no leftover
# outlives a killed test run for long.
# shellcheck disable=SC2016 # Perl source: its $variables are Perl's
PLAIN_TCP='
use strict; use warnings; use Socket; use IO::Select; use IO::Handle;
my ($mode, $port) = @ARGV;
my $deadline = time + ($ENV{TP_MATRIX_MAX_LIFETIME} || 3600);
socket(my $s, PF_INET, SOCK_STREAM, getprotobyname("tcp")) or die "socket: $!";
setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!";
bind($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or die "bind 127.0.0.1:$port: $!\n";
if ($mode eq "aia") { # serve DIR/NAME.der for GET /NAME.der, 404 otherwise, then close
  my $dir = $ARGV[2]; listen($s, 64) or die "listen: $!"; print "bound $port\n"; STDOUT->flush;
  my $sel = IO::Select->new($s);
  while (time < $deadline) {
    next unless $sel->can_read(1);
    accept(my $c, $s) or next;
    my $r = IO::Select->new($c); my $req = "";
    while ($req !~ /\r\n\r\n/ && length($req) < 8192 && $r->can_read(1)) {
      my $n = sysread($c, my $buf, 8192); last unless $n; $req .= $buf;
    }
    my ($name) = $req =~ m{^GET /([a-z0-9-]+\.der) HTTP/1\.[01]\r\n};
    print "GET ", (defined $name ? $name : "?"), "\n"; STDOUT->flush; # the tests count fetches
    my $body;
    if (defined $name && open(my $f, "<:raw", "$dir/$name")) { local $/; $body = <$f>; close $f; }
    if (defined $body) {
      syswrite($c, "HTTP/1.0 200 OK\r\nContent-Type: application/pkix-cert\r\nContent-Length: "
        . length($body) . "\r\nConnection: close\r\n\r\n" . $body);
    } else { syswrite($c, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); }
    shutdown($c, 1); close $c;
  }
  exit 0;
}
if ($mode eq "refused") { print "bound $port\n"; STDOUT->flush; sleep 1 while time < $deadline; exit 0; }
listen($s, 64) or die "listen: $!";
print "bound $port\n"; STDOUT->flush;
my $sel = IO::Select->new($s); my %since;
while (time < $deadline) {
  for my $h ($sel->can_read(1)) {
    if ($h == $s) {
      accept(my $c, $s) or next;
      if ($mode eq "nottls") {
        my $r = IO::Select->new($c); my $buf;
        sysread($c, $buf, 65536) if $r->can_read(1);
        syswrite($c, "HTTP/1.1 400 Bad Request\r\n\r\n");
        shutdown($c, 1);
        my $end = time + 2;
        while (time < $end && $r->can_read(0.2)) { last unless sysread($c, $buf, 65536); }
        close $c;
      } else { $sel->add($c); $since{fileno $c} = time; }
    } else {
      my $buf; my $n = sysread($h, $buf, 65536);
      if (!$n) { delete $since{fileno $h}; $sel->remove($h); close $h; }
    }
  }
  for my $h ($sel->handles) {
    next if $h == $s;
    if (time - $since{fileno $h} > 60) { delete $since{fileno $h}; $sel->remove($h); close $h; }
  }
}
'

# --- starting and verifying servers ---------------------------------------------------------

# server_spec NAME: sets SNI, CERT (served leaf; empty for plain TCP), KIND (s_server|perl|
# nginx), ARGS (extra s_server arguments) and CHECK (extra s_client arguments to reach it).
server_spec() {
  local n=$1 p=$PKI
  SNI=$n.test KIND=s_server ARGS=() CHECK=() CERT=$p/$n.pem
  local chain=(-cert_chain "$p/inter.pem")
  case $n in
    good | expired | notyet) ARGS=("${chain[@]}") ;;
    # OpenSSL itself refuses to serve a SHA-1-signed certificate above security level 0.
    sha1) ARGS=("${chain[@]}" -cipher 'DEFAULT:@SECLEVEL=0') ;;
    wrongname) ARGS=("${chain[@]}") ;;
    leafonly | leafonly-aia | unknownca | untrusted-aia | deadaia) ARGS=() ;;
    revoked | stapled) ARGS=("${chain[@]}" -status_file "$p/$n.ocsp.der") ;;
    tls13) ARGS=("${chain[@]}" -tls1_3) ;;
    tls12) ARGS=("${chain[@]}" -tls1_2) ;;
    tls10) ARGS=("${chain[@]}" -tls1 -cipher 'DEFAULT:@SECLEVEL=0')
      CHECK=(-tls1 -cipher 'DEFAULT:@SECLEVEL=0') ;;
    p384) ARGS=("${chain[@]}" -tls1_3 -groups secp384r1) ;;
    rsakx) ARGS=("${chain[@]}" -tls1_2 -cipher AES128-SHA)
      CHECK=(-tls1_2 -cipher AES128-SHA) ;;
    camellia) ARGS=("${chain[@]}" -tls1_2 -cipher CAMELLIA128-SHA)
      CHECK=(-tls1_2 -cipher CAMELLIA128-SHA) ;;
    dhcustom) ARGS=("${chain[@]}" -tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256 -dhparam "$p/dhcustom.dh.pem")
      CHECK=(-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256) ;;
    longsubject) ARGS=("${chain[@]}") ;;
    # GnuTLS sends a client certificate only if its issuer is among the CA names of the
    # CertificateRequest (and fails to decode one without names: -no_ca_names is no way out).
    # So the names come from root + rogue (-CAfile), verification from the root alone
    # (-verifyCAfile): the rogue client certificate is sent, and refused.
    mtls) ARGS=("${chain[@]}" -Verify 1 -verify_return_error -CAfile "$p/client-ca-names.pem"
      -verifyCAfile "$p/root.pem") ;;
    nottls | hang | refused) KIND=perl CERT= ;;
    ngx-*) KIND=nginx ;;
    *) die "unknown server $n (known: ${ALL_SERVERS[*]})" ;;
  esac
  [ "$n" = wrongname ] && SNI=wrongname.test
  [ "$n" = sha1 ] && CHECK=(-cipher 'DEFAULT:@SECLEVEL=0')
  return 0
}

# serves_our_cert PORT SNI CERT [S_CLIENT_ARGS...]: the leaf presented on PORT is CERT.
serves_our_cert() {
  local port=$1 sni=$2 cert=$3 want got
  shift 3
  want=$(openssl x509 -in "$cert" -noout -fingerprint -sha256)
  got=$(timeout 5 openssl s_client -connect "127.0.0.1:$port" -servername "$sni" "$@" \
    </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null) || true
  [ -n "$got" ] && [ "$got" = "$want" ]
}

record() {
  local name=$1 port=$2 sni=$3 pid=$4 var
  echo "$pid" >>"$DIR/pids"
  printf '%s\t%s\t%s\n' "$name" "$port" "$sni" >>"$DIR/servers.tsv"
  var=${name^^}
  echo "${var//-/_}_PORT=$port" >>"$DIR/servers.env"
}

# wait_up PID PORT CHECKCMD...: the process stays alive until CHECKCMD succeeds (or fails).
wait_up() {
  local pid=$1 port=$2 deadline
  shift 2
  deadline=$((SECONDS + READY_TIMEOUT_S))
  while [ $SECONDS -le $deadline ]; do
    alive "$pid" || return 1
    if "$@"; then alive "$pid" && return 0; return 1; fi
    sleep 0.1
  done
  return 1
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do alive "$1" || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

perl_bound() { grep -qx "bound $2" "$1"; }
nottls_answers() {
  local got
  # shellcheck disable=SC2016 # $1 is the inner shell's
  got=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "hello\r\n" >&3; head -c 12 <&3' _ "$1" 2>/dev/null) || true
  [ "$got" = "HTTP/1.1 400" ]
}
hang_ok() { port_busy "$1"; }
# make_long_subject_leaf NAME: a leaf (issued by the intermediate) that certtool will not make:
# a subject of eight 190-byte description attributes, and a SAN that is not UTF-8 (0xFF) and
# carries an ESC sequence next to the real one. Legal to serve, hostile to copy verbatim.
make_long_subject_leaf() {
  local name=$1 p=$PKI subj d i
  make_key "$p/$name.key"
  d=$(printf 'D%.0s' $(seq 1 190))
  subj="/CN=$name.test"
  for i in 1 2 3 4 5 6 7 8; do subj="$subj/description=$d$i"; done
  printf 'subjectAltName=DNS:%s.test,DNS:bad\xff\x1b[2J.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' \
    "$name" >"$p/$name.ext"
  {
    openssl req -new -key "$p/$name.key" -subj "$subj" -out "$p/$name.csr" &&
      openssl x509 -req -in "$p/$name.csr" -CA "$p/inter.pem" -CAkey "$p/inter.key" \
        -set_serial "$NEXT_SERIAL" -days 365 -sha256 -extfile "$p/$name.ext" -out "$p/$name.pem"
  } >"$p/$name.log" 2>&1 || die "openssl failed for leaf $name (see $p/$name.log)"
  NEXT_SERIAL=$((NEXT_SERIAL + 1))
}

refused_ok() { ! port_busy "$1"; }

# The AIA file server (plain HTTP on 127.0.0.1, files of $PKI): started before the PKI is made,
# because the leaves that name it carry its port in their caIssuers URL. Sets AIA_PORT.
start_aia_server() {
  local attempt pid log=$DIR/logs/aia.log
  for attempt in $(seq 1 10); do
    free_port
    perl -e "$PLAIN_TCP" aia "$PORT" "$PKI" </dev/null >"$log.$attempt" 2>&1 &
    pid=$!
    if wait_up "$pid" "$PORT" perl_bound "$log.$attempt" "$PORT"; then
      AIA_PORT=$PORT
      echo "$pid" >>"$DIR/pids"
      echo "AIA_PORT=$PORT" >>"$DIR/servers.env"
      return 0
    fi
    stop_pid "$pid"
  done
  die "the AIA file server failed to start; see $log*"
}

start_one() {
  local name=$1 attempt port pid log check
  log=$DIR/logs/$name.log
  server_spec "$name"
  for attempt in $(seq 1 10); do
    free_port
    port=$PORT
    case $KIND in
      s_server)
        # stdin /dev/null and all output to the log: never hold the caller's terminal/pipes.
        openssl s_server -accept "127.0.0.1:$port" -cert "$CERT" -key "$PKI/$name.key" -www \
          "${ARGS[@]}" </dev/null >>"$log" 2>&1 &
        pid=$!
        if wait_up "$pid" "$port" serves_our_cert "$port" "$SNI" "$CERT" "${CHECK[@]}"; then
          record "$name" "$port" "$SNI" "$pid"
          return 0
        fi ;;
      perl)
        perl -e "$PLAIN_TCP" "$name" "$port" </dev/null >"$log.$attempt" 2>&1 &
        pid=$!
        check=${name}_ok
        [ "$name" = nottls ] && check=nottls_answers
        if wait_up "$pid" "$port" perl_bound "$log.$attempt" "$port" && "$check" "$port"; then
          record "$name" "$port" "" "$pid"
          return 0
        fi ;;
    esac
    stop_pid "$pid"
    say "server $name did not come up as ours on 127.0.0.1:$port (attempt $attempt), retrying"
  done
  die "server $name failed to start; see $log*"
}

# --- nginx: one master for every ngx-* server -------------------------------------------------

ngx_server_block() {
  local name=$1 port=$2 p=$PKI
  cat <<EOF
  server {
    listen 127.0.0.1:$port ssl;
    server_name $name.test;
    ssl_certificate $p/$name.chain.pem;
    ssl_certificate_key $p/$name.key;
    ssl_protocols TLSv1.3;
EOF
  case $name in
    ngx-resume) echo "    ssl_session_tickets on;" ;;
    ngx-early) printf '    ssl_session_tickets on;\n    ssl_early_data on;\n    lingering_close always;\n' ;;
    ngx-early-raw) printf '    ssl_session_tickets on;\n    ssl_early_data on;\n' ;;
    ngx-early425) printf '    ssl_session_tickets on;\n    ssl_early_data on;\n'
      # shellcheck disable=SC2016 # nginx variables, not the shell's
      printf '    location = /early { if ($ssl_early_data) { return 425; } return 200 "ok\\n"; }\n' ;;
    ngx-ocsp) printf '    ssl_stapling on;\n    ssl_stapling_file %s;\n' "$p/ngx-ocsp.ocsp.der"
      echo '    add_header Strict-Transport-Security "max-age=31536000" always;' ;;
    ngx-noticket) printf '    ssl_session_tickets off;\n    ssl_session_cache off;\n' ;;
  esac
  cat <<'EOF'
    location = / { return 200 "ok\n"; }
    location = /status/204 { return 204; }
    location = /status/404 { return 404; }
    location = /status/503 { return 503; }
    location / { return 404; }
  }
EOF
}

start_nginx() {
  local names=("$@") attempt n pid ports=() ok i ngx=$DIR/nginx
  command -v nginx >/dev/null || die "nginx missing: run deploy/scripts/install-deps.sh"
  mkdir -p "$ngx/tmp"
  for attempt in $(seq 1 10); do
    ports=()
    for n in "${names[@]}"; do free_port; ports+=("$PORT"); done
    {
      # `user` matters only when started as root (workers would switch to nobody).
      if [ "$(id -u)" -eq 0 ]; then echo "user $(id -un) $(id -gn);"; fi
      cat <<EOF
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/error.log info;
events { worker_connections 256; }
http {
  access_log $ngx/access.log;
  client_body_temp_path $ngx/tmp/body;
  proxy_temp_path $ngx/tmp/proxy;
  fastcgi_temp_path $ngx/tmp/fastcgi;
  uwsgi_temp_path $ngx/tmp/uwsgi;
  scgi_temp_path $ngx/tmp/scgi;
  default_type text/plain;
EOF
      for i in "${!names[@]}"; do ngx_server_block "${names[i]}" "${ports[i]}"; done
      echo "}"
    } >"$ngx/nginx.conf"
    nginx -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" -g 'daemon off;' \
      </dev/null >>"$DIR/logs/nginx.log" 2>&1 &
    pid=$!
    ok=1
    for i in "${!names[@]}"; do
      server_spec "${names[i]}"
      if ! wait_up "$pid" "${ports[i]}" serves_our_cert "${ports[i]}" "$SNI" "$CERT"; then
        ok=0
        break
      fi
    done
    if [ $ok -eq 1 ]; then
      echo "$pid" >>"$DIR/pids"
      for i in "${!names[@]}"; do
        printf '%s\t%s\t%s\n' "${names[i]}" "${ports[i]}" "${names[i]}.test" >>"$DIR/servers.tsv"
        n=${names[i]^^}
        echo "${n//-/_}_PORT=${ports[i]}" >>"$DIR/servers.env"
      done
      return 0
    fi
    stop_pid "$pid"
    say "nginx did not serve our certificates on ${ports[*]} (attempt $attempt), retrying"
  done
  die "nginx failed to start; see $ngx/error.log and $DIR/logs/nginx.log"
}

do_start() {
  command -v certtool >/dev/null || die "certtool missing: run deploy/scripts/install-deps.sh"
  command -v openssl >/dev/null || die "openssl missing: run deploy/scripts/install-deps.sh"
  command -v perl >/dev/null || die "perl missing"
  mkdir -p "$DIR/logs"
  DIR=$(cd "$DIR" && pwd)
  PKI=$DIR/pki
  [ -s "$DIR/pids" ] && die "$DIR/pids exists: servers may still run; '$PROG stop $DIR' first"
  : >"$DIR/pids"
  : >"$DIR/servers.tsv"
  : >"$DIR/servers.env"
  trap 'do_stop >/dev/null 2>&1 || true' EXIT
  local want=("$@") n ngx=()
  [ ${#want[@]} -gt 0 ] || want=("${ALL_SERVERS[@]}")
  for n in "${want[@]}"; do server_spec "$n"; done
  mkdir -p "$PKI"
  start_aia_server
  make_pki
  for n in "${want[@]}"; do
    server_spec "$n"
    if [ "$KIND" = nginx ]; then ngx+=("$n"); else start_one "$n"; fi
  done
  [ ${#ngx[@]} -eq 0 ] || start_nginx "${ngx[@]}"
  trap - EXIT
  say "started ${#want[@]} servers in $DIR"
}

# A recorded pid is signalled only while it still is one of our server programs.
is_our_server() {
  [ -r "/proc/$1/cmdline" ] &&
    tr '\0' ' ' <"/proc/$1/cmdline" | grep -qE '^(openssl s_server |perl -e |nginx: master process )'
}

do_stop() {
  [ -d "$DIR" ] || die "no such directory: $DIR"
  [ -f "$DIR/pids" ] || return 0
  local pid pids=() left
  while read -r pid; do
    [ -n "$pid" ] || continue
    if is_our_server "$pid"; then pids+=("$pid"); kill "$pid" 2>/dev/null || true; fi
  done <"$DIR/pids"
  for _ in $(seq 1 100); do
    left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    pids=("${left[@]}")
    [ ${#pids[@]} -eq 0 ] && break
    sleep 0.05
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$DIR/pids"
}

case ${1:-} in
  start) [ $# -ge 2 ] || usage; DIR=$2; shift 2; do_start "$@" ;;
  stop) [ $# -eq 2 ] || usage; DIR=$2; do_stop ;;
  list) printf '%s\n' "${ALL_SERVERS[@]}" ;;
  *) usage ;;
esac
