#!/usr/bin/env bash
# test_bench_suite.sh - bench/suite.sh --selftest against this build: the benchmark
# suite's tools are correct, not fast (no figure is asserted):
#   - bench-limit against the suite's own nginx: sequential, concurrent and paced probes all
#     succeed with the chain and name verified (ECDSA P-256 and RSA-2048 chains, TLS 1.3 and
#     a TLS 1.2 priority), the paced mode never starts more than its rate allows, and a
#     wrong name or an unknown CA fails every probe with the reason;
#   - bench-blackbox-drive refuses a URL off loopback; the suite's agent config passes
#     tlsprobe-agent --check;
#   - one short round each of the limit, the agent (pushing to a real HTTPS collector, read
#     back with `report --format json`) and, if prometheus-blackbox-exporter is installed
#     (install-deps.sh --bench), the exporter gives a complete record; the Markdown and JSON
#     results render and parse.
# Needs TP_BUILD_DIR (set by ctest) with bench-limit and bench-blackbox-drive built.
set -euo pipefail
: "${TP_BUILD_DIR:?set TP_BUILD_DIR to the build tree}"
TP_BENCH_BUILD=$TP_BUILD_DIR exec bash "$(dirname "$0")/../../bench/suite.sh" --selftest
