#!/usr/bin/env bash
# Failover under load (issue 14): three nodes take checkouts while the PostgreSQL
# primary is killed (`pg_ctl -m immediate stop`) and the synchronous standby is
# promoted, RUNS times in a row, each on a new cluster. Prints, per run, the
# orders acknowledged and found in the new primary, the answers seen (201, 503,
# the unknown-outcome 500) and how long after the promotion every node took
# checkouts again. The assertions (no acknowledged order lost, stock and verify
# consistent, only allowed answers) are the test's: tests/api/failover.rs.
#
#   RUNS=5 bash benches/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FAILOVER_RUNS=${RUNS:-5} cargo nextest run -p orderflow --test api \
  -E 'test(=failover::three_nodes_survive_the_loss_of_the_primary_without_losing_an_acknowledged_order)' \
  --no-capture 2>&1 | grep -E '^failover run|PASS|FAIL'
