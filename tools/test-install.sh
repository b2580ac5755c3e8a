#!/bin/bash
# `make install` into a scratch DESTDIR (the debug build), then check what a user gets:
# every file in place, each man page renders with man(1) without warnings, and bash
# completion offers patina's commands and a command's flags.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(mktemp -d /tmp/patina-install-test.XXXXXX)
trap 'rm -rf "$dest"' EXIT
prefix=/usr
make -s install DESTDIR="$dest" PREFIX="$prefix" PROFILE=dev >/dev/null
root=$dest$prefix
failed=0
fail() { echo "test-install: FAIL: $*"; failed=$((failed + 1)); }

for f in bin/patina bin/patina-imagetool bin/containerd-shim-patina-v2 \
    share/man/man8/patina.8 share/man/man8/patina-create.8 share/man/man8/patina-update.8 \
    share/man/man8/containerd-shim-patina-v2.8 share/man/man1/patina-imagetool.1 \
    share/man/man1/patina-imagetool-unpack.1 \
    share/bash-completion/completions/patina share/bash-completion/completions/patina-imagetool \
    share/zsh/site-functions/_patina share/zsh/site-functions/_patina-imagetool \
    share/fish/vendor_completions.d/patina.fish share/fish/vendor_completions.d/patina-imagetool.fish; do
    [ -s "$root/$f" ] || fail "$f missing"
done
"$root/bin/patina" --version | grep -q '^commit: [0-9a-f]' || fail "patina --version has no commit"

# Each page renders (groff warnings on stderr count as failures) and names its command.
pages=0
for page in "$root"/share/man/man*/*; do
    name=$(basename "${page%.*}")
    text=$(MANWIDTH=80 man -l "$page" 2>"$dest/man.err") || fail "man -l $page"
    [ -s "$dest/man.err" ] && fail "man -l $page: $(head -1 "$dest/man.err")"
    grep -q "^NAME" <<<"$text" && grep -q "$name" <<<"$text" || fail "$page: no NAME naming $name"
    pages=$((pages + 1))
done
# Every flag of the shim's -h is in its page.
for flag in $("$root/bin/containerd-shim-patina-v2" -h 2>&1 | sed -n 's/^  \(-[a-z-]*\).*/\1/p'); do
    MANWIDTH=200 man -l "$root/share/man/man8/containerd-shim-patina-v2.8" 2>/dev/null | grep -q -- "$flag" \
        || fail "shim page lacks $flag"
done

# bash: what <TAB> offers after `patina ` and `patina update --cpu`.
complete_words() {
    bash -c 'source "$1"; shift
        complete -p patina >/dev/null || exit 1
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _patina patina "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' _ "$root/share/bash-completion/completions/patina" "$@"
}
offered=$(complete_words patina "")
for cmd in create start state kill delete exec run list spec pause resume update ps events; do
    grep -qx "$cmd" <<<"$offered" || fail "bash completion of 'patina ' lacks $cmd"
done
offered=$(complete_words patina update --cpu)
for flag in --cpu-shares --cpu-quota --cpu-period; do
    grep -qx -- "$flag" <<<"$offered" || fail "bash completion of 'patina update --cpu' lacks $flag"
done
grep -qx -- "--cpuset-mems" <<<"$offered" || fail "bash completion lacks --cpuset-mems"
if grep -qx -- "--memory" <<<"$offered"; then fail "'--cpu' completed to --memory"; fi

if [ "$failed" -gt 0 ]; then
    echo "test-install: $failed failed"
    exit 1
fi
echo "test-install: ok ($pages man pages render; files, version and bash completion checked)"
