#!/usr/bin/env bash
# styx phase: ray -- install a pinned Ray into the styx venv and start the
# head or join a worker; leaves a matching running Ray alone.
#
# Environment:
#   STYX_RAY_VERSION            pinned Ray version (default 2.60.0);
#                               `ray[default]==VERSION` is pip-installed into
#                               the venv when the installed one differs
#   STYX_RAY_ROLE               head | worker (default: STYX_NODE_ROLE when it
#                               is one of those, else head)
#   STYX_RAY_HEAD_IP            worker: the head's private address (required)
#   STYX_NODE_IP                this node's private address for
#                               --node-ip-address (default: first address of
#                               `hostname -I`)
#   STYX_RAY_PORT               GCS port (default 6379)
#   STYX_RAY_DASHBOARD_HOST     dashboard bind address (default 127.0.0.1:
#                               reach it through an SSH tunnel)
#   STYX_RAY_DASHBOARD_PORT     default 8265
#   STYX_RAY_CLIENT_PORT        Ray client server port (default 10001)
#   STYX_RAY_OBJECT_STORE_BYTES optional --object-store-memory
#   STYX_RAY_NUM_CPUS           optional --num-cpus
#   STYX_RAY_NUM_GPUS           optional --num-gpus
#   STYX_RAY_EXTRA_ARGS         extra `ray start` arguments, one per line: each
#                               line is one argument, exactly as written (no
#                               word splitting: `--resources={"custom": 1}`)
#   STYX_RAY_USAGE_STATS        0 (default: RAY_USAGE_STATS_ENABLED=0 for every
#                               ray command, --disable-usage-stats) | 1
#   STYX_RAY_START_TIMEOUT      seconds for `ray start`, then as long again at
#                               most for this node (head or worker) to be alive
#                               in the GCS (default 120); a worker waits as long
#                               at most for its head's generation (below)
#   STYX_RAY_HEAD_GENERATION    worker: the generation of the head's ray phase
#                               it must join (setup.ray.worker_start with_head:
#                               the worker's phase runs beside the head's). It
#                               joins once the head's GCS holds that generation
#                               (the head puts its own, from the runner's record
#                               $STYX_STATE_DIR/generations/ray, into the GCS's
#                               key-value store, namespace styx, key
#                               ray_generation, once it is alive), never a GCS
#                               that is about to be restarted; empty: join
#                               whatever answers (after_head: the head's phase
#                               has finished)
#   STYX_VENV_DIR               venv holding Ray (default /opt/styx/venv;
#                               created by the python_env phase)
#   STYX_PIP_INDEX_URL          optional pip index (mirror)
#   STYX_PIP_EXTRA_INDEX_URL    optional extra pip index
#   STYX_CONDA_ENV_DIR          optional conda environment (the conda phase's):
#                               its bin/ goes on Ray's PATH after the venv's
#   STYX_ENV_FILE               sourced before `ray start` so Ray tasks see the
#                               cluster env vars (default /etc/styx/env.sh;
#                               contents never logged)
#   STYX_RAY_AUTH               token (default) | none: Ray's token
#                               authentication (RAY_AUTH_MODE=token)
#   STYX_RAY_AUTH_TOKEN         the cluster's token (secret: arrives on the
#                               phase's stdin; written to STYX_RAY_TOKEN_FILE,
#                               0600, owned by the user Ray runs as; never
#                               logged or put on a command line)
#   STYX_RAY_TOKEN_FILE         default /etc/styx/ray-auth-token
#   STYX_RAY_AUTH_ENV           the clients' settings (default /etc/styx/ray-auth.env)
#   STYX_RAY_AUTH_PROFILE       login shells read them (default
#                               /etc/profile.d/styx-ray-auth.sh)
#   STYX_RAY_CONTAINER          setup.ray.container: the container (the
#                               ray_container phase's) every ray command runs
#                               in via `docker exec`; Ray comes from its image
#                               (its version must be STYX_RAY_VERSION), nothing
#                               is pip-installed (default: none, Ray on the host)
#   STYX_CONTAINER_ENV_FILE     sourced first inside the container (default
#                               /etc/styx/ray-container.env)
#
# With token auth, Ray (and every client on the node: the `ray`/`python`
# wrappers and login shells read /etc/styx/ray-auth.env) runs with
# RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH=STYX_RAY_TOKEN_FILE; requests
# without the token to the GCS, the dashboard or the Jobs API are refused.
#
# Ray's processes (raylet, workers, the Jobs API's drivers) inherit the
# environment of `ray start`: the env file's variables, VIRTUAL_ENV and PATH
# with $STYX_VENV_DIR/bin first (then the conda env's bin/), so a job's
# entrypoint `python train.py` runs the venv's python, which has Ray.
#
# Ray is left running untouched when it runs with the same version, role,
# addresses, start arguments and env file hash as recorded at start time in
# $STYX_STATE_DIR/ray.started; otherwise `ray stop --force` + `ray start`.
# Daemons are started with stdin from /dev/null and output to the phase log,
# so nothing holds the SSH session open.
# stdout: `styx ray: ok|skipped: ...`
: "${STYX_PHASE:=ray}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_RAY_VERSION=${STYX_RAY_VERSION:-2.60.0}
case ${STYX_NODE_ROLE:-} in head | worker) _styx_default_role=$STYX_NODE_ROLE ;; *) _styx_default_role="head" ;; esac
STYX_RAY_ROLE=${STYX_RAY_ROLE:-$_styx_default_role}
STYX_RAY_HEAD_IP=${STYX_RAY_HEAD_IP:-}
STYX_NODE_IP=${STYX_NODE_IP:-}
STYX_RAY_PORT=${STYX_RAY_PORT:-6379}
STYX_RAY_DASHBOARD_HOST=${STYX_RAY_DASHBOARD_HOST:-127.0.0.1}
STYX_RAY_DASHBOARD_PORT=${STYX_RAY_DASHBOARD_PORT:-8265}
STYX_RAY_CLIENT_PORT=${STYX_RAY_CLIENT_PORT:-10001}
STYX_RAY_OBJECT_STORE_BYTES=${STYX_RAY_OBJECT_STORE_BYTES:-}
STYX_RAY_NUM_CPUS=${STYX_RAY_NUM_CPUS:-}
STYX_RAY_NUM_GPUS=${STYX_RAY_NUM_GPUS:-}
STYX_RAY_EXTRA_ARGS=${STYX_RAY_EXTRA_ARGS:-}
STYX_RAY_USAGE_STATS=${STYX_RAY_USAGE_STATS:-0}
STYX_RAY_START_TIMEOUT=${STYX_RAY_START_TIMEOUT:-120}
STYX_RAY_HEAD_GENERATION=${STYX_RAY_HEAD_GENERATION:-}
STYX_VENV_DIR=${STYX_VENV_DIR:-/opt/styx/venv}
STYX_PIP_INDEX_URL=${STYX_PIP_INDEX_URL:-}
STYX_PIP_EXTRA_INDEX_URL=${STYX_PIP_EXTRA_INDEX_URL:-}
STYX_CONDA_ENV_DIR=${STYX_CONDA_ENV_DIR:-}
STYX_ENV_FILE=${STYX_ENV_FILE:-/etc/styx/env.sh}
STYX_RAY_AUTH=${STYX_RAY_AUTH:-token}
STYX_RAY_TOKEN_FILE=${STYX_RAY_TOKEN_FILE:-/etc/styx/ray-auth-token}
RAY_AUTH_ENV=${STYX_RAY_AUTH_ENV:-/etc/styx/ray-auth.env}
RAY_AUTH_PROFILE=${STYX_RAY_AUTH_PROFILE:-/etc/profile.d/styx-ray-auth.sh}
RAY_STATE_FILE="$STYX_STATE_DIR/ray.started"
# the token stays in this shell only until it is in its file (setup_auth)
_styx_ray_token=${STYX_RAY_AUTH_TOKEN:-}
unset STYX_RAY_AUTH_TOKEN

