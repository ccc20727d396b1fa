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
#                       (default $STYX_STATE_DIR/file_sync/manifest; the
#                       archive's sha256 is kept in <STATE>.sha256). The
#                       record of an earlier styx ($STYX_STATE_DIR/
#                       file_sync.manifest, mount roots) is taken over and
#                       removed, so that styx's old undo finds nothing to do.
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
STYX_SYNC_STATE=${STYX_SYNC_STATE:-$STYX_STATE_DIR/file_sync/manifest}
LEGACY_STATE=$STYX_STATE_DIR/file_sync.manifest

# check_paths manifest-file: every path absolute, normalised and inside a root
# (one awk pass: trees of 10,000s of files)
check_paths() {
  local bad
  bad=$(awk -v roots="$STYX_SYNC_ROOTS" '
    BEGIN { n = split(roots, r, "\n") }
    {
      p = $0
      if (p !~ /^\// || p ~ /\/\.\.\// || p ~ /\/\.\.$/ || p ~ /\/\.\// || p ~ /\/\//) { print "not a normalised absolute path: " p; exit }
      ok = 0
      for (i = 1; i <= n; i++) if (r[i] != "" && (p == r[i] || index(p, r[i] "/") == 1)) { ok = 1; break }
      if (!ok) { print "outside the file mounts: " p; exit }
    }' "$1")
  [[ -z $bad ]] || styx_die "archive member $bad"
}

# count_missing manifest-file: how many listed paths do not exist (one root shell)
# shellcheck disable=SC2016 # the loop runs in the root shell
count_missing() {
  styx_sudo bash -c 'n=0; while IFS= read -r p; do [[ -e $p || -L $p ]] || n=$((n + 1)); done; echo "$n"' <"$1"
}

# remove_paths manifest-file: files and links first, then folders left empty;
# prints how many went (one root shell)
main() {
  local archive tmpdir new old stale sha_file old_sha="" got n_new n_stale=0 n_missing=0
  [[ -n $STYX_SYNC_ARCHIVE && -n $STYX_SYNC_SHA256 && -n $STYX_SYNC_ROOTS ]] ||
    styx_die "STYX_SYNC_ARCHIVE, STYX_SYNC_SHA256 and STYX_SYNC_ROOTS are required"
  archive=$STYX_SYNC_ARCHIVE
  [[ $archive == /* ]] || archive="$HOME/$archive"
  styx_mktemp_var tmpdir -d
  new="$tmpdir/manifest.new" old="$tmpdir/manifest.old" stale="$tmpdir/stale"
  sha_file="$STYX_SYNC_STATE.sha256"
  : >"$old"
  if styx_sudo test -f "$STYX_SYNC_STATE"; then
    styx_sudo cat -- "$STYX_SYNC_STATE" | LC_ALL=C sort -u >"$old"
  elif styx_sudo test -f "$LEGACY_STATE"; then
    styx_sudo cat -- "$LEGACY_STATE" | LC_ALL=C sort -u >"$old"
  fi
  if styx_sudo test -f "$sha_file"; then old_sha=$(styx_sudo cat -- "$sha_file"); fi

  if [[ $old_sha == "$STYX_SYNC_SHA256" ]]; then
    n_missing=$(count_missing "$old")
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
  check_paths "$new"
  n_new=$(wc -l <"$new")

  LC_ALL=C comm -23 "$old" "$new" >"$stale"
  if [[ -s $stale ]]; then
    n_stale=$(styx_remove_listed "$stale")
    styx_log INFO "removed $n_stale path(s) no longer synced"
  fi
  styx_log INFO "extracting $n_new paths (sha256 $STYX_SYNC_SHA256) into /"
  styx_run styx_sudo tar -xzf "$archive" -C / --no-overwrite-dir

  styx_state_dir >/dev/null
  styx_sudo install -d -m 0755 -- "$(dirname -- "$STYX_SYNC_STATE")"
  styx_write_file_if_changed "$STYX_SYNC_STATE" 0644 <"$new"
  styx_write_file_if_changed "$sha_file" 0644 <<<"$STYX_SYNC_SHA256"
  styx_sudo rm -f -- "$LEGACY_STATE" "$LEGACY_STATE.sha256"
  find "$(dirname -- "$archive")" -maxdepth 1 -name '*.tar.gz' ! -name "$STYX_SYNC_SHA256.tar.gz" -delete 2>/dev/null || true
  styx_result ok "extracted $n_new paths (sha256 ${STYX_SYNC_SHA256:0:12}), removed $n_stale stale"
}

# styx drift: the node records this archive, and every synced file still has
# the archive's content and mode (`tar --diff`; times and owners are not
# compared); without the archive on the node, only that the paths exist
check_drift() {
  local archive=$STYX_SYNC_ARCHIVE recorded="" out n
  local -a problems=() paths=()
  [[ $archive == /* ]] || archive="$HOME/$archive"
  if styx_sudo test -f "$STYX_SYNC_STATE.sha256"; then recorded=$(styx_sudo cat -- "$STYX_SYNC_STATE.sha256"); fi
  [[ $recorded == "$STYX_SYNC_SHA256" ]] ||
    problems+=("node records sync $(printf '%.12s' "${recorded:-none}"), want ${STYX_SYNC_SHA256:0:12}")
  if [[ -f $archive ]]; then
    out=$(styx_sudo tar --diff -zf "$archive" -C / 2>&1 || true)
    mapfile -t paths < <(printf '%s\n' "$out" | sed -nE \
      -e 's#^tar: (.*): Warning: Cannot stat: No such file or directory$#/\1 missing#p' \
      -e 's#^(.*): (Contents differ|Size differs|Mode differs|Symlink differs|File type differs)$#/\1 (\2)#p' |
      awk '!seen[$0]++')
  elif styx_sudo test -f "$STYX_SYNC_STATE"; then
    # shellcheck disable=SC2016 # the inner script expands its own variables
    mapfile -t paths < <(styx_sudo bash -c 'while IFS= read -r p; do [[ -e $p || -L $p ]] || printf "%s missing\n" "$p"; done' <"$STYX_SYNC_STATE" 2>/dev/null)
    [[ ${#paths[@]} -gt 0 ]] || styx_log INFO "archive $archive gone: only checked that the synced paths exist"
  fi
  n=${#paths[@]}
  if [[ $n -gt 0 ]]; then
    if [[ $n -gt 5 ]]; then
      problems+=("${paths[@]:0:5}" "and $((n - 5)) more")
    else
      problems+=("${paths[@]}")
    fi
  fi
  styx_verdict "synced files match (sha256 ${STYX_SYNC_SHA256:0:12})" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
