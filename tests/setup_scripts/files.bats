#!/usr/bin/env bats
# wait_ssh.sh, env_vars(.sh/_delete.sh), workdir.sh, file_sync(.sh/_delete.sh)

load helpers

setup() {
  common_setup
  export STYX_ENV_FILE="$T/etc/styx/env.sh"
  CONTENT="export HF_TOKEN_SECRET='hf_s3cr3t'
export WANDB_PROJECT='styx'"
}

@test "wait_ssh: one ok line with hostname and OS" {
  set_os ubuntu 24.04 noble
  run_phase wait_ssh
  assert_status 0
  assert_one_line
  assert_output_matches '^styx wait_ssh: ok: [^ ]+ reachable \(ubuntu 24\.04\)$'
}

@test "env_vars: written 0600, profile hook added; unchanged second run; secrets never printed" {
  STYX_ENV_CONTENT="$CONTENT" run_phase env_vars
  assert_status 0
  assert_one_line
  [ "$output" = "styx env_vars: ok: wrote $STYX_ENV_FILE (2 variables) and $STYX_PROFILE_DIR/styx-env.sh" ]
  [ "$(cat "$STYX_ENV_FILE")" = "$CONTENT" ]
  [ "$(stat -c %a "$STYX_ENV_FILE")" = 600 ]
  [[ $output$stderr != *s3cr3t* ]]
  ! grep -rq s3cr3t "$STYX_LOG_DIR"
  # login shells get the variables
  run sh -c ". '$STYX_PROFILE_DIR/styx-env.sh'; echo \$WANDB_PROJECT"
  [ "$output" = styx ]
  local before
  before=$(stat -c %Y.%i "$STYX_ENV_FILE" "$STYX_PROFILE_DIR/styx-env.sh")
  sleep 1
  STYX_ENV_CONTENT="$CONTENT" run_phase env_vars
  assert_status 0
  [ "$output" = "styx env_vars: skipped: $STYX_ENV_FILE unchanged (2 variables)" ]
  assert_stderr_contains "unchanged: $STYX_ENV_FILE"
  [ "$(stat -c %Y.%i "$STYX_ENV_FILE" "$STYX_PROFILE_DIR/styx-env.sh")" = "$before" ]
}

@test "env_vars: changed content rewrites; nothing configured -> skipped" {
  run_phase env_vars
  [ "$output" = "styx env_vars: skipped: no environment variables configured" ]
  [ ! -e "$STYX_ENV_FILE" ]
  STYX_ENV_CONTENT="$CONTENT" run_phase env_vars
  STYX_ENV_CONTENT="export A='1'" run_phase env_vars
  assert_status 0
  assert_output_matches '^styx env_vars: ok: wrote .* \(1 variables\)'
  [ "$(cat "$STYX_ENV_FILE")" = "export A='1'" ]
}

@test "env_vars_delete removes file and hook, then skips" {
  STYX_ENV_CONTENT="$CONTENT" run_phase env_vars
  run_phase env_vars_delete
  assert_status 0
  [ "$output" = "styx env_vars_delete: ok: removed $STYX_ENV_FILE $STYX_PROFILE_DIR/styx-env.sh" ]
  [ ! -e "$STYX_ENV_FILE" ] && [ ! -e "$STYX_PROFILE_DIR/styx-env.sh" ]
  run_phase env_vars_delete
  [ "$output" = "styx env_vars_delete: skipped: nothing to remove" ]
}

@test "workdir: created, then skipped" {
  STYX_WORKDIR="$T/opt/styx/work" run_phase workdir
  assert_status 0
  [ "$output" = "styx workdir: ok: created $T/opt/styx/work ($(id -un):$(id -gn), 0755)" ]
  [ -d "$T/opt/styx/work" ]
  STYX_WORKDIR="$T/opt/styx/work" run_phase workdir
  [ "$output" = "styx workdir: skipped: $T/opt/styx/work already exists ($(id -un):$(id -gn), 0755)" ]
  STYX_WORKDIR="$T/opt/styx/work" STYX_WORKDIR_MODE=0750 run_phase workdir
  assert_output_matches '^styx workdir: ok: fixed owner/mode'
  [ "$(stat -c %a "$T/opt/styx/work")" = 750 ]
}

# ---------------------------------------------------------------- file_sync

# archive B64 of files under $T/src, paths relative to / (rooted at $T/dst)
make_archive() { # relpath...
  tar -czf - -C "$T/src" "$@" | base64 -w0
}

