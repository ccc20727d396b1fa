#!/usr/bin/env bats
# ray.sh / ray_delete.sh with a fake venv (ray + python stubs) and a fake
# /proc that shows raylet/gcs_server while the fake Ray "runs".

load helpers

setup() {
  common_setup
  export STYX_VENV_DIR="$T/venv" STYX_NODE_IP=10.0.0.2 STYX_ENV_FILE="$T/etc/env.sh"
  export STYX_RAY_AUTH_TOKEN=tok-5f3a9c-not-in-logs STYX_RAY_TOKEN_FILE="$T/etc/ray-auth-token"
  export STYX_RAY_AUTH_ENV="$T/etc/ray-auth.env" STYX_RAY_AUTH_PROFILE="$T/profile.d/styx-ray-auth.sh"
  export RS="$T/raystub"
  mkdir -p "$STYX_VENV_DIR/bin" "$RS" "$T/etc"
  echo 2.60.0 >"$RS/installed"
  touch "$RS/extras"
  printf "export MY_TOKEN_SECRET='s3cr3t-value'\nexport PLAIN='p'\n" >"$STYX_ENV_FILE"
  chmod 600 "$STYX_ENV_FILE"
  # fake ray CLI
  cat >"$STYX_VENV_DIR/bin/ray" <<'STUB'
#!/bin/bash
printf '%s\n' "ray $*" >>"$STUB_LOG"
printf '%s\0' "$@" >"$RS/argv.$1"
case $1 in
  start)
    {
      echo "RAY_USAGE_STATS_ENABLED=${RAY_USAGE_STATS_ENABLED-unset}"
      echo "MY_TOKEN_SECRET=${MY_TOKEN_SECRET-unset}"
      echo "PATH=$PATH"
      echo "VIRTUAL_ENV=${VIRTUAL_ENV-unset}"
      echo "RAY_AUTH_MODE=${RAY_AUTH_MODE-unset}"
      echo "RAY_AUTH_TOKEN_PATH=${RAY_AUTH_TOKEN_PATH-unset}"
      echo "RAY_AUTH_TOKEN=${RAY_AUTH_TOKEN-unset} STYX_RAY_AUTH_TOKEN=${STYX_RAY_AUTH_TOKEN-unset}"
      echo "python=$(command -v python)"
    } >"$RS/start_env"
    mkdir -p "$STYX_PROC_ROOT/4242"
    printf '%s\0%s\0' "$STYX_VENV_DIR/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet" "--node_ip_address=x" >"$STYX_PROC_ROOT/4242/cmdline"
    if [[ " $* " == *" --head "* ]]; then
      mkdir -p "$STYX_PROC_ROOT/4243"
      printf '%s\0' "$STYX_VENV_DIR/lib/python3.11/site-packages/ray/core/src/ray/gcs/gcs_server" >"$STYX_PROC_ROOT/4243/cmdline"
    fi
    for a in "$@"; do case $a in --node-ip-address=*) echo "${a#*=}" >>"$RS/nodes" ;; esac; done
    echo "Ray runtime started." ;;
  stop)
    rm -rf "$STYX_PROC_ROOT/4242" "$STYX_PROC_ROOT/4243"; : >"$RS/nodes"
    echo "Stopped all processes." ;;
  status)
    [ -d "$STYX_PROC_ROOT/4242" ] || [ -f "$RS/remote_head_up" ] || { echo "ConnectionError: could not find any running Ray instance"; exit 1; }
    echo "======== Autoscaler status ========" ;;
esac
STUB
  # fake venv python: ray version / extras / `ray start` + wait until listed (the ray stub, then this
  # stub's node listing: exit 3 when IP is not listed) / node listing / pip install. The head's GCS
  # key-value store is the file $RS/generation: the head's put writes it, a worker's wait for its head
  # reads it (await_head: the same generation -> on, none -> on (a warning), another -> exit 75)
  cat >"$STYX_VENV_DIR/bin/python" <<'STUB'
