#!/usr/bin/env bash
# styx phase: conda -- Miniforge (conda) and an optional named environment.
#
# Environment:
#   STYX_CONDA_ENABLED           0 (default -> skipped) | 1
#   STYX_CONDA_INSTALLER_URL     installer URL (default: Miniforge3 latest for
#                                this machine's architecture from GitHub;
#                                mirrors allowed)
#   STYX_CONDA_INSTALLER_SHA256  expected sha256 of the installer; verified
#                                when set, a mismatch fails the phase
#   STYX_CONDA_PREFIX            install prefix (default /opt/conda)
#   STYX_CONDA_ENV_NAME          environment to create (default: none)
#   STYX_CONDA_PYTHON            python version for that env (e.g. 3.11)
#   STYX_CONDA_PACKAGES          conda specs for that env, one per line (name,
#                                name=1.2, name==1.2.3, `numpy>=1.26,<2`); each
#                                line is one argument of conda create/install,
#                                exactly as written; a line starting with `-`
#                                is an option (`--channel=conda-forge`) given
#                                to both and not checked as a package
#   STYX_PROFILE_DIR             (lib.sh) writes styx-conda.sh there so login
#                                shells get the `conda` function
#
# Install is skipped when $STYX_CONDA_PREFIX/bin/conda exists; the env is
# created when missing; missing/mismatched packages are installed into it.
# stdout: `styx conda: ok|skipped: ...`
: "${STYX_PHASE:=conda}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_CONDA_ENABLED=${STYX_CONDA_ENABLED:-0}
STYX_CONDA_INSTALLER_URL=${STYX_CONDA_INSTALLER_URL:-https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-Linux-$(uname -m).sh}
STYX_CONDA_INSTALLER_SHA256=${STYX_CONDA_INSTALLER_SHA256:-}
STYX_CONDA_PREFIX=${STYX_CONDA_PREFIX:-/opt/conda}
STYX_CONDA_ENV_NAME=${STYX_CONDA_ENV_NAME:-}
STYX_CONDA_PYTHON=${STYX_CONDA_PYTHON:-}
STYX_CONDA_PACKAGES=${STYX_CONDA_PACKAGES:-}
CONDA_PROFILE="$STYX_PROFILE_DIR/styx-conda.sh"

CHANGES=()
SPECS=() # package specs of STYX_CONDA_PACKAGES
OPTS=()  # its option lines

conda_bin() { printf '%s/bin/conda\n' "$STYX_CONDA_PREFIX"; }

install_conda() {
  local tmpdir installer
  if [[ -x $(conda_bin) ]]; then
    styx_log INFO "conda already installed at $STYX_CONDA_PREFIX"
    return 0
  fi
  [[ -n $STYX_CONDA_INSTALLER_SHA256 ]] ||
    styx_log WARN "STYX_CONDA_INSTALLER_SHA256 not set: installer integrity is not verified"
  styx_have curl || styx_have wget || styx_apt_install curl ca-certificates
  styx_mktemp_var tmpdir -d
  installer="$tmpdir/conda-installer.sh"
  styx_download "$STYX_CONDA_INSTALLER_URL" "$installer" "$STYX_CONDA_INSTALLER_SHA256"
  styx_sudo install -d -m 0755 -- "$(dirname -- "$STYX_CONDA_PREFIX")"
  # -u: also completes a previously interrupted install into an existing prefix
  styx_run styx_sudo bash "$installer" -b -u -p "$STYX_CONDA_PREFIX"
  [[ -x $(conda_bin) ]] || styx_die "installer finished but $(conda_bin) is missing"
  CHANGES+=("installed conda into $STYX_CONDA_PREFIX")
}

