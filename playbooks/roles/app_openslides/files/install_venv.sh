#!/bin/sh
# install_venv.sh VENV REQUIREMENTS PYTHON [PIP ARGS...]
# Installs REQUIREMENTS into the shared virtualenv VENV, one install at a time: tenants
# of one version share it, and their playbooks may run at the same moment. The marker
# VENV/.osp-ops-installed is a copy of the requirements it was installed from.
# Prints "installed" when it changed something, "up to date" otherwise.
set -eu
venv=$1 requirements=$2 python=$3
shift 3
exec 9>"$venv.lock"
flock 9
if [ -f "$venv/.osp-ops-installed" ] && cmp -s "$requirements" "$venv/.osp-ops-installed"; then
  echo "up to date"
  exit 0
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" "$@"
cp "$requirements" "$venv/.osp-ops-installed.tmp"
mv "$venv/.osp-ops-installed.tmp" "$venv/.osp-ops-installed"
echo "installed"