#!/bin/bash
printf '%s\n' "python $*" >>"$STUB_LOG"
await_head() {
  echo "await_head $1" >>"$STUB_LOG"
  [ ! -f "$RS/generation" ] || [ "$(cat "$RS/generation")" = "$1" ] || exit 75
}
if [ "$1" = -c ]; then
  case $2 in
    *'cli.main(args=["start"'*)
      addr=$3 ip=$4 put=$6 want=$7
      shift 7
      [ -z "$want" ] || await_head "$want"
      "$(dirname "$0")/ray" start "$@" || exit
      "$0" -c get_all_node_info "$addr" | grep -qxF -- "$ip" || exit 3
      [ -z "$put" ] || echo "$put" >"$RS/generation"
      exit 0 ;;
    *'await_head(sys.argv[1]'*)
      await_head "$5"
      "$0" -c get_all_node_info "$3" | grep -qxF -- "$4" ;;
    *'version("ray")'*) [ -s "$RS/installed" ] && cat "$RS/installed" && exit 0; exit 1 ;;
    *aiohttp*) [ -f "$RS/extras" ] ;;
    *get_all_node_info*)
      [ -z "${4:-}" ] || echo "$4" >"$RS/generation"
      [ -f "$RS/nodes" ] && cat "$RS/nodes"; exit 0 ;;
    *) exit 0 ;;
  esac
  exit $?
fi
if [ "$1 $2" = "-m pip" ]; then
  [ "$3" = --version ] && { echo "pip 23.0.1"; exit 0; }
  for a in "$@"; do case $a in 'ray[default]=='*) echo "${a#*==}" >"$RS/installed"; touch "$RS/extras" ;; esac; done
  echo "Successfully installed ray"
fi
STUB
  chmod +x "$STYX_VENV_DIR/bin/ray" "$STYX_VENV_DIR/bin/python"
}

@test "head not running: starts with usage stats off, dashboard on 127.0.0.1, env file sourced" {
  run_phase ray
  assert_status 0
  assert_one_line
  [ "$output" = "styx ray: ok: ray 2.60.0 head started at 10.0.0.2:6379 (dashboard 127.0.0.1:8265)" ]
  # nothing of Ray ran on the node: no `ray stop` (a Python start of the CLI)
  assert_log_lacks '^ray stop'
  assert_log_has '^ray start --head --port=6379 --node-ip-address=10.0.0.2 --dashboard-host=127.0.0.1 --dashboard-port=8265 --ray-client-server-port=10001 --disable-usage-stats$'
  # ready: the head's GCS lists the head node alive (no `ray status`: a Python start of the CLI)
  assert_log_has 'get_all_node_info'
  assert_log_lacks '^ray status'
  grep -qx RAY_USAGE_STATS_ENABLED=0 "$RS/start_env"
  grep -qx MY_TOKEN_SECRET=s3cr3t-value "$RS/start_env"
  # the secret never shows up in stdout, stderr or the phase log
  [[ $output$stderr != *s3cr3t* ]]
  ! grep -rq s3cr3t "$STYX_LOG_DIR"
  grep -q '^version=2.60.0$' "$STYX_STATE_DIR/ray.started"
  assert_log_lacks 'pip install'
}

@test "a leftover Ray process (no state file): stopped before the start" {
  mkdir -p "$STYX_PROC_ROOT/4250"
  printf '%s\0%s\0' "$STYX_VENV_DIR/bin/python" "$STYX_VENV_DIR/lib/python3.11/site-packages/ray/dashboard/dashboard.py" >"$STYX_PROC_ROOT/4250/cmdline"
  run_phase ray
  rm -rf "$STYX_PROC_ROOT/4250"
  assert_status 0
  assert_log_has '^ray stop --force$'
  assert_log_has '^ray start --head'
}

@test "same version and head address already running: left alone (skipped)" {
  run_phase ray
  assert_status 0
  : >"$STUB_LOG"
  run_phase ray
  assert_status 0
  assert_one_line
  [ "$output" = "styx ray: skipped: ray 2.60.0 already running (head 10.0.0.2:6379)" ]
  assert_log_lacks '^ray (start|stop)'
}

@test "running with another version: pip installs the pinned one and restarts" {
  echo 2.9.0 >"$RS/installed"
  STYX_RAY_VERSION=2.9.0 run_phase ray
  assert_status 0
  : >"$STUB_LOG"
  run_phase ray
  assert_status 0
  [ "$output" = "styx ray: ok: ray 2.60.0 head started at 10.0.0.2:6379 (dashboard 127.0.0.1:8265)" ]
  assert_log_has '^python -m pip install .*ray\[default\]==2\.60\.0$'
  assert_log_has '^ray stop --force$'
  assert_log_has '^ray start --head'
  [ "$(cat "$RS/installed")" = 2.60.0 ]
}

