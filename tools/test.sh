#!/usr/bin/env bash
# Install everything the test suite needs and run all of it (fast, slow and GUI tests).
# Works on a fresh Debian/Ubuntu machine; system packages are installed when running as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v xvfb-run >/dev/null 2>&1 || ! ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq xvfb xauth libgl1-mesa-dri libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 \
            libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
            libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 >/dev/null
    else
        echo "xvfb-run and Mesa are missing: install xvfb and libgl1-mesa-dri (needs root)" >&2
        exit 1
    fi
fi

# torch==2.13.0: the CPU build (a bare 'torch' would pull several GB of CUDA wheels from PyPI).
python3 -m pip install -q "torch==2.13.0" -e ".[testing]"

export QT_QPA_PLATFORM=xcb
xvfb-run -a -s "-screen 0 1280x1024x24" python3 -m pytest -q -p no:cacheprovider "$@"
