#!/usr/bin/env bash
# Prints the path of a python3 that can import torch (Debian's /usr/bin/python3 first:
# the python3 first on PATH may be a separate build without Debian's packages).
for py in /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
  if [ -n "$py" ] && [ -x "$py" ] && "$py" -c "import torch, numpy" >/dev/null 2>&1; then
    echo "$py"
    exit 0
  fi
done
echo "find_python: no python3 with torch and numpy (run scripts/dev/install_deps.sh)" >&2
exit 1