@test "env file changed since start: restarts so tasks see the new values" {
  run_phase ray
  assert_status 0
  printf "export MY_TOKEN_SECRET='rotated'\n" >"$STYX_ENV_FILE"
  : >"$STUB_LOG"
  run_phase ray
  assert_status 0
  assert_output_matches '^styx ray: ok: '
  assert_log_has '^ray start --head'
  grep -qx MY_TOKEN_SECRET=rotated "$RS/start_env"
}

@test "token auth: the token in a 0600 file, Ray and its clients with RAY_AUTH_MODE=token, the token nowhere else" {
  run_phase ray
  assert_status 0
  [[ $(cat "$STYX_RAY_TOKEN_FILE") == tok-5f3a9c-not-in-logs ]]
  [[ $(stat -c %a "$STYX_RAY_TOKEN_FILE") == 600 ]]
  grep -qx RAY_AUTH_MODE=token "$RS/start_env"
  grep -qx "RAY_AUTH_TOKEN_PATH=$STYX_RAY_TOKEN_FILE" "$RS/start_env"
  grep -qx "RAY_AUTH_TOKEN=unset STYX_RAY_AUTH_TOKEN=unset" "$RS/start_env"
  grep -qx "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$STYX_RAY_TOKEN_FILE" "$STYX_RAY_AUTH_ENV"
  grep -qF ". $STYX_RAY_AUTH_ENV" "$STYX_RAY_AUTH_PROFILE"
  ! grep -rqF tok-5f3a9c "$T/log" "$T/state" "$STUB_LOG"
  [[ $output != *tok-5f3a9c* && $stderr != *tok-5f3a9c* ]]
}

@test "token auth: the same token again changes nothing, a new token restarts Ray" {
  run_phase ray
  : >"$STUB_LOG"
  run_phase ray
  assert_output_matches '^styx ray: skipped: '
  export STYX_RAY_AUTH_TOKEN=tok-rotated-2
  run_phase ray
  assert_status 0
  assert_output_matches '^styx ray: ok: '
  assert_log_has '^ray start --head'
  [[ $(cat "$STYX_RAY_TOKEN_FILE") == tok-rotated-2 ]]
}

@test "auth none: no token file, no client settings, Ray without RAY_AUTH_MODE" {
  run_phase ray
  export STYX_RAY_AUTH=none STYX_RAY_AUTH_TOKEN=""
  run_phase ray
  assert_status 0
  assert_output_matches '^styx ray: ok: '
  [[ ! -e $STYX_RAY_TOKEN_FILE && ! -e $STYX_RAY_AUTH_ENV && ! -e $STYX_RAY_AUTH_PROFILE ]]
  grep -qx RAY_AUTH_MODE=unset "$RS/start_env"
}

@test "auth token without a token fails clearly" {
  export STYX_RAY_AUTH_TOKEN=""
  run_phase ray
  assert_status 1
  assert_stderr_contains "setup.ray.auth is token but the phase got no token"
}

@test "ray died although the record matches: started again" {
  run_phase ray
  rm -rf "$STYX_PROC_ROOT/4242" "$STYX_PROC_ROOT/4243"
  : >"$STUB_LOG"
  run_phase ray
  assert_status 0
  assert_output_matches '^styx ray: ok: '
  assert_log_has '^ray start --head'
}

@test "worker joins the head address and waits until it is listed" {
  touch "$RS/remote_head_up"
  STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 0
  assert_one_line
  [ "$output" = "styx ray: ok: ray 2.60.0 worker 10.0.0.3 joined head 10.0.0.2:6379" ]
  assert_log_has '^ray start --address=10.0.0.2:6379 --node-ip-address=10.0.0.3 --disable-usage-stats$'
  assert_log_has 'get_all_node_info'
  # one Python: `ray start`, then until this node (10.0.0.3) is listed alive by the head's GCS
  # (no generation to record, none to wait for: run by hand, outside the runner)
  assert_log_has '^ 10\.0\.0\.2:6379 10\.0\.0\.3 120   --address=10\.0\.0\.2:6379 --node-ip-address=10\.0\.0\.3 --disable-usage-stats$'
  assert_log_lacks 'dashboard'
  : >"$STUB_LOG"
  STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  [ "$output" = "styx ray: skipped: ray 2.60.0 already running (head 10.0.0.2:6379)" ]
}