if [[ $STYX_RAY_USAGE_STATS != 1 ]]; then
  export RAY_USAGE_STATS_ENABLED=0
fi

STYX_RAY_CONTAINER=${STYX_RAY_CONTAINER:-}
STYX_CONTAINER_ENV_FILE=${STYX_CONTAINER_ENV_FILE:-/etc/styx/ray-container.env}
RAY="$STYX_VENV_DIR/bin/ray"
VPY="$STYX_VENV_DIR/bin/python"
CHANGES=()

# `docker exec` into the Ray container: PROG (ray | python, the image's, from
# the container env file) with ARGS; the auth and usage settings of this
# shell go along by name (their values never on a command line)
in_container() {
  local prog=$1
  shift
  local -a pass=()
  local v
  for v in RAY_AUTH_MODE RAY_AUTH_TOKEN_PATH RAY_USAGE_STATS_ENABLED; do
    [[ -z ${!v:-} ]] || pass+=(-e "$v")
  done
  # shellcheck disable=SC2016 # for the container's shell
  styx_sudo env RAY_AUTH_MODE="${RAY_AUTH_MODE:-}" RAY_AUTH_TOKEN_PATH="${RAY_AUTH_TOKEN_PATH:-}" \
    RAY_USAGE_STATS_ENABLED="${RAY_USAGE_STATS_ENABLED:-}" docker exec "${pass[@]}" "$STYX_RAY_CONTAINER" \
    bash -c '[ ! -r "$1" ] || . "$1"; shift; exec "$@"' styx "$STYX_CONTAINER_ENV_FILE" "$prog" "$@"
}

