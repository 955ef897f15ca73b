#!/usr/bin/env bash
# The offline bundle for a dom0 with no network: xentui's wheel and every wheel it needs, for the dom0's Python,
# and an install script; one tarball, built on any machine that reaches a package index.
#
#   bash bundle/make.sh [--python 3.11] [--platform manylinux2014_x86_64] [--out DIR]
#
# --python and --platform are the dom0's (`python3 --version`, `uname -m`): pip downloads the binary wheels for
# that Python there (psutil's is compiled), whatever this machine runs. The libvirt extra is left out:
# libvirt-python has no wheels; on a libvirt host use the distribution's python3-libvirt (see the README).
# Prints the tarball's path and size, and its sha256 for the copy.
set -euo pipefail
cd "$(dirname "$0")/.."

python_version=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
platform="manylinux2014_$(uname -m)"
out=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --python) python_version=$2; shift 2 ;;
        --platform) platform=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "make.sh: unknown option $1 (--python X.Y, --platform TAG, --out DIR)" >&2; exit 2 ;;
    esac
done

version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
name="xentui-offline-$version-py$python_version-$platform"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/$name"
mkdir -p "$stage/wheels" "$out"

# xentui's own wheel, from this checkout
python3 -m pip wheel -q --no-deps --no-build-isolation -w "$stage/wheels" . 2>/dev/null \
    || python3 -m pip wheel -q --no-deps -w "$stage/wheels" .
# its dependencies, binary wheels for the dom0's Python and platform (never built there: the dom0 has no compiler)
deps=$(python3 - <<'PY'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
)
mapfile -t requirements <<<"$deps"
python3 -m pip download -q --only-binary=:all: --python-version "$python_version" --platform "$platform" \
    --platform manylinux_2_17_"${platform##*_}" --platform any -d "$stage/wheels" "${requirements[@]}"

cp bundle/install.sh "$stage/install.sh"
chmod +x "$stage/install.sh"
cat > "$stage/README.txt" <<TXT
xentui $version, offline bundle for Python $python_version on $platform.

On the dom0, as root, with no network:   tar xzf $name.tar.gz && $name/install.sh
Then:                                    xentui            (the xl backend: this dom0's domains)

install.sh puts xentui in /opt/xentui (a venv when python3 -m venv works, else the wheels unpacked beside a
launcher) and /usr/local/bin/xentui; --prefix DIR and --bin DIR change them; --uninstall removes both.
Nothing is fetched: pip runs with --no-index from wheels/ here.
TXT
(cd "$stage/wheels" && sha256sum ./*.whl > ../SHA256SUMS)
tar -C "$work" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz: $(du -h "$out/$name.tar.gz" | cut -f1), $(ls "$stage/wheels" | wc -l) wheels"
sha256sum "$out/$name.tar.gz"