@test "head: records the generation of its ray phase in its GCS, on a start and when left running" {
  mkdir -p "$STYX_STATE_DIR/generations"
  echo gen-aaaa >"$STYX_STATE_DIR/generations/ray"  # what the runner claims when the phase starts
  run_phase ray
  assert_status 0
  [ "$(cat "$RS/generation")" = gen-aaaa ]
  # the next launch (a new generation: an earlier phase changed), Ray left running: recorded too
  echo gen-bbbb >"$STYX_STATE_DIR/generations/ray"
  : >"$STUB_LOG"
  run_phase ray
  assert_output_matches '^styx ray: skipped: '
  [ "$(cat "$RS/generation")" = gen-bbbb ]
  assert_log_lacks '^ray (start|stop)'
}

@test "worker beside its head: waits for the head's generation, then joins" {
  touch "$RS/remote_head_up"
  echo gen-head1 >"$RS/generation"
  STYX_RAY_HEAD_GENERATION=gen-head1 STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 0
  [ "$output" = "styx ray: ok: ray 2.60.0 worker 10.0.0.3 joined head 10.0.0.2:6379" ]
  # one Python: the wait for the head, `ray start`, the wait until listed
  assert_log_has '^await_head gen-head1$'
  assert_log_has '^ 10\.0\.0\.2:6379 10\.0\.0\.3 120  gen-head1 --address=10\.0\.0\.2:6379 '
  [ "$(grep -c '^python -c' "$STUB_LOG")" -le 4 ]
}

@test "worker beside its head: a head still on another generation fails clearly, Ray not started" {
  touch "$RS/remote_head_up"
  echo gen-old >"$RS/generation"
  STYX_RAY_HEAD_GENERATION=gen-new STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 1
  assert_stderr_contains "the head at 10.0.0.2:6379 did not start Ray for this launch"
  assert_stderr_contains "setup.ray.worker_start: after_head"
  assert_log_lacks '^ray start'
}

@test "worker left running beside a restarting head: waits for the new head, then looks (joins again if not listed)" {
  touch "$RS/remote_head_up"
  echo gen-1 >"$RS/generation"
  STYX_RAY_HEAD_GENERATION=gen-1 STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 0
  # same worker config, the head's generation is gen-1 again: left running (the wait, then one look)
  : >"$STUB_LOG"
  STYX_RAY_HEAD_GENERATION=gen-1 STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  [ "$output" = "styx ray: skipped: ray 2.60.0 already running (head 10.0.0.2:6379)" ]
  assert_log_has '^await_head gen-1$'
  # the head restarted for gen-2 (its new GCS knows only the head): the worker joins it again, without a
  # second wait in the start
  echo gen-2 >"$RS/generation"
  echo 10.0.0.2 >"$RS/nodes"
  : >"$STUB_LOG"
  STYX_RAY_HEAD_GENERATION=gen-2 STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 0
  assert_output_matches '^styx ray: ok: ray 2.60.0 worker 10.0.0.3 joined'
  [ "$(grep -c '^await_head gen' "$STUB_LOG")" -eq 1 ]
  assert_log_has '^ray stop --force'
  assert_log_has '^ 10\.0\.0\.2:6379 10\.0\.0\.3 120   --address=10\.0\.0\.2:6379 '
}

@test "worker whose head restarted (not listed in the new GCS) joins again although its record matches" {
  touch "$RS/remote_head_up"
  STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 0
  echo 10.0.0.2 >"$RS/nodes"   # the head's new GCS knows only the head
  : >"$STUB_LOG"
  STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 0
  assert_output_matches '^styx ray: ok: ray 2.60.0 worker 10.0.0.3 joined'
  assert_log_has '^ray stop --force'
  assert_log_has '^ray start --address=10.0.0.2:6379'
}

@test "worker never listed by the head: fails after STYX_RAY_START_TIMEOUT" {
  touch "$RS/remote_head_up"
  # the node listing never contains this node
  sed -i 's|^      \[ -f "$RS/nodes" \] \&\& cat "$RS/nodes"; exit 0 ;;|      echo 10.0.0.2; exit 0 ;;|' "$STYX_VENV_DIR/bin/python"
  grep -q 'echo 10.0.0.2; exit 0' "$STYX_VENV_DIR/bin/python"
  STYX_RAY_START_TIMEOUT=1 STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 1
  assert_stderr_contains "node 10.0.0.3 did not appear in the ray cluster at 10.0.0.2:6379"
}

