#!/usr/bin/env bash
# ray_phase_ab.sh -- the ray phase alone, two versions of setup_scripts/ray.sh against each other, on
# a running local cluster (head + worker-0 + worker-1, launched beforehand with `styx launch`).
#
#   bench/ray_phase_ab.sh STACK OLD_REV [ROUNDS]     (run from the repo root; default 3 rounds)
#
# Each round, for OLD_REV's ray.sh and then the working tree's (the order flips every round): Ray is
# stopped on every node and its record removed, then the head's ray phase runs (`ray start --head`
# and its checks), then both workers' at once (join + checks), as in a launch. Printed per run: the
# phase's wall seconds and the CPU seconds of its own processes (the `ray` CLI, the checks; not the
# daemons it leaves running), measured in the node. The program travels on stdin (lib.sh + ray.sh);
# the token is the node's own token file, read in the node. AB_COLD_PYC=1 deletes the venv's bytecode
# before each run (a launch's first `ray start` finds none: uv installs without compiling).
set -euo pipefail
stack=${1:?usage: ray_phase_ab.sh STACK OLD_REV [ROUNDS]}
old=${2:?usage: ray_phase_ab.sh STACK OLD_REV [ROUNDS]}
rounds=${3:-3}
# AB_COLD_PYC=1: the venv's bytecode (__pycache__) deleted before every run, as on a node's first start
cold=${AB_COLD_PYC:-0}
[[ $cold == [01] ]] || { echo "AB_COLD_PYC must be 0 or 1, got '$cold'" >&2; exit 2; }
styx=${STYX_BIN:-.venv/bin/styx}
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

git show "$old:setup_scripts/ray.sh" >"$tmp/ray.old"
cp setup_scripts/ray.sh "$tmp/ray.new"
head_ip=$("$styx" exec -s "$stack" head -- hostname -I | awk '{print $1}')

# node_program ROLE VARIANT: what runs in the node (on stdin)
node_program() {
  printf 'export STYX_PHASE=ray STYX_RAY_ROLE=%q STYX_RAY_HEAD_IP=%q\n' "$1" "$head_ip"
  # shellcheck disable=SC2016 # for the node's shell
  printf '%s\n' 'STYX_RAY_AUTH_TOKEN=$(cat /etc/styx/ray-auth-token); export STYX_RAY_AUTH_TOKEN'
  printf '%s\n' "cat >/tmp/styx-ray-ab.sh <<'STYX_AB_EOF'"
  cat setup_scripts/lib.sh "$tmp/ray.$2"
  printf '%s\n' "STYX_AB_EOF"
  # shellcheck disable=SC2016 # for the node's shell
  printf '%s\n' 's=$EPOCHREALTIME; r=$(bash /tmp/styx-ray-ab.sh 2>/dev/null | tail -1); e=$EPOCHREALTIME' \
    'times >/tmp/styx-ray-ab.times' \
    'cpu=$(tail -1 /tmp/styx-ray-ab.times | awk '"'"'{for (i = 1; i <= 2; i++) {split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2]}; print t}'"'"')' \
    'printf "%s %.2f %s | %s\n" "$(hostname)" "$(python3 -c "print($e - $s)")" "$cpu" "$r"'
}

stop_all() {
  local n
  for n in head worker-0 worker-1; do
    "$styx" exec -s "$stack" "$n" -- bash -c \
      ". /etc/styx/ray-auth.env 2>/dev/null; /opt/styx/venv/bin/ray stop --force >/dev/null 2>&1; rm -f /var/lib/styx/ray.started
      [ $cold != 1 ] || find /opt/styx/venv -name __pycache__ -prune -exec rm -rf {} +" &
  done
  wait
}

run_variant() {
  local v=$1 n
  stop_all
  printf '%s head: ' "$v"
  node_program head "$v" | "$styx" exec -s "$stack" head -- bash -s
  for n in worker-0 worker-1; do
    node_program worker "$v" | "$styx" exec -s "$stack" "$n" -- bash -s >"$tmp/$n.out" &
  done
  wait
  for n in worker-0 worker-1; do printf '%s %s: %s\n' "$v" "$n" "$(cat "$tmp/$n.out")"; done
}

echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) old=$(git rev-parse --short "$old") new=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- setup_scripts/ray.sh || echo +dirty) cold_pyc=$cold"
echo "# variant node: host wall_s cpu_s | result"
for ((i = 1; i <= rounds; i++)); do
  if ((i % 2)); then order=(old new); else order=(new old); fi
  for v in "${order[@]}"; do run_variant "$v"; done
  echo "# round $i done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
done
