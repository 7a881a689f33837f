#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with pinned versions.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh test     runtime + test tools
#   scripts/setup.sh [test] confirm   also the photographs of config/confirm.yaml (as root; or set
#                             METADIP_CONFIRM_DATA=1)
# Needs Python 3.11 with venv. Re-running is cheap: nothing is reinstalled when pyproject.toml
# and envs/constraints.txt are unchanged since the last successful install.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."
confirm_data="${METADIP_CONFIRM_DATA:-0}"
args=()
for arg in "$@"; do
  if [ "$arg" = confirm ]; then confirm_data=1; else args+=("$arg"); fi
done
extras="${args[0]:-}"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3
"$py" -c 'import sys; assert sys.version_info >= (3, 11), "metadip needs Python >= 3.11"' \
  || { echo "setup: $py is older than 3.11; install python3.11 (apt-get install python3.11-venv) or set PYTHON=" >&2; exit 1; }
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's python3-venv (Python's venv module is missing)" >&2
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "setup: Python's venv module is missing; on Debian run: sudo apt-get install python3-venv" >&2; exit 1
  fi
fi
# The default dataset's real photographs (Debian package, ~16 MB); optional when not root.
if [ ! -d /usr/share/backgrounds ] || ! ls /usr/share/backgrounds/*_by_*.jpg >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's lomiri-wallpapers-16.04 (photographs of the default dataset)" >&2
    { apt-get install -y -qq lomiri-wallpapers-16.04 || { apt-get update -qq && apt-get install -y -qq lomiri-wallpapers-16.04; }; } >/dev/null
  else
    echo "setup: warning: /usr/share/backgrounds is missing; run 'sudo apt-get install lomiri-wallpapers-16.04' for the default 'wallpapers' dataset" >&2
  fi
fi
# Opt-in: the photographs of the one-time confirmatory run (config/confirm.yaml, docs/datasets.md;
# Debian packages, ~300 MB to fetch). Never lomiri-wallpapers-20.04: its *_by_*.jpg files would join
# the default 'wallpapers' dataset.
if [ "$confirm_data" = 1 ]; then
  confirm_files="/usr/share/lxqt/wallpapers/flowers.png /usr/share/wallpapers/Path/contents/images/2560x1600.jpg
    /usr/share/backgrounds/mate/nature/Storm.jpg /usr/share/doc/opencv-doc/examples/text/scenetext01.jpg"
  confirm_pkgs="lxqt-themes plasma-workspace-wallpapers mate-backgrounds opencv-doc"
  if ! ls $confirm_files >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "setup: installing Debian's $confirm_pkgs (photographs of config/confirm.yaml)" >&2
      { apt-get install -y -qq --no-install-recommends $confirm_pkgs \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $confirm_pkgs; }; } >/dev/null
      ls $confirm_files >/dev/null 2>&1 \
        || echo "setup: warning: photographs of config/confirm.yaml still missing (does dpkg exclude /usr/share/doc here?)" >&2
    else
      echo "setup: warning: photographs of config/confirm.yaml are missing; run 'sudo apt-get install $confirm_pkgs'" >&2
    fi
  fi
fi
stamp=.venv/.installed
want="$(cat pyproject.toml envs/constraints.txt | sha256sum | cut -c1-16) extras=${extras}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# A C++ compiler and this Python's headers, for the compiled solver steps (evaluate.compile); optional:
# without them the solvers run eager.
pyh=$("$py" -c 'import sysconfig, os; print(int(os.path.isfile(os.path.join(sysconfig.get_path("include"), "Python.h"))))')
if ! command -v g++ >/dev/null || [ "$pyh" = 0 ]; then
  pydev=$("$py" -c 'import sys; print(f"python{sys.version_info.major}.{sys.version_info.minor}-dev")')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's g++ and $pydev (for the compiled solver steps)" >&2
    { apt-get install -y -qq g++ "$pydev" || { apt-get update -qq && apt-get install -y -qq g++ "$pydev"; }; } >/dev/null \
      || echo "setup: warning: could not install g++ and $pydev; the solvers will run eager" >&2
  else
    echo "setup: warning: g++ or Python's headers are missing; run 'sudo apt-get install g++ $pydev' for the compiled solver steps (they run eager without)" >&2
  fi
fi
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
# pip runs quietly; what it is doing is said here, with a line every 15 s while it installs.
expected=$(( $(grep -c '^[A-Za-z0-9]' envs/constraints.txt) + 3 ))  # the pins (all extras), pip, setuptools, metadip
echo "setup: installing metadip${extras:+[$extras]} and about ${expected} pinned packages into .venv, torch the largest" \
  "(~190 MB as the CPU build); a few minutes (4 to 7 on 2 cores shared with other jobs), a line every 15 s" >&2
elapsed() { printf '%d:%02d' $(( SECONDS / 60 )) $(( SECONDS % 60 )); }
installed() { find .venv/lib -maxdepth 3 -name '*.dist-info' -type d 2>/dev/null | wc -l; }
(
  while sleep 15 >/dev/null 2>&1; do  # sleep holds no pipe open once the ticker is killed
    echo "setup: $(installed) of about ${expected} packages in .venv, $(elapsed) elapsed" >&2
  done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $py" >&2
  "$py" -m venv .venv
fi
echo "setup: upgrading pip" >&2
.venv/bin/python -m pip install --quiet --upgrade pip
echo "setup: resolving, fetching and installing the pinned packages" >&2
.venv/bin/python -m pip install --quiet -c envs/constraints.txt -e "$spec"
echo "$want" > "$stamp"
echo "setup: done, $(installed) packages in .venv, $(elapsed) in all" >&2
