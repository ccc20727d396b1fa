#!/usr/bin/env bash
# styx phase: env_vars -- write the cluster environment file and make login
# shells source it.
#
# Environment:
#   STYX_ENV_FILE        target file (default /etc/styx/env.sh), mode 0600
#   STYX_ENV_FILE_OWNER  owner of the env file (default: the user running the
#                        phase, i.e. root, or the SSH user when it is not root,
#                        so that its login shells and Ray can read it)
#   STYX_ENV_CONTENT     full file content, lines `export K='v'`; may contain
#                        secrets: it is never printed or logged. Empty and no
#                        file yet -> skipped; empty with a file -> file emptied.
#   STYX_PROFILE_DIR     (lib.sh) login snippet dir: writes styx-env.sh there
#
# stdout: `styx env_vars: ok|skipped: ...` (variable count only, no values)
: "${STYX_PHASE:=env_vars}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_ENV_FILE=${STYX_ENV_FILE:-/etc/styx/env.sh}
STYX_ENV_FILE_OWNER=${STYX_ENV_FILE_OWNER:-$(id -un)}
STYX_ENV_CONTENT=${STYX_ENV_CONTENT:-}
ENV_PROFILE="$STYX_PROFILE_DIR/styx-env.sh"

main() {
  local changed=0 nvars file=$STYX_ENV_FILE profile
  [[ $file == /* ]] || styx_die "STYX_ENV_FILE must be an absolute path"
  if [[ -z $STYX_ENV_CONTENT ]] && ! styx_sudo test -e "$file"; then
    styx_result skipped "no environment variables configured"
    return 0
  fi
  nvars=$(printf '%s\n' "$STYX_ENV_CONTENT" | grep -cE '^[[:space:]]*(export[[:space:]]+)?[A-Za-z_][A-Za-z0-9_]*=' || true)

  # the content goes through stdin only: never on a command line, never logged
  if [[ -z $STYX_ENV_CONTENT ]]; then
    styx_write_file_if_changed "$file" 0600 "$STYX_ENV_FILE_OWNER" </dev/null
  else
    styx_write_file_if_changed "$file" 0600 "$STYX_ENV_FILE_OWNER" < <(printf '%s\n' "${STYX_ENV_CONTENT%$'\n'}")
  fi
  [[ $STYX_LAST_CHANGED -eq 0 ]] || changed=1

  profile=$(printf '%s\n' \
    '# managed by styx (env_vars): cluster environment for login shells' \
    "if [ -r '$file' ]; then . '$file'; fi")
  styx_write_file_if_changed "$ENV_PROFILE" 0644 <<<"$profile"
  [[ $STYX_LAST_CHANGED -eq 0 ]] || changed=1

  if [[ $changed -eq 1 ]]; then
    styx_result ok "wrote $file ($nvars variables) and $ENV_PROFILE"
  else
    styx_result skipped "$file unchanged ($nvars variables)"
  fi
}

# styx drift: the env file's content hash (never its content) and the profile
check_drift() {
  local -a problems=()
  local want have
  if [[ -z $STYX_ENV_CONTENT ]]; then
    want=$(printf '' | sha256sum | awk '{print $1}')
  else
    want=$(printf '%s\n' "${STYX_ENV_CONTENT%$'\n'}" | sha256sum | awk '{print $1}')
  fi
  if ! styx_sudo test -f "$STYX_ENV_FILE"; then
    problems+=("$STYX_ENV_FILE missing")
  else
    have=$(styx_sudo cat -- "$STYX_ENV_FILE" | sha256sum | awk '{print $1}')
    [[ $have == "$want" ]] || problems+=("$STYX_ENV_FILE content changed (sha256 ${have:0:12}, want ${want:0:12})")
  fi
  [[ -f $ENV_PROFILE ]] || problems+=("$ENV_PROFILE missing")
  styx_verdict "$STYX_ENV_FILE matches (sha256 ${want:0:12})" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
