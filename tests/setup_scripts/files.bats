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

# make_archive NAME relpath...: $T/home/.cache/styx/sync/<sha>.tar.gz of files
# under $T/src (member paths relative to /, rooted at $T/dst); sets SHA
make_archive() {
  local tmp="$T/archive.tar.gz"
  tar -czf "$tmp" -C "$T/src" --no-recursion "$@"
  SHA=$(sha256sum "$tmp" | cut -d' ' -f1)
  mkdir -p "$HOME/.cache/styx/sync"
  mv "$tmp" "$HOME/.cache/styx/sync/$SHA.tar.gz"
}

sync_phase() {
  STYX_SYNC_ARCHIVE=".cache/styx/sync/$SHA.tar.gz" STYX_SYNC_SHA256=$SHA STYX_SYNC_ROOTS="$T/dst/app" \
    run_phase "${1:-file_sync}"
}

setup_sync_tree() {
  export HOME="$T/home"
  REL=${T#/}/dst
  mkdir -p "$T/src/$REL/app/conf" "$T/dst" "$HOME"
  echo one >"$T/src/$REL/app/a.txt"
  echo two >"$T/src/$REL/app/conf/b.conf"
  echo three >"$T/src/$REL/app/c.txt"
  chmod 0700 "$T/dst"
}

@test "file_sync: extracts once, skips unchanged, removes stale files, keeps the node's own" {
  setup_sync_tree
  make_archive "$REL/app" "$REL/app/a.txt" "$REL/app/conf" "$REL/app/conf/b.conf" "$REL/app/c.txt"
  sync_phase
  assert_status 0
  assert_one_line
  assert_output_matches '^styx file_sync: ok: extracted [0-9]+ paths \(sha256 [0-9a-f]{12}\), removed 0 stale$'
  [ "$(cat "$T/dst/app/conf/b.conf")" = two ]
  # existing directories keep their own metadata
  [ "$(stat -c %a "$T/dst")" = 700 ]
  echo mine >"$T/dst/app/node-made.txt"

  sync_phase
  assert_status 0
  assert_output_matches '^styx file_sync: skipped: [0-9]+ paths up to date'

  # c.txt dropped from the sync: removed from the node; the node's own file stays; old archive goes
  local old=$SHA
  make_archive "$REL/app" "$REL/app/a.txt" "$REL/app/conf" "$REL/app/conf/b.conf"
  sync_phase
  assert_status 0
  assert_output_matches '^styx file_sync: ok: extracted 4 paths .*removed 1 stale$'
  [ ! -e "$T/dst/app/c.txt" ]
  [ -e "$T/dst/app/a.txt" ]
  [ "$(cat "$T/dst/app/node-made.txt")" = mine ]
  [ ! -e "$HOME/.cache/styx/sync/$old.tar.gz" ]
  grep -qxF "$T/dst/app/conf/b.conf" "$STYX_STATE_DIR/file_sync/manifest"
}

@test "file_sync: a synced file deleted on the node is restored" {
  setup_sync_tree
  make_archive "$REL/app/a.txt"
  sync_phase
  rm "$T/dst/app/a.txt"
  sync_phase
  assert_status 0
  assert_output_matches '^styx file_sync: ok: extracted 1 paths'
  [ -e "$T/dst/app/a.txt" ]
}

@test "file_sync: missing archive, wrong hash, members outside the mounts are refused" {
  setup_sync_tree
  SHA=0000 run_phase file_sync
  assert_status 1
  STYX_SYNC_ARCHIVE=.cache/styx/sync/x.tar.gz STYX_SYNC_SHA256=abc STYX_SYNC_ROOTS=/opt/x run_phase file_sync
  assert_status 1
  assert_stderr_contains "is missing on the node"
  make_archive "$REL/app/a.txt"
  STYX_SYNC_ARCHIVE=".cache/styx/sync/$SHA.tar.gz" STYX_SYNC_SHA256=beef STYX_SYNC_ROOTS="$T/dst/app" \
    run_phase file_sync
  assert_status 1
  assert_stderr_contains "expected beef"
  STYX_SYNC_ARCHIVE=".cache/styx/sync/$SHA.tar.gz" STYX_SYNC_SHA256=$SHA STYX_SYNC_ROOTS=/opt/other \
    run_phase file_sync
  assert_status 1
  assert_stderr_contains "archive member outside the file mounts"
  [ ! -e "$T/dst/app/a.txt" ]
}

@test "file_sync_delete removes what styx wrote, keeps what the node wrote, then skips" {
  setup_sync_tree
  make_archive "$REL/app" "$REL/app/a.txt" "$REL/app/conf" "$REL/app/conf/b.conf"
  sync_phase
  echo mine >"$T/dst/app/node-made.txt"
  run_phase file_sync_delete
  assert_status 0
  [ -e "$HOME/.cache/styx/sync/$SHA.tar.gz" ]  # a replacement extracts the same archive
  assert_output_matches '^styx file_sync_delete: ok: removed [0-9]+ synced paths$'
  [ ! -e "$T/dst/app/a.txt" ] && [ ! -e "$T/dst/app/conf" ]
  [ "$(cat "$T/dst/app/node-made.txt")" = mine ]
  [ ! -e "$STYX_STATE_DIR/file_sync/manifest" ]
  run_phase file_sync_delete
  assert_output_matches '^styx file_sync_delete: skipped: no recorded manifest'
}

@test "file_sync takes over an earlier styx's record, so that styx's old undo removes nothing" {
  setup_sync_tree
  make_archive "$REL/app" "$REL/app/a.txt"
  mkdir -p "$T/dst/app"
  printf '%s\n' "$T/dst/app" >"$STYX_STATE_DIR/file_sync.manifest"  # the old format: mount roots
  sync_phase
  assert_status 0
  [ ! -e "$STYX_STATE_DIR/file_sync.manifest" ]
  # the old resource's delete runs the old undo on the old record: nothing there any more
  STYX_SYNC_STATE="$STYX_STATE_DIR/file_sync.manifest" run_phase file_sync_delete
  assert_output_matches '^styx file_sync_delete: skipped: no recorded manifest'
  [ -e "$T/dst/app/a.txt" ]
}