@test "worker without STYX_RAY_HEAD_IP fails clearly" {
  STYX_RAY_ROLE=worker run_phase ray
  assert_status 1
  assert_stderr_contains "STYX_RAY_HEAD_IP is required"
}

@test "STYX_NODE_ROLE=worker selects the worker role by default" {
  touch "$RS/remote_head_up"
  STYX_NODE_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 run_phase ray
  assert_status 0
  assert_output_matches 'worker 10\.0\.0\.3 joined'
}

@test "optional resources and extra args are passed to ray start" {
  STYX_RAY_NUM_GPUS=8 STYX_RAY_NUM_CPUS=96 STYX_RAY_OBJECT_STORE_BYTES=1000000000 \
    STYX_RAY_EXTRA_ARGS=$'--resources={"x":1}\n--temp-dir=/tmp/r' run_phase ray
  assert_status 0
  assert_log_has '^ray start --head .* --object-store-memory=1000000000 --num-cpus=96 --num-gpus=8 --disable-usage-stats --resources=\{"x":1\} --temp-dir=/tmp/r$'
}

@test "extra args, one per line, each reach ray start as one argument exactly as written" {
  local -a got want=('--resources={"custom": 1, "b": 2}' '--labels={"k": "a b"}' '--temp-dir=/tmp/r *')
  STYX_RAY_EXTRA_ARGS=$(printf '%s\n' "${want[@]}") run_phase ray
  assert_status 0
  mapfile -d '' -t got <"$RS/argv.start"
  [ "${#got[@]}" -gt 3 ]
  [ "${got[*]: -3}" = "${want[*]}" ]
  [ "${got[-3]}" = "${want[0]}" ] && [ "${got[-2]}" = "${want[1]}" ] && [ "${got[-1]}" = "${want[2]}" ]
  [ "${got[-4]}" = --disable-usage-stats ]
}

@test "Ray's processes run with the venv first on PATH (then the conda env), so a job's python has Ray" {
  mkdir -p "$T/conda/envs/ml/bin"
  printf "export PATH='/custom/bin:/usr/bin'\n" >>"$STYX_ENV_FILE"
  STYX_CONDA_ENV_DIR="$T/conda/envs/ml" run_phase ray
  assert_status 0
  grep -qx "PATH=$STYX_VENV_DIR/bin:$T/conda/envs/ml/bin:/custom/bin:/usr/bin" "$RS/start_env"
  grep -qx "VIRTUAL_ENV=$STYX_VENV_DIR" "$RS/start_env"
  grep -qx "python=$STYX_VENV_DIR/bin/python" "$RS/start_env"
  grep -qx MY_TOKEN_SECRET=s3cr3t-value "$RS/start_env"
  ! grep -rq s3cr3t "$STYX_LOG_DIR"
  # without the conda env: PATH changes, so the running Ray is restarted
  : >"$STUB_LOG"
  run_phase ray
  assert_output_matches '^styx ray: ok: '
  grep -qx "PATH=$STYX_VENV_DIR/bin:/custom/bin:/usr/bin" "$RS/start_env"
  : >"$STUB_LOG"
  run_phase ray
  assert_output_matches '^styx ray: skipped: '
}

@test "no venv: fails with a hint to run python_env" {
  rm -rf "$STYX_VENV_DIR"
  run_phase ray
  assert_status 1
  assert_stderr_contains "run the python_env phase first"
}

@test "ray_delete stops ray (usage stats off), then skips when nothing runs" {
  run_phase ray
  : >"$STUB_LOG"
  run_phase ray_delete
  assert_status 0
  [ "$output" = "styx ray_delete: ok: ray stopped" ]
  assert_log_has '^ray stop --force$'
  [ ! -e "$STYX_STATE_DIR/ray.started" ]
  run_phase ray_delete
  [ "$output" = "styx ray_delete: skipped: ray not running" ]
}

@test "ray_delete without ray installed: skipped" {
  rm -rf "$STYX_VENV_DIR"
  run_phase ray_delete
  assert_status 0
  [ "$output" = "styx ray_delete: skipped: ray not installed" ]
}