# the ray CLI and the Python that has Ray: the venv's, or the container's
ray_cli() {
  if [[ -n $STYX_RAY_CONTAINER ]]; then in_container ray "$@"; else "$RAY" "$@"; fi
}
ray_py() {
  if [[ -n $STYX_RAY_CONTAINER ]]; then in_container python "$@"; else "$VPY" "$@"; fi
}
# ray_py_within SECONDS ARGS...: ray_py bounded by `timeout`
ray_py_within() {
  local t=$1
  shift
  if [[ -n $STYX_RAY_CONTAINER ]]; then in_container timeout "$t" python "$@"; else timeout "$t" "$VPY" "$@"; fi
}

# The GCS, asked directly (about a third of a driver's `ray.init()` + `ray.nodes()`: no core worker is
# started); token auth included. alive(ADDR): the addresses of the nodes the GCS at ADDR lists alive.
# put_generation(ADDR, GEN): the head records the generation of its ray phase in the GCS's key-value
# store. await_head(ADDR, GEN, WAIT_S): a worker waits (polled every 0.5 s, at most WAIT_S) until the
# GCS at ADDR holds generation GEN: the head's ray phase of this launch has its Ray alive, so the worker
# never joins a GCS the head is about to restart. Returns "ok"; or "absent" when the GCS answers without
# a generation all along (a Ray started outside styx: joined as before); exits 74 when no GCS answered,
# 75 when it held another generation all along (the head's ray phase has not finished for this launch).
ALIVE_PY='
import sys, time
KEY, NS = b"ray_generation", b"styx"
def gcs(addr):
    from ray._raylet import GcsClient
    return GcsClient(address=addr)
def alive(addr):
    from ray.core.generated.gcs_pb2 import GcsNodeInfo
    nodes = gcs(addr).get_all_node_info(timeout=30).values()
    return [n.node_manager_address for n in nodes if n.state == GcsNodeInfo.ALIVE]
def put_generation(addr, gen):
    gcs(addr).internal_kv_put(KEY, gen.encode(), True, NS, timeout=30)
def await_head(addr, want, wait_s):
    deadline, said, have = time.monotonic() + wait_s, None, False
    while True:
        try:
            v = gcs(addr).internal_kv_get(KEY, NS, timeout=10)
            have = v.decode() if v is not None else ""
            if have == want:
                print(f"styx: the head at {addr} runs generation {want[:12]} (this launch): joining", flush=True)
                return "ok"
            shown = have[:12] or "(none)"
            note = f"the head at {addr} runs generation {shown}, waiting for {want[:12]}"
        except Exception as e:
            note = f"the GCS at {addr} does not answer yet: {e}"
        if note != said:
            print("styx: " + note, flush=True)
            said = note
        if time.monotonic() >= deadline:
            if have is False:
                sys.exit(74)
            if have == "":
                print(f"styx: warning: the head at {addr} records no generation (a Ray started outside styx?): joining it", flush=True)
                return "absent"
            sys.exit(75)
        time.sleep(0.5)
'
# NODES_PY ADDR [PUT_GEN]: the alive node addresses of the cluster at ADDR, one per line; with PUT_GEN
# (the head, left running) its generation recorded too.
NODES_PY="$ALIVE_PY"'
nodes = alive(sys.argv[1])
for a in nodes:
    print(a)
