#!/usr/bin/env bash
# Packs what a GPU machine may lack to build and run tipcap into one compressed file: the headers
# and shared libraries of HDF5, cJSON, OpenBLAS, LAPACKE and libstemmer with their dependency
# closure (minus glibc and the compiler's runtime; the CUDA toolkit and the driver are never in
# it), relocatable pkg-config files for them, pkgconf itself (for a machine without pkg-config)
# and the header-only cudnn-frontend when this machine has it. Made from this machine's Debian
# packages; `make gpu-bundle` runs it. On the GPU machine scripts/gpu-session.sh unpacks it and
# builds with DEPS_PREFIX=<the unpacked folder> (docs/BUILD.md).
# usage: scripts/gpu-bundle.sh OUT.tar.xz
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/gpu-bundle.sh OUT.tar.xz" >&2; exit 2; }
out=$(realpath -m "$1")
cd "$(dirname "$0")/.."

PKGS=(hdf5 libcjson openblas lapacke)  # pkg-config names; libstemmer has no .pc file
# glibc and the compiler's runtime: the GPU machine has its own, which its compiler links against
SYSTEM_LIBS='^(linux-vdso|ld-linux-x86-64|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libgcc_s|libstdc\+\+|libgomp)\.so'

missing=()
for p in "${PKGS[@]}"; do pkg-config --exists "$p" || missing+=("$p (pkg-config)"); done
[ -f /usr/include/libstemmer.h ] || missing+=("libstemmer.h")
for tool in dpkg-query patchelf readelf objdump xz; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "gpu-bundle: missing here: ${missing[*]} (scripts/install-deps.sh; apt-get install patchelf binutils xz-utils)" >&2
    exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/gpu-bundle
mkdir -p "$root/include" "$root/lib/pkgconfig" "$root/bin"

