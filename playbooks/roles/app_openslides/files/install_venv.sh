#!/bin/sh
# install_venv.sh VENV BOOTSTRAP REQUIREMENTS PYTHON [PIP ARGS...]
# Installs a pinned package set into the shared virtualenv VENV, one install at a time:
# tenants of one version share it, and their playbooks may run at the same moment.
#   BOOTSTRAP     pip, setuptools and wheel, pinned with hashes, installed first: the
#                 venv's own pip may fall back to `setup.py install` without wheel.
#   REQUIREMENTS  the app's complete set (every dependency, pinned, with hashes),
#                 installed with --no-deps: nothing is resolved on the host, and sdists
#                 are built with the bootstrap's setuptools and wheel (no isolation,
#                 so no unpinned build dependency is fetched).
# The marker VENV/.osp-ops-installed is a copy of both files, written when the install
# succeeded. Prints "installed" when it changed something, "up to date" otherwise.
set -eu
venv=$1 bootstrap=$2 requirements=$3 python=$4
shift 4
exec 9>"$venv.lock"
flock 9
want="$venv.installed.tmp"
cat "$bootstrap" "$requirements" >"$want"
if [ -f "$venv/.osp-ops-installed" ] && cmp -s "$want" "$venv/.osp-ops-installed"; then
  rm -f "$want"
  echo "up to date"
  exit 0
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/python -m pip --disable-pip-version-check --no-input"
$pip install --require-hashes --no-deps -r "$bootstrap" "$@"
$pip install --require-hashes --no-deps --no-build-isolation --prefer-binary -r "$requirements" "$@"
mv "$want" "$venv/.osp-ops-installed"
echo "installed"