if len(sys.argv) > 2 and sys.argv[2]:
    put_generation(sys.argv[1], sys.argv[2])
'
# HEAD_PY ADDR IP GEN WAIT_S: a worker that may be left running: await_head, then whether node IP is
# alive in the GCS at ADDR (exit 0: alive; 1: not alive; 74, 75: await_head's).
HEAD_PY="$ALIVE_PY"'
await_head(sys.argv[1], sys.argv[3], float(sys.argv[4]))
sys.exit(0 if sys.argv[2] in alive(sys.argv[1]) else 1)
'
# START_PY ADDR IP WAIT_S PUT_GEN WANT_GEN ARGS...: a worker with WANT_GEN waits for its head (await_head,
# at most WAIT_S), then `ray start ARGS`, then until node IP is alive in the GCS at ADDR (polled every
# 0.5 s, at most WAIT_S; exit 3 when it is not by then); the head then records PUT_GEN. In one Python:
# the CLI's import of Ray (1-2 CPU s here) serves the checks too, instead of a second Python importing
# Ray again after `ray start` (and a worker's import overlaps the head's start).
START_PY="$ALIVE_PY"'
addr, ip, wait_s, put_gen, want_gen, args = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6:]
from ray.scripts.scripts import cli
if want_gen:
    await_head(addr, want_gen, wait_s)
try:
    cli.main(args=["start", *args], prog_name="ray")
except SystemExit as e:  # click ends with sys.exit(0) on success
    if e.code not in (0, None):
        raise
deadline = time.monotonic() + wait_s
while True:
    try:
        if ip in alive(addr):
            print(f"styx: node {ip} alive in the GCS at {addr}", flush=True)
            if put_gen:
                put_generation(addr, put_gen)
                print(f"styx: generation {put_gen[:12]} recorded in the GCS at {addr}", flush=True)
            break
    except Exception as e:
        print(f"styx: the GCS at {addr} does not answer yet: {e}", flush=True)
    if time.monotonic() >= deadline:
        sys.exit(3)
    time.sleep(0.5)
'

installed_version() {
  ray_py -c 'from importlib.metadata import version; print(version("ray"))' 2>/dev/null || true
}

default_extras_present() {
  ray_py -c 'from importlib.metadata import version; [version(p) for p in ("aiohttp", "aiohttp_cors", "opencensus", "prometheus_client")]' >/dev/null 2>&1
}

ensure_ray_installed() {
  local have owner
  local -a env_args=()
  if [[ -n $STYX_RAY_CONTAINER ]]; then # Ray comes from the image
    have=$(installed_version)
    [[ $have == "$STYX_RAY_VERSION" ]] ||
      styx_die "the image of container $STYX_RAY_CONTAINER has ray '${have:-none}', setup.ray.version is $STYX_RAY_VERSION (use an image with that Ray, or set setup.ray.version to the image's)"
    styx_log INFO "ray $have from the image of container $STYX_RAY_CONTAINER"
    return 0
  fi
  [[ -x $VPY ]] || styx_die "no Python venv at $STYX_VENV_DIR: run the python_env phase first (STYX_VENV_DIR)"
  have=$(installed_version)
  if [[ $have == "$STYX_RAY_VERSION" ]] && default_extras_present; then
    styx_log INFO "ray $have (with default extras) already installed in $STYX_VENV_DIR"
    return 0
  fi
  styx_log INFO "installing ray[default]==$STYX_RAY_VERSION into $STYX_VENV_DIR (have: ${have:-none})"
  owner=$(stat -c '%U' -- "$STYX_VENV_DIR")
  [[ -z $STYX_PIP_INDEX_URL ]] || env_args+=(PIP_INDEX_URL="$STYX_PIP_INDEX_URL")
  [[ -z $STYX_PIP_EXTRA_INDEX_URL ]] || env_args+=(PIP_EXTRA_INDEX_URL="$STYX_PIP_EXTRA_INDEX_URL")
  if [[ -x $STYX_VENV_DIR/bin/pip || -n $("$VPY" -m pip --version 2>/dev/null) ]]; then
    styx_run styx_as_user "$owner" env "${env_args[@]}" "$VPY" -m pip install --no-input \
      --disable-pip-version-check "ray[default]==$STYX_RAY_VERSION"
  elif styx_have uv; then
    styx_run styx_as_user "$owner" env "${env_args[@]}" uv pip install --python "$VPY" "ray[default]==$STYX_RAY_VERSION"
  else
    styx_die "$STYX_VENV_DIR has neither pip nor uv available"
  fi
  have=$(installed_version)
  [[ $have == "$STYX_RAY_VERSION" ]] || styx_die "pip finished but the venv has ray '${have:-none}', want $STYX_RAY_VERSION"
  CHANGES+=("installed ray $STYX_RAY_VERSION")
}

