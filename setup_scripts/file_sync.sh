#!/usr/bin/env bash
# styx phase: file_sync -- put the lead's files in place on the node.
#
# Environment:
#   STYX_SYNC_ARCHIVE_B64   base64 of a tar.gz whose member paths are relative
#                           to / (e.g. `etc/foo.conf`); ownership and modes are
#                           taken from the archive when running as root.
#                           Existing directories keep their own metadata.
#   STYX_SYNC_ARCHIVE_FILE  alternative to _B64: path of the tar.gz already on
#                           the node (for archives too big for a command line)
#   STYX_SYNC_MANIFEST      newline-separated absolute target paths contained
#                           in the archive (what a later sync/undo may remove)
#   STYX_SYNC_STATE         recorded manifest
#                           (default $STYX_STATE_DIR/file_sync.manifest; its
#                           archive sha256 is kept in <STATE>.sha256)
#
# Extracts only when the archive's sha256 differs from the recorded one (or a
# manifest path has gone missing); removes paths that were in the previous
# manifest but are not in the new one. Empty archive and manifest: removes
# everything previously synced.
# stdout: `styx file_sync: ok|skipped: ...`
: "${STYX_PHASE:=file_sync}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_SYNC_ARCHIVE_B64=${STYX_SYNC_ARCHIVE_B64:-}
STYX_SYNC_ARCHIVE_FILE=${STYX_SYNC_ARCHIVE_FILE:-}
STYX_SYNC_MANIFEST=${STYX_SYNC_MANIFEST:-}
STYX_SYNC_STATE=${STYX_SYNC_STATE:-$STYX_STATE_DIR/file_sync.manifest}

# refuse to touch anything that is not a plain absolute path at least two
# levels deep (never /, /etc, /home ...)
check_path() {
  local p=$1
  [[ $p == /* ]] || styx_die "manifest path is not absolute: $p"
  [[ $p != *"/../"* && $p != *"/.." && $p != *"/./"* && $p != *"//"* ]] || styx_die "manifest path is not normalised: $p"
  [[ ${p#/} == */?* ]] || styx_die "refusing top-level manifest path: $p"
}

# normalised manifest (sorted, unique, no blank lines) into file $2
normalise_manifest() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -n ${line//[[:space:]]/} ]] || continue
    line=${line%/}
    check_path "$line"
    printf '%s\n' "$line"
  done <<<"$1" | LC_ALL=C sort -u >"$2"
}

remove_path() {
  local p=$1
  check_path "$p"
  if styx_sudo test -d "$p" && ! styx_sudo test -L "$p"; then
    styx_sudo rm -rf -- "$p"
  else
    styx_sudo rm -f -- "$p"
  fi
}

main() {
  local tmpdir archive new_manifest old_manifest sha_file stale_file
  local new_sha old_sha="" n_new n_stale=0 n_missing=0 p extracted=0
  styx_mktemp_var tmpdir -d
  archive="$tmpdir/archive.tar.gz"
  new_manifest="$tmpdir/manifest.new"
  old_manifest="$tmpdir/manifest.old"
  stale_file="$tmpdir/stale"
  sha_file="$STYX_SYNC_STATE.sha256"

  if [[ -z $STYX_SYNC_ARCHIVE_B64 && -z $STYX_SYNC_ARCHIVE_FILE && -z ${STYX_SYNC_MANIFEST//[[:space:]]/} ]] &&
    ! styx_sudo test -f "$STYX_SYNC_STATE"; then
    styx_result skipped "nothing to sync"
    return 0
  fi
  normalise_manifest "$STYX_SYNC_MANIFEST" "$new_manifest"
  n_new=$(wc -l <"$new_manifest")
  : >"$old_manifest"
  if styx_sudo test -f "$STYX_SYNC_STATE"; then
    styx_sudo cat -- "$STYX_SYNC_STATE" | LC_ALL=C sort -u >"$old_manifest"
  fi
  if styx_sudo test -f "$sha_file"; then
    old_sha=$(styx_sudo cat -- "$sha_file")
  fi

  if [[ -n $STYX_SYNC_ARCHIVE_FILE ]]; then
    styx_sudo test -f "$STYX_SYNC_ARCHIVE_FILE" || styx_die "STYX_SYNC_ARCHIVE_FILE not found: $STYX_SYNC_ARCHIVE_FILE"
    styx_sudo cat -- "$STYX_SYNC_ARCHIVE_FILE" >"$archive"
  elif [[ -n $STYX_SYNC_ARCHIVE_B64 ]]; then
    printf '%s' "$STYX_SYNC_ARCHIVE_B64" | base64 -d >"$archive" 2>/dev/null ||
      styx_die "STYX_SYNC_ARCHIVE_B64 is not valid base64"
  fi

  if [[ -s $archive ]]; then
    tar -tzf "$archive" >/dev/null 2>&1 || styx_die "sync archive is not a valid tar.gz"
    new_sha=$(styx_sha256 "$archive")
    while IFS= read -r p; do
      styx_sudo test -e "$p" || styx_sudo test -L "$p" || n_missing=$((n_missing + 1))
    done <"$new_manifest"
    if [[ $new_sha == "$old_sha" && $n_missing -eq 0 ]]; then
      styx_log INFO "archive unchanged (sha256 $new_sha), not extracting"
    else
      [[ $n_missing -eq 0 ]] || styx_log INFO "$n_missing manifest path(s) missing on the node"
      styx_log INFO "extracting archive (sha256 $new_sha) into /"
      styx_run styx_sudo tar -xzf "$archive" -C / --no-overwrite-dir
      extracted=1
    fi
  else
    [[ $n_new -eq 0 ]] || styx_die "STYX_SYNC_MANIFEST lists $n_new paths but no archive was given"
    new_sha=""
  fi

  LC_ALL=C comm -23 "$old_manifest" "$new_manifest" >"$stale_file"
  while IFS= read -r p; do
    [[ -n $p ]] || continue
    if styx_sudo test -e "$p" || styx_sudo test -L "$p"; then
      styx_log INFO "removing stale synced path $p"
      remove_path "$p"
      n_stale=$((n_stale + 1))
    fi
  done <"$stale_file"

  styx_state_dir >/dev/null
  styx_sudo install -d -m 0755 -- "$(dirname -- "$STYX_SYNC_STATE")"
  styx_write_file_if_changed "$STYX_SYNC_STATE" 0644 <"$new_manifest"
  if [[ -n $new_sha ]]; then
    styx_write_file_if_changed "$sha_file" 0644 <<<"$new_sha"
  else
    styx_sudo rm -f -- "$sha_file"
  fi

  if [[ $extracted -eq 0 && $n_stale -eq 0 ]]; then
    if [[ -z $new_sha ]]; then
      styx_result skipped "nothing to sync"
    else
      styx_result skipped "$n_new paths up to date (sha256 ${new_sha:0:12})"
    fi
  elif [[ $extracted -eq 1 ]]; then
    styx_result ok "extracted $n_new paths (sha256 ${new_sha:0:12}), removed $n_stale stale"
  else
    styx_result ok "removed $n_stale stale paths"
  fi
}

main "$@"
