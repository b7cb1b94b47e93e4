#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then use what was installed as a
# user would: the layout, the executable finding the lessons from any folder,
# the module in a stock lua5.4, and examples/embed.c compiled against the
# installed pkg-config file.
#   install_test.sh BUILD_DIR SOURCE_DIR
# Sanitized builds set LR_EXTRA_CFLAGS (added when compiling embed.c) and
# LR_LUA_ENV (VAR=value words for the stock lua5.4: the ASan preload).
# Checks are written as strings that expect/check eval later, when the
# variables they name are set:
# shellcheck disable=SC2016,SC2034
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
P=$TMP/prefix

. "$HERE/../lib.sh"  # check, ge, in_range; counts in passed and failed

cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1 ||
  { cat "$TMP/install.log"; echo "FAIL cmake --install"; exit 1; }
echo "ok   cmake --install --prefix $P"

# lib, or lib64 / lib/<multiarch> depending on GNUInstallDirs
pc=$(cd "$P" && find . -path '*/pkgconfig/lessonrun.pc' | head -n1)
libdir=${pc#./}
libdir=${libdir%/pkgconfig/lessonrun.pc}
libdir=${libdir:-lib}
export PKG_CONFIG_PATH="$P/$libdir/pkgconfig"

# points_into_prefix FLAGS: some -I is $P/include and some -L is $P/$libdir
# (compared as real paths: ${pcfiledir}/../.. is fine)
points_into_prefix() {
  local inc=no lib=no f
  for f in $1; do
    case $f in
      -I*) [ "$(realpath -m "${f#-I}")" = "$(realpath -m "$P/include")" ] && inc=yes ;;
      -L*) [ "$(realpath -m "${f#-L}")" = "$(realpath -m "$P/$libdir")" ] && lib=yes ;;
    esac
  done
  [ "$inc" = yes ] && [ "$lib" = yes ]
}

# ---- layout -------------------------------------------------------------------
check "lib/pkgconfig/lessonrun.pc ($libdir)" [ -n "$pc" ]
for f in bin/lessonrun "$libdir/lua/5.4/lessonrun.so" "$libdir/liblessonrun.a" include/lessonrun.h \
         "$libdir/pkgconfig/lessonrun.pc" share/lua/5.4/lessonrun/api.lua \
         share/lessonrun/sync.lua share/lessonrun/async.lua; do
  check "installed $f" [ -f "$P/$f" ]
done
check "bin/lessonrun is executable" [ -x "$P/bin/lessonrun" ]
check "every lua/ source is installed under share/lua/5.4" \
  eval 'for f in "$SRC"/lua/lessonrun/*.lua; do [ -f "$P/share/lua/5.4/lessonrun/$(basename "$f")" ] || exit 1; done'
check "every lesson is installed under share/lessonrun" \
  eval 'for f in "$SRC"/scripts/*.lua; do cmp -s "$f" "$P/share/lessonrun/$(basename "$f")" || exit 1; done'

# ---- the installed executable ------------------------------------------------------
mkdir "$TMP/cwd"
cd "$TMP/cwd"
set +e
"$P/bin/lessonrun" async.lua >out 2>err
rc=$?
set -e
cat out err
check "installed lessonrun runs async.lua from another folder (share/lessonrun)" \
  eval '[ "$rc" -eq 0 ] && grep -q "^Task C finished after 3 seconds$" out && grep -q "^Total time: " out'
"$P/bin/lessonrun" missing.lua 2>err || true
check "a missing script names the installed lessons folder" grep -q "in $P/bin/../share/lessonrun" err
where=$("$P/bin/lessonrun" -e 'print(select(2, package.searchers[2]("lessonrun.api")))' 2>&1 || true)
check "installed lessonrun finds its Lua sources in the installed folder ($where)" eval '[[ "$where" == "$P/"* ]]'
# the installed file is the built-in text, so the built-in bytecode serves
# (no parsing at start-up); an edited file takes effect at once
src_of_gather='print(debug.getinfo(gather, "S").source)'
got=$("$P/bin/lessonrun" -e "$src_of_gather" 2>&1 || true)
check "an unedited installed api.lua is served from the built-in bytecode ($got)" \
  [ "$got" = "@lessonrun/api.lua" ]
api="$P/share/lua/5.4/lessonrun/api.lua"
cp "$api" "$TMP/api.lua.orig"
{ echo 'EDITED_API = "yes"'; cat "$TMP/api.lua.orig"; } >"$api"
got=$("$P/bin/lessonrun" -e "$src_of_gather; print(EDITED_API)" 2>&1 | tr '\n' ' ' || true)
check "an edited installed api.lua takes effect ($got)" \
  eval '[[ "$got" == "@$P/"*"/share/lua/5.4/lessonrun/api.lua yes " ]]'
cp "$TMP/api.lua.orig" "$api"

# ---- the installed module in a stock lua5.4 --------------------------------------
if command -v lua5.4 >/dev/null; then
  # shellcheck disable=SC2086 # LR_LUA_ENV is a list of words
  got=$(env ${LR_LUA_ENV:-} LUA_CPATH="$P/$libdir/lua/5.4/?.so" LUA_PATH="$P/share/lua/5.4/?.lua" lua5.4 -e '
    local lr = require "lessonrun"
    print(lr.gather(function() lr.sleep(0.01) return "installed" end, function() return "module" end))' 2>&1 || true)
  check "the installed module works in lua5.4 ($got)" [ "$got" = $'installed\tmodule' ]
fi

# ---- embed.c against the installed pkg-config file ---------------------------------
# the .pc finds its prefix from where it lies (CHANGELOG.md, fixed,
# "lessonrun.pc prefix"), so it must point into $P, not the configure-time prefix
cflags=$(pkg-config --cflags --libs lessonrun)
check "the installed lessonrun.pc points into the prefix it was installed to" \
  points_into_prefix "$cflags"
echo "pkg-config --cflags --libs lessonrun: $cflags"
# shellcheck disable=SC2086 # word splitting of the flags is meant
if cc ${LR_EXTRA_CFLAGS:-} "$SRC/examples/embed.c" -o "$TMP/embed" $cflags >"$TMP/cc.log" 2>&1; then
  echo "ok   examples/embed.c compiles and links against the installed library"
  out=$("$TMP/embed" 2>&1 || true)
  echo "$out"
  check "the embedding example runs" eval '[[ "$out" == *"tea and toast from C"* && "$out" == *"burnt toast"* ]]'
else
  cat "$TMP/cc.log"
  echo "FAIL examples/embed.c compiles and links against the installed library"
  failed=$((failed + 1))
fi

[ "$failed" -eq 0 ]