detect_node_ip() {
  local ip=""
  if styx_have hostname; then
    ip=$(hostname -I 2>/dev/null | awk '{print $1}') || ip=""
  fi
  if [[ -z $ip ]] && styx_have ip; then
    ip=$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -nE 's/.* src ([0-9.]+).*/\1/p') || ip=""
  fi
  [[ -n $ip ]] || styx_die "cannot determine this node's address: set STYX_NODE_IP"
  printf '%s\n' "$ip"
}

# scan_ray_processes: one pass over the node's processes (a `tr` per process: do it once) ->
# RAY_PROCS_LOCAL=1 when a raylet (and on the head a gcs_server) runs, RAY_PROCS_ANY=1 when any
# process of Ray runs (a half-dead earlier start included)
scan_ray_processes() {
  local f cmd raylet=0 gcs=0
  RAY_PROCS_ANY=0
  for f in "$STYX_PROC_ROOT"/[0-9]*/cmdline; do
    [[ -r $f ]] || continue
    cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
    case $cmd in
      */raylet/raylet* | raylet\ *) raylet=1 RAY_PROCS_ANY=1 ;;
      */gcs/gcs_server* | gcs_server\ *) gcs=1 RAY_PROCS_ANY=1 ;;
      *raylet* | *gcs_server* | *ray/dashboard* | *ray/_private* | *ray/autoscaler* | ray::* | *default_worker.py*)
        RAY_PROCS_ANY=1 ;;
    esac
  done
  RAY_PROCS_LOCAL=0
  if [[ $raylet -eq 1 && ($STYX_RAY_ROLE != head || $gcs -eq 1) ]]; then RAY_PROCS_LOCAL=1; fi
}

# true when a raylet (and on the head a gcs_server) runs on this node
local_ray_processes() {
  scan_ray_processes
  [[ $RAY_PROCS_LOCAL -eq 1 ]]
}

env_file_hash() {
  if styx_sudo test -f "$STYX_ENV_FILE"; then
    styx_sha256 "$STYX_ENV_FILE"
  else
    echo none
  fi
}

# what goes first on the PATH of Ray's processes: the venv (it holds Ray), then
# the conda env's commands; in a container: the image's (its env file), and
# the id of the container's image
ray_path_prefix() {
  if [[ -n $STYX_RAY_CONTAINER ]]; then
    printf 'container:%s\n' "$(styx_sudo docker inspect --format '{{.Image}}' "$STYX_RAY_CONTAINER" 2>/dev/null || echo none)"
    return 0
  fi
  local p="$STYX_VENV_DIR/bin"
  [[ -z $STYX_CONDA_ENV_DIR ]] || p+=":$STYX_CONDA_ENV_DIR/bin"
  printf '%s\n' "$p"
}

