#!/usr/bin/env bash
# styx phase: file_sync -- put the cluster's file mounts in place on the node.
#
# Environment:
#   STYX_SYNC_ARCHIVE   the tar.gz the transport copied to the node (relative:
#                       to $HOME); member paths are relative to / and inside
#                       one of STYX_SYNC_ROOTS
#   STYX_SYNC_SHA256    its expected sha256
#   STYX_SYNC_ROOTS     newline-separated remote mount paths
#   STYX_SYNC_STATE     manifest of what styx wrote: one absolute path a line
#                       (default $STYX_STATE_DIR/file_sync.manifest; the
#                       archive's sha256 is kept in <STATE>.sha256)
#
# Unchanged archive and every recorded path present: nothing to do. Else
# extracts the archive into / and removes what the previous manifest had and
# the new one has not (files; folders only when left empty): files the node
# made itself inside a mount are kept. Older archives are removed.
# stdout: `styx file_sync: ok|skipped: ...`
: "${STYX_PHASE:=file_sync}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_SYNC_ARCHIVE=${STYX_SYNC_ARCHIVE:-}
STYX_SYNC_SHA256=${STYX_SYNC_SHA256:-}
STYX_SYNC_ROOTS=${STYX_SYNC_ROOTS:-}
STYX_SYNC_STATE=${STYX_SYNC_STATE:-$STYX_STATE_DIR/file_sync.manifest}

# a path styx may write or remove: absolute, normalised, inside a root
check_path() {
  local p=$1 r
  [[ $p == /* && $p != *"/../"* && $p != *"/.." && $p != *"/./"* && $p != *"//"* ]] ||
    styx_die "archive member is not a normalised absolute path: $p"
  while IFS= read -r r; do
    [[ -n $r ]] || continue
    if [[ $p == "$r" || $p == "$r"/* ]]; then return 0; fi
  done <<<"$STYX_SYNC_ROOTS"
  styx_die "archive member outside the file mounts: $p"
}

# remove_paths manifest-file: files and links first, then folders left empty
remove_paths() {
  local list=$1 p n=0
  while IFS= read -r p; do
    [[ -n $p && $p == /*/* ]] || continue
    if styx_sudo test -L "$p" || { styx_sudo test -e "$p" && ! styx_sudo test -d "$p"; }; then
      styx_sudo rm -f -- "$p"
      n=$((n + 1))
    fi
  done <"$list"
  while IFS= read -r p; do
    [[ -n $p && $p == /*/* ]] || continue
    if styx_sudo test -d "$p" && ! styx_sudo test -L "$p"; then
      styx_sudo rmdir -- "$p" 2>/dev/null && n=$((n + 1))
    fi
  done < <(LC_ALL=C sort -r "$list")
  printf '%s\n' "$n"
}

main() {
  local archive tmpdir new old stale sha_file old_sha="" got p n_new n_stale=0 n_missing=0
  [[ -n $STYX_SYNC_ARCHIVE && -n $STYX_SYNC_SHA256 && -n $STYX_SYNC_ROOTS ]] ||
    styx_die "STYX_SYNC_ARCHIVE, STYX_SYNC_SHA256 and STYX_SYNC_ROOTS are required"
  archive=$STYX_SYNC_ARCHIVE
  [[ $archive == /* ]] || archive="$HOME/$archive"
  styx_mktemp_var tmpdir -d
  new="$tmpdir/manifest.new" old="$tmpdir/manifest.old" stale="$tmpdir/stale"
  sha_file="$STYX_SYNC_STATE.sha256"
  : >"$old"
  if styx_sudo test -f "$STYX_SYNC_STATE"; then styx_sudo cat -- "$STYX_SYNC_STATE" | LC_ALL=C sort -u >"$old"; fi
  if styx_sudo test -f "$sha_file"; then old_sha=$(styx_sudo cat -- "$sha_file"); fi

  if [[ $old_sha == "$STYX_SYNC_SHA256" ]]; then
    while IFS= read -r p; do
      styx_sudo test -e "$p" || styx_sudo test -L "$p" || n_missing=$((n_missing + 1))
    done <"$old"
    if [[ $n_missing -eq 0 ]]; then
      styx_result skipped "$(wc -l <"$old") paths up to date (sha256 ${STYX_SYNC_SHA256:0:12})"
      return 0
    fi
    styx_log INFO "$n_missing synced path(s) missing on the node: extracting again"
  fi

  [[ -f $archive ]] || styx_die "sync archive $archive is missing on the node (its copy resource re-runs with \`pulumi up --replace\` of <node>-file_sync-copy)"
  got=$(styx_sha256 "$archive")
  [[ $got == "$STYX_SYNC_SHA256" ]] || styx_die "sync archive $archive has sha256 $got, expected $STYX_SYNC_SHA256"
  tar -tzf "$archive" --quoting-style=literal | sed -e 's#/$##' -e 's#^#/#' | LC_ALL=C sort -u >"$new" ||
    styx_die "sync archive is not a valid tar.gz"
  while IFS= read -r p; do check_path "$p"; done <"$new"
  n_new=$(wc -l <"$new")

  LC_ALL=C comm -23 "$old" "$new" >"$stale"
  if [[ -s $stale ]]; then
    n_stale=$(remove_paths "$stale")
    styx_log INFO "removed $n_stale path(s) no longer synced"
  fi
  styx_log INFO "extracting $n_new paths (sha256 $STYX_SYNC_SHA256) into /"
  styx_run styx_sudo tar -xzf "$archive" -C / --no-overwrite-dir

  styx_state_dir >/dev/null
  styx_sudo install -d -m 0755 -- "$(dirname -- "$STYX_SYNC_STATE")"
  styx_write_file_if_changed "$STYX_SYNC_STATE" 0644 <"$new"
  styx_write_file_if_changed "$sha_file" 0644 <<<"$STYX_SYNC_SHA256"
  find "$(dirname -- "$archive")" -maxdepth 1 -name '*.tar.gz' ! -name "$STYX_SYNC_SHA256.tar.gz" -delete 2>/dev/null || true
  styx_result ok "extracted $n_new paths (sha256 ${STYX_SYNC_SHA256:0:12}), removed $n_stale stale"
}

main "$@"
