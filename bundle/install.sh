#!/bin/sh
# Install xentui from this offline bundle: no network, no compiler. Run as root on the dom0:
#   ./install.sh [--prefix /opt/xentui] [--bin /usr/local/bin] [--uninstall]
# A venv in PREFIX when `python3 -m venv` works there (Debian: python3-venv), pip installing from ./wheels with
# --no-index; otherwise the wheels are unpacked into PREFIX/lib and PREFIX/bin/xentui runs them with python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/xentui
bin=/usr/local/bin
uninstall=no
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --uninstall) uninstall=yes; shift ;;
        *) echo "install.sh: unknown option $1 (--prefix DIR, --bin DIR, --uninstall)" >&2; exit 2 ;;
    esac
done

if [ "$uninstall" = yes ]; then
    rm -rf "$prefix" && rm -f "$bin/xentui" && echo "xentui removed from $prefix and $bin" && exit 0
fi

command -v python3 >/dev/null || { echo "install.sh: python3 is needed (3.11 or newer)" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "install.sh: xentui needs Python 3.11 or newer; this is $(python3 --version)" >&2; exit 1; }
(cd "$here/wheels" && sha256sum -c --quiet ../SHA256SUMS) \
    || { echo "install.sh: a wheel does not match SHA256SUMS: the copy is damaged" >&2; exit 1; }

mkdir -p "$bin"
rm -rf "$prefix"
if [ "${XENTUI_NO_VENV:-}" != 1 ] && python3 -m venv "$prefix" 2>/dev/null && [ -x "$prefix/bin/pip" ]; then
    "$prefix/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$here/wheels" xentui
    ln -sf "$prefix/bin/xentui" "$bin/xentui"
    how="a venv"
else
    # no venv here (no python3-venv): the wheels unpacked, as pip would lay them out, and a launcher
    rm -rf "$prefix"
    mkdir -p "$prefix/lib" "$prefix/bin"
    for wheel in "$here"/wheels/*.whl; do
        python3 -m zipfile -e "$wheel" "$prefix/lib"
    done
    cat > "$prefix/bin/xentui" <<SH
#!/bin/sh
PYTHONPATH="$prefix/lib\${PYTHONPATH:+:\$PYTHONPATH}" exec python3 -P -m xentui "\$@"
SH
    chmod +x "$prefix/bin/xentui"
    ln -sf "$prefix/bin/xentui" "$bin/xentui"
    how="the wheels unpacked (no python3 -m venv here)"
fi
echo "xentui $("$bin/xentui" --version | cut -d' ' -f2) installed in $prefix ($how); run: xentui"