# ray_start_and_wait ADDR IP PUT_GEN WANT_GEN ARGS...: a worker with WANT_GEN
# first waits for its head's generation; then `ray start ARGS` with the
# cluster env file sourced and the cluster's Python first on PATH (in a
# subshell: the values never reach this shell, the log or a command line),
# then until node IP is alive in the GCS at ADDR (START_PY: exit 3 when not
# within STYX_RAY_START_TIMEOUT), and the head records PUT_GEN. A worker's
# `ray start` retries an unreachable head for a long time: the whole is bounded
# by three times STYX_RAY_START_TIMEOUT (the head, the start, the wait)
ray_start_and_wait() {
  local prefix addr=$1 ip=$2 put=$3 want=$4 limit=$((3 * STYX_RAY_START_TIMEOUT))
  shift 4
  if [[ -n $STYX_RAY_CONTAINER ]]; then
    # inside: the container env file (the image's Ray first on PATH), then the
    # cluster env file (mounted from the host's /etc/styx), then `ray start`
    # shellcheck disable=SC2016 # for the container's shell
    in_container bash -c '[ ! -r "$1" ] || . "$1"
      if [ -r "$2" ]; then set -a; . "$2"; set +a; fi
      [ -n "$RAY_USAGE_STATS_ENABLED" ] || unset RAY_USAGE_STATS_ENABLED
      [ -n "$RAY_AUTH_MODE" ] || unset RAY_AUTH_MODE RAY_AUTH_TOKEN_PATH
      t=$3 py=$4; shift 4; exec timeout --kill-after=10 "$t" python -c "$py" "$@"' styx-ray-start \
      "$STYX_CONTAINER_ENV_FILE" "$STYX_ENV_FILE" "$limit" "$START_PY" "$addr" "$ip" "$STYX_RAY_START_TIMEOUT" \
      "$put" "$want" "$@"
    return
  fi
  prefix=$(ray_path_prefix)
  (
    if [[ -r $STYX_ENV_FILE ]]; then
      set -a
      # shellcheck disable=SC1090
      . "$STYX_ENV_FILE"
      set +a
    elif styx_sudo test -f "$STYX_ENV_FILE"; then
      set -a
      # shellcheck disable=SC1090
      . <(styx_sudo cat -- "$STYX_ENV_FILE")
      set +a
    fi
    [[ $STYX_RAY_USAGE_STATS == 1 ]] || export RAY_USAGE_STATS_ENABLED=0
    # after the env file, so the cluster's python wins over a PATH set there
    export PATH="$prefix:${PATH:-/usr/local/bin:/usr/bin:/bin}" VIRTUAL_ENV="$STYX_VENV_DIR"
    exec timeout --kill-after=10 "$limit" "$VPY" -c "$START_PY" "$addr" "$ip" "$STYX_RAY_START_TIMEOUT" \
      "$put" "$want" "$@"
  )
}

# the token file and the client settings (token auth), or none of them
setup_auth() {
  local me
  me=$(id -un)
  case $STYX_RAY_AUTH in
    token)
      [[ -n $_styx_ray_token ]] || styx_die "setup.ray.auth is token but the phase got no token (STYX_RAY_AUTH_TOKEN)"
      styx_write_file_if_changed "$STYX_RAY_TOKEN_FILE" 0600 "$me" < <(printf '%s\n' "$_styx_ray_token")
      [[ $STYX_LAST_CHANGED -eq 0 ]] || CHANGES+=("wrote the ray auth token")
      printf '%s\n' "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$STYX_RAY_TOKEN_FILE" |
        styx_write_file_if_changed "$RAY_AUTH_ENV" 0644 root
      printf '%s\n' "[ ! -r $RAY_AUTH_ENV ] || . $RAY_AUTH_ENV" | styx_write_file_if_changed "$RAY_AUTH_PROFILE" 0644 root
      export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$STYX_RAY_TOKEN_FILE"
      ;;
    none)
      styx_sudo rm -f -- "$STYX_RAY_TOKEN_FILE" "$RAY_AUTH_ENV" "$RAY_AUTH_PROFILE"
      unset RAY_AUTH_MODE RAY_AUTH_TOKEN_PATH RAY_AUTH_TOKEN
      ;;
    *) styx_die "STYX_RAY_AUTH must be token or none, got '$STYX_RAY_AUTH'" ;;
  esac
  _styx_ray_token=""
}

token_hash() {
  if [[ $STYX_RAY_AUTH == token ]]; then
    styx_sha256 "$STYX_RAY_TOKEN_FILE"
  else
    echo none
  fi
}

# node_alive_in ADDR IP [PUT_GEN]: true when the GCS at ADDR lists node IP
# alive (one look); the head, left running, records PUT_GEN there too
node_alive_in() {
  local out
  styx_mktemp_var out
  styx_try_capture "$out" ray_py_within 60 -c "$NODES_PY" "$1" "${3:-}" && grep -qxF -- "$2" "$out"
}

# the generation of this ray phase on this node (the runner records it when
# the phase starts), or nothing (run by hand)
own_generation() {
  local f="$STYX_STATE_DIR/generations/ray"
  if styx_sudo test -f "$f"; then styx_sudo cat -- "$f"; fi
}