# specs (from STYX_CONDA_PACKAGES) not installed in the env, on stdout
missing_packages() {
  local listing spec name ver have
  listing=$(styx_sudo "$(conda_bin)" list -n "$STYX_CONDA_ENV_NAME" 2>>"$(styx_log_file)") ||
    styx_die "conda list -n $STYX_CONDA_ENV_NAME failed (see $(styx_log_file))"
  for spec in "${SPECS[@]}"; do
    name=${spec%%[=<>!~ ]*}
    ver=${spec#"$name"}
    ver=${ver#==}
    ver=${ver#=}
    have=$(awk -v n="$name" '$1 == n {print $2; exit}' <<<"$listing")
    if [[ -z $have ]]; then
      printf '%s\n' "$spec"
    elif [[ -n $ver && $ver != *[\<\>\!~,*]* && $have != "$ver" && $have != "$ver".* ]]; then
      printf '%s\n' "$spec"
    fi
  done
}

# STYX_CONDA_PACKAGES, one argument per line, into SPECS and OPTS
read_specs() {
  local -a lines
  local l
  mapfile -t lines < <(printf '%s' "$STYX_CONDA_PACKAGES")
  for l in "${lines[@]}"; do
    if [[ $l == -* ]]; then OPTS+=("$l"); else SPECS+=("$l"); fi
  done
}

ensure_env() {
  local -a pkgs missing=()
  [[ -n $STYX_CONDA_ENV_NAME ]] || return 0
  read_specs
  pkgs=("${SPECS[@]}")
  [[ -z $STYX_CONDA_PYTHON ]] || pkgs=("python=$STYX_CONDA_PYTHON" "${pkgs[@]}")
  if [[ ! -d $STYX_CONDA_PREFIX/envs/$STYX_CONDA_ENV_NAME ]]; then
    styx_run styx_sudo "$(conda_bin)" create -y -q -n "$STYX_CONDA_ENV_NAME" "${OPTS[@]}" "${pkgs[@]}"
    CHANGES+=("created env $STYX_CONDA_ENV_NAME")
    return 0
  fi
  mapfile -t missing < <(missing_packages)
  if [[ ${#missing[@]} -gt 0 ]]; then
    styx_run styx_sudo "$(conda_bin)" install -y -q -n "$STYX_CONDA_ENV_NAME" "${OPTS[@]}" "${missing[@]}"
    CHANGES+=("installed ${missing[*]} into env $STYX_CONDA_ENV_NAME")
  else
    styx_log INFO "env $STYX_CONDA_ENV_NAME has all requested packages"
  fi
}

main() {
  case $STYX_CONDA_ENABLED in
    0 | false | no | "") styx_result skipped "conda disabled (STYX_CONDA_ENABLED=0)"; return 0 ;;
    1 | true | yes) ;;
    *) styx_die "STYX_CONDA_ENABLED must be 0 or 1, got '$STYX_CONDA_ENABLED'" ;;
  esac
  [[ $STYX_CONDA_PREFIX == /* ]] || styx_die "STYX_CONDA_PREFIX must be an absolute path"
  install_conda
  ensure_env
  styx_write_file_if_changed "$CONDA_PROFILE" 0644 < <(printf '%s\n' \
    '# managed by styx (conda): the conda shell function for login shells' \
    "if [ -f '$STYX_CONDA_PREFIX/etc/profile.d/conda.sh' ]; then . '$STYX_CONDA_PREFIX/etc/profile.d/conda.sh'; fi")
  [[ $STYX_LAST_CHANGED -eq 0 ]] || CHANGES+=("wrote $CONDA_PROFILE")

  local version env_note=""
  version=$("$(conda_bin)" --version 2>/dev/null | awk '{print $2}') || version=unknown
  [[ -z $STYX_CONDA_ENV_NAME ]] || env_note=", env $STYX_CONDA_ENV_NAME"
  if [[ ${#CHANGES[@]} -eq 0 ]]; then
    styx_result skipped "conda $version at $STYX_CONDA_PREFIX up to date$env_note"
  else
    local joined
    printf -v joined '%s; ' "${CHANGES[@]}"
    styx_result ok "conda $version at $STYX_CONDA_PREFIX$env_note: ${joined%; }"
  fi
}

# styx drift: conda at its prefix, the env and its packages present
check_drift() {
  local -a problems=() missing
  case $STYX_CONDA_ENABLED in 1 | true | yes) ;; *) styx_verdict "conda disabled"; return 0 ;; esac
  if [[ ! -x $(conda_bin) ]]; then
    styx_verdict "" "conda missing at $STYX_CONDA_PREFIX"
    return 0
  fi
  mapfile -t SPECS < <(printf '%s' "$STYX_CONDA_PACKAGES")
  if [[ -n $STYX_CONDA_ENV_NAME ]]; then
    if [[ ! -d $STYX_CONDA_PREFIX/envs/$STYX_CONDA_ENV_NAME ]]; then
      problems+=("env $STYX_CONDA_ENV_NAME missing")
    else
      mapfile -t missing < <(missing_packages)
      [[ ${#missing[@]} -eq 0 ]] || problems+=("env $STYX_CONDA_ENV_NAME lacks ${missing[*]}")
    fi
  fi
  styx_verdict "conda at $STYX_CONDA_PREFIX${STYX_CONDA_ENV_NAME:+, env $STYX_CONDA_ENV_NAME}" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
