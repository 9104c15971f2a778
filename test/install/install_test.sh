#!/usr/bin/env bash
# Installs the built kvcore into a scratch prefix, then builds and runs a small
# program out of tree with nothing but `pkg-config --cflags --libs kvcore`.
set -euo pipefail
build="$1"
dest="$(mktemp -d "${TMPDIR:-/tmp}/kvcore-install-XXXXXX")"
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --no-rebuild --destdir "$dest" --quiet >/dev/null
prefix="$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')"
libdir="$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"))')"
case "$libdir" in /*) ;; *) libdir="$prefix/$libdir" ;; esac

# An application linking a sanitized libkvcore must be built with the same
# sanitizers (their runtime has to come first).
sanitize="$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="b_sanitize"))')"
san_flags=""
[ "$sanitize" != "none" ] && san_flags="-fsanitize=$sanitize"

export PKG_CONFIG_PATH="$dest$libdir/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"
flags="$(pkg-config --cflags --libs kvcore)"
echo "pkg-config kvcore: $flags"

cat >"$dest/app.cpp" <<'CPP'
#include <cstdio>
#include <kvcore/engine/registry.hpp>
#include <kvcore/status.hpp>
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto engine = kvcore::open_engine(kvcore::default_engine, argv[1]);
  if (!engine.is_ok()) { std::puts(engine.status().to_string().c_str()); return 1; }
  auto batch = (*engine)->new_write_batch();
  batch->put(kvcore::CF::kDefault, "hello", "world");
  if (!(*engine)->write(*batch, {.sync = true}).is_ok()) return 1;
  auto v = (*engine)->get(kvcore::CF::kDefault, "hello");
  if (!v.is_ok() || !v->has_value() || **v != "world") return 1;
  std::printf("installed kvcore %s works (%s engine)\n", KVCORE_VERSION, KVCORE_DEFAULT_ENGINE_NAME);
  return 0;
}
CPP
# shellcheck disable=SC2086
c++ -std=c++20 $san_flags "$dest/app.cpp" -o "$dest/app" $flags
LD_LIBRARY_PATH="$dest$libdir" "$dest/app" "$dest/data"