# Headers: every header of each library's Debian -dev package, in the layout of /usr/include
# without the multiarch folder.
owner() { dpkg-query -S "$(readlink -f "$1")" | head -n 1 | cut -d: -f1; }
debs=()
for p in "${PKGS[@]}"; do debs+=("$(owner "$(pkg-config --path "$p")")"); done
debs+=("$(owner /usr/include/libstemmer.h)")
for deb in "${debs[@]}"; do
    dpkg-query -L "$deb" | grep -E '^/usr/include/.+\.h$' | while read -r h; do
        rel=${h#/usr/include/}
        rel=${rel#x86_64-linux-gnu/}
        install -D -m 644 "$h" "$root/include/$rel"
    done
done

# Libraries: what a program linked against all five loads (ldd of a probe), each under its
# SONAME and with RUNPATH $ORIGIN, so that the bundle's libraries find one another; the
# development links (libhdf5.so, ...) name the SONAME the linker picks for each -l here.
libs="$(pkg-config --libs "${PKGS[@]}") -lstemmer"
echo 'int main(void) { return 0; }' > "$stage/probe.c"
# shellcheck disable=SC2086
gcc "$stage/probe.c" -o "$stage/probe" -Wl,--no-as-needed $libs
ldd "$stage/probe" | awk '/=>/ { print $1, $3 }' | while read -r soname path; do
    [[ $soname =~ $SYSTEM_LIBS ]] && continue
    cp -L "$path" "$root/lib/$soname"
    chmod 644 "$root/lib/$soname"
    patchelf --set-rpath '$ORIGIN' "$root/lib/$soname"
done
search_dirs=$(pkg-config --libs-only-L "${PKGS[@]}" | tr ' ' '\n' | sed -n 's/^-L//p'; \
              gcc -print-search-dirs | sed -n 's/^libraries: =//p' | tr ':' '\n')
for flag in $libs; do
    [[ $flag == -l* ]] || continue
    name=lib${flag#-l}.so
    for d in $search_dirs; do
        if [ -e "$d/$name" ]; then
            soname=$(readelf -d "$(readlink -f "$d/$name")" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
            [ -f "$root/lib/$soname" ] || { echo "gpu-bundle: $name ($soname) is not in the closure" >&2; exit 1; }
            ln -sf "$soname" "$root/lib/$name"
            break
        fi
    done
    [ -e "$root/lib/$name" ] || { echo "gpu-bundle: $name not found in $search_dirs" >&2; exit 1; }
done

# pkg-config files relative to their own folder, with this machine's flags mapped into the bundle.
for p in "${PKGS[@]}"; do
    cflags=$(pkg-config --cflags "$p" | sed -E 's#-I/usr/include/x86_64-linux-gnu/?#-I${includedir}/#g; s#-I/usr/include/?#-I${includedir}/#g; s#/( |$)#\1#g')
    lflags=$(pkg-config --libs "$p" | tr ' ' '\n' | grep '^-l' | tr '\n' ' ')
    cat > "$root/lib/pkgconfig/$p.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: $p
Description: $p from $(owner "$(pkg-config --path "$p")") $(dpkg-query -W -f '${Version}' "$(owner "$(pkg-config --path "$p")")") (tipcap gpu-bundle)
Version: $(pkg-config --modversion "$p")
Cflags: $cflags
Libs: -L\${libdir} $lflags
EOF
done

# pkgconf, for a machine without pkg-config
cp -L "$(command -v pkgconf)" "$root/bin/pkg-config"
patchelf --set-rpath '$ORIGIN/../lib' "$root/bin/pkg-config"
ldd "$(command -v pkgconf)" | awk '/=>/ { print $1, $3 }' | while read -r soname path; do
    [[ $soname =~ $SYSTEM_LIBS ]] || cp -L "$path" "$root/lib/$soname"
done
debs+=("$(owner "$(command -v pkgconf)")")

# cudnn-frontend (header-only) as scripts/install-deps.sh installs it: the wheel's include folder
frontend=$(ls /usr/local/include/cudnn_frontend.h /usr/include/cudnn_frontend.h 2>/dev/null | head -n 1 || true)
if [ -n "$frontend" ]; then
    dir=$(dirname "$frontend")
    cp -r "$dir"/cudnn_frontend.h "$dir"/cudnn_frontend_*.h "$dir"/cudnn_frontend "$dir"/cudnn_backend_base.h "$root/include/"
    frontend_version=$(sed -n 's/^#define CUDNN_FRONTEND_\(MAJOR\|MINOR\|PATCH\)_VERSION \([0-9]*\).*/\2/p' \
                       "$dir/cudnn_frontend_version.h" | paste -sd.)
else
    echo "gpu-bundle: no cudnn_frontend.h here (scripts/install-deps.sh installs it): the bundle goes without it"
fi

# What it holds, and the newest glibc symbol version it needs (scripts/gpu-session.sh checks it)
glibc=$(for f in "$root"/lib/*.so.* "$root/bin/pkg-config"; do objdump -T "$f"; done \
        | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sed 's/GLIBC_//' | sort -V | tail -n 1)
{
    echo "made: $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release; echo "$PRETTY_NAME")"
    echo "glibc: $glibc"
    echo "cudnn-frontend: ${frontend_version:-none}"
    for deb in "${debs[@]}"; do dpkg-query -W -f 'package: ${Package} ${Version}\n' "$deb"; done
    (cd "$root" && find lib bin -maxdepth 1 \( -type f -o -type l \) | sort | sed 's/^/file: /')
} > "$root/MANIFEST"

mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - gpu-bundle | xz -T2 -9 > "$out.tmp"
mv "$out.tmp" "$out"
echo "gpu-bundle: $out: $(du -k "$out" | cut -f1) KiB ($(du -sk "$root" | cut -f1) KiB unpacked, $(find "$root/lib" -name '*.so.*' | wc -l) libraries, needs glibc >= $glibc)"