# a worker's wait for its head's generation failed (await_head's exit RC,
# or timeout's 124): the reason, as an error
head_wait_failed() {
  case $1 in
    74 | 124) styx_die "the head's GCS at $2 did not answer within ${STYX_RAY_START_TIMEOUT}s (see the head's ray phase)" ;;
    75) styx_die "the head at $2 did not start Ray for this launch within ${STYX_RAY_START_TIMEOUT}s: its GCS holds another generation of the head's ray phase (see the head's ray phase; an up that leaves the head's ray phase out cannot start workers beside it: launch the whole cluster, or set setup.ray.worker_start: after_head)" ;;
  esac
}

main() {
  local node_ip addr fingerprint env_hash args_hash recorded="" rc=0 not_alive put="" want=""
  local -a args extra
  case $STYX_RAY_ROLE in head | worker) ;; *) styx_die "STYX_RAY_ROLE must be head or worker, got '$STYX_RAY_ROLE'" ;; esac
  node_ip=${STYX_NODE_IP:-$(detect_node_ip)}
  if [[ $STYX_RAY_ROLE == head ]]; then
    addr="$node_ip:$STYX_RAY_PORT"
    args=(--head --port="$STYX_RAY_PORT" --node-ip-address="$node_ip"
      --dashboard-host="$STYX_RAY_DASHBOARD_HOST" --dashboard-port="$STYX_RAY_DASHBOARD_PORT"
      --ray-client-server-port="$STYX_RAY_CLIENT_PORT")
  else
    [[ -n $STYX_RAY_HEAD_IP ]] || styx_die "STYX_RAY_HEAD_IP is required for a ray worker"
    addr="$STYX_RAY_HEAD_IP:$STYX_RAY_PORT"
    args=(--address="$addr" --node-ip-address="$node_ip")
    want=$STYX_RAY_HEAD_GENERATION
  fi
  [[ -z $STYX_RAY_OBJECT_STORE_BYTES ]] || args+=(--object-store-memory="$STYX_RAY_OBJECT_STORE_BYTES")
  [[ -z $STYX_RAY_NUM_CPUS ]] || args+=(--num-cpus="$STYX_RAY_NUM_CPUS")
  [[ -z $STYX_RAY_NUM_GPUS ]] || args+=(--num-gpus="$STYX_RAY_NUM_GPUS")
  [[ $STYX_RAY_USAGE_STATS == 1 ]] || args+=(--disable-usage-stats)
  # one argument per line, each exactly as written
  mapfile -t extra < <(printf '%s' "$STYX_RAY_EXTRA_ARGS")
  args+=("${extra[@]}")

  ensure_ray_installed
  setup_auth

  env_hash=$(env_file_hash)
  args_hash=$(printf '%s\n' "${args[@]}" | sha256sum | awk '{print $1}')
  fingerprint=$(printf '%s\n' "version=$STYX_RAY_VERSION" "role=$STYX_RAY_ROLE" "address=$addr" \
    "node_ip=$node_ip" "env_sha256=$env_hash" "args_sha256=$args_hash" "path=$(ray_path_prefix)" \
    "auth=$STYX_RAY_AUTH" "token_sha256=$(token_hash)")
  if styx_sudo test -f "$RAY_STATE_FILE"; then
    recorded=$(styx_sudo cat -- "$RAY_STATE_FILE")
  fi

  [[ $STYX_RAY_ROLE != head ]] || put=$(own_generation)

  scan_ray_processes
  # alive in the cluster at addr (not just "some Ray answers there"): a worker whose head restarted (a new
  # GCS, which does not know it) joins again instead of being left with a raylet about to exit. A worker
  # started beside its head first waits for the head of this launch: the GCS it sees may be about to restart.
  if [[ ${#CHANGES[@]} -eq 0 && $recorded == "$fingerprint" && $RAY_PROCS_LOCAL -eq 1 ]]; then
    if [[ -n $want ]]; then
      STYX_TRY_LABEL="wait for the head's generation ${want:0:12}, then look for node $node_ip" \
        styx_try ray_py_within $((STYX_RAY_START_TIMEOUT + 60)) -c "$HEAD_PY" "$addr" "$node_ip" "$want" \
        "$STYX_RAY_START_TIMEOUT" || rc=$?
      head_wait_failed "$rc" "$addr"
      want="" # waited for it: the start below joins at once
      if [[ $rc -eq 0 ]]; then
        styx_result skipped "ray $STYX_RAY_VERSION already running (head $addr)"
        return 0
      fi
      rc=0
    elif node_alive_in "$addr" "$node_ip" "$put"; then
      styx_result skipped "ray $STYX_RAY_VERSION already running (head $addr)"
      return 0
    fi
  fi
  if [[ -n $recorded && $recorded != "$fingerprint" ]]; then
    styx_log INFO "ray configuration changed since it was started: restarting"
  fi

  # `ray stop` costs a Python start of the ray CLI (seconds): only when something of Ray runs
  if [[ $RAY_PROCS_ANY -eq 1 ]]; then
    styx_log INFO "stopping the ray running on this node"
    styx_run ray_cli stop --force
  else
    styx_log INFO "no ray process on this node: nothing to stop"
  fi
  styx_sudo rm -f -- "$RAY_STATE_FILE"
  styx_log INFO "ray start ${args[*]@Q}"
  if [[ $STYX_RAY_ROLE == head ]]; then
    not_alive="ray head at $addr not ready (its node $node_ip not alive in its GCS)"
  else
    not_alive="node $node_ip did not appear in the ray cluster at $addr"
  fi
  # ready: the GCS at addr lists this node alive (the head: its GCS answers and lists the head)
  styx_try ray_start_and_wait "$addr" "$node_ip" "$put" "$want" "${args[@]}" || rc=$?
  [[ $rc -ne 3 ]] || styx_die "$not_alive within ${STYX_RAY_START_TIMEOUT}s (see $(styx_log_file))"
  [[ -z $want || $rc -eq 124 ]] || head_wait_failed "$rc" "$addr"
  [[ $rc -eq 0 ]] || styx__fail "$rc" ray start "${args[@]}"
  styx_state_dir >/dev/null
  styx_write_file_if_changed "$RAY_STATE_FILE" 0644 <<<"$fingerprint"

  if [[ $STYX_RAY_ROLE == head ]]; then
    styx_result ok "ray $STYX_RAY_VERSION head started at $addr (dashboard $STYX_RAY_DASHBOARD_HOST:$STYX_RAY_DASHBOARD_PORT)"
  else
    styx_result ok "ray $STYX_RAY_VERSION worker $node_ip joined head $addr"
  fi
}

# styx drift: Ray at its version, running on this node, started for this
# cluster's address, the token in place, and this node alive in the cluster
check_drift() {
  local node_ip addr have out recorded="" want_token
  local -a problems=()
  node_ip=${STYX_NODE_IP:-$(detect_node_ip)}
  if [[ $STYX_RAY_ROLE == head ]]; then addr="$node_ip:$STYX_RAY_PORT"; else addr="$STYX_RAY_HEAD_IP:$STYX_RAY_PORT"; fi
  have=$(installed_version)
  [[ $have == "$STYX_RAY_VERSION" ]] || problems+=("ray ${have:-not installed}, want $STYX_RAY_VERSION")
  if [[ $STYX_RAY_AUTH == token ]]; then
    want_token=$(printf '%s\n' "$_styx_ray_token" | sha256sum | awk '{print $1}')
    _styx_ray_token=""
    if ! styx_sudo test -f "$STYX_RAY_TOKEN_FILE"; then
      problems+=("ray auth token file $STYX_RAY_TOKEN_FILE missing")
    elif [[ $(styx_sha256 "$STYX_RAY_TOKEN_FILE") != "$want_token" ]]; then
      problems+=("ray auth token file $STYX_RAY_TOKEN_FILE differs")
    fi
    export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$STYX_RAY_TOKEN_FILE"
  fi
  if styx_sudo test -f "$RAY_STATE_FILE"; then recorded=$(styx_sudo cat -- "$RAY_STATE_FILE"); fi
  grep -qxF -- "address=$addr" <<<"$recorded" || problems+=("ray was not started by styx for $addr")
  if ! local_ray_processes; then
    problems+=("ray not running on this node")
  elif [[ -n $STYX_RAY_CONTAINER || -x $VPY ]]; then
    styx_mktemp_var out
    if ! styx_try_capture "$out" ray_py_within 60 -c "$NODES_PY" "$addr"; then
      problems+=("the ray cluster at $addr does not answer")
    elif ! grep -qxF -- "$node_ip" "$out"; then
      problems+=("node $node_ip is not alive in the ray cluster at $addr")
    fi
  fi
  styx_verdict "ray $STYX_RAY_VERSION $STYX_RAY_ROLE running, node $node_ip alive in $addr" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