setup_sync_tree() {
  REL=${T#/}/dst
  mkdir -p "$T/src/$REL/app/conf" "$T/dst"
  echo one >"$T/src/$REL/app/a.txt"
  echo two >"$T/src/$REL/app/conf/b.conf"
  echo three >"$T/src/$REL/app/c.txt"
  chmod 0700 "$T/dst"
}

@test "file_sync: extracts once, skips unchanged, removes stale paths" {
  setup_sync_tree
  local b64 manifest
  b64=$(make_archive "$REL/app/a.txt" "$REL/app/conf/b.conf" "$REL/app/c.txt")
  manifest="$T/dst/app/a.txt
$T/dst/app/conf/b.conf
$T/dst/app/c.txt"
  STYX_SYNC_ARCHIVE_B64=$b64 STYX_SYNC_MANIFEST=$manifest run_phase file_sync
  assert_status 0
  assert_one_line
  assert_output_matches '^styx file_sync: ok: extracted 3 paths \(sha256 [0-9a-f]{12}\), removed 0 stale$'
  [ "$(cat "$T/dst/app/conf/b.conf")" = two ]
  # existing directories keep their own metadata
  [ "$(stat -c %a "$T/dst")" = 700 ]

  STYX_SYNC_ARCHIVE_B64=$b64 STYX_SYNC_MANIFEST=$manifest run_phase file_sync
  assert_status 0
  assert_output_matches '^styx file_sync: skipped: 3 paths up to date'

  # c.txt dropped from the sync: removed from the node
  b64=$(make_archive "$REL/app/a.txt" "$REL/app/conf/b.conf")
  STYX_SYNC_ARCHIVE_B64=$b64 STYX_SYNC_MANIFEST="$T/dst/app/a.txt
$T/dst/app/conf/b.conf" run_phase file_sync
  assert_status 0
  assert_output_matches '^styx file_sync: ok: extracted 2 paths .*removed 1 stale$'
  [ ! -e "$T/dst/app/c.txt" ]
  [ -e "$T/dst/app/a.txt" ]
  [ "$(cat "$STYX_STATE_DIR/file_sync.manifest")" = "$T/dst/app/a.txt
$T/dst/app/conf/b.conf" ]
}

@test "file_sync: a synced file deleted on the node is restored" {
  setup_sync_tree
  local b64
  b64=$(make_archive "$REL/app/a.txt")
  STYX_SYNC_ARCHIVE_B64=$b64 STYX_SYNC_MANIFEST="$T/dst/app/a.txt" run_phase file_sync
  rm "$T/dst/app/a.txt"
  STYX_SYNC_ARCHIVE_B64=$b64 STYX_SYNC_MANIFEST="$T/dst/app/a.txt" run_phase file_sync
  assert_status 0
  assert_output_matches '^styx file_sync: ok: extracted 1 paths'
  [ -e "$T/dst/app/a.txt" ]
}

@test "file_sync: nothing to sync -> skipped; bad input rejected" {
  run_phase file_sync
  assert_status 0
  [ "$output" = "styx file_sync: skipped: nothing to sync" ]
  STYX_SYNC_ARCHIVE_B64='not base64!!' STYX_SYNC_MANIFEST=/opt/x/y run_phase file_sync
  assert_status 1
  STYX_SYNC_ARCHIVE_B64=$(printf 'plain' | base64) STYX_SYNC_MANIFEST=/etc run_phase file_sync
  assert_status 1
  assert_stderr_contains "refusing top-level manifest path: /etc"
}

@test "file_sync_delete removes every recorded path, then skips" {
  setup_sync_tree
  local b64
  b64=$(make_archive "$REL/app/a.txt" "$REL/app/conf/b.conf")
  STYX_SYNC_ARCHIVE_B64=$b64 STYX_SYNC_MANIFEST="$T/dst/app/a.txt
$T/dst/app/conf/b.conf" run_phase file_sync
  run_phase file_sync_delete
  assert_status 0
  [ "$output" = "styx file_sync_delete: ok: removed 2 synced paths" ]
  [ ! -e "$T/dst/app/a.txt" ] && [ ! -e "$T/dst/app/conf/b.conf" ]
  [ ! -e "$STYX_STATE_DIR/file_sync.manifest" ]
  run_phase file_sync_delete
  assert_output_matches '^styx file_sync_delete: skipped: no recorded manifest'
}
