#!/bin/sh
# tools/man.sh IN RATESD OUT: fills a man page template (man/*.in): @VERSION@, @DATE@ (of the
# last commit, so builds are reproducible) and, for ratesd(8), @OPTIONS@ from `ratesd --help`
# (the option table of src/config.c), so the page never lists other options than the binary.
set -eu
in=$1 bin=$2 out=$3
version=$(cat VERSION 2>/dev/null || echo 0.0.0)
date=$(git log -1 --format=%cd --date=format:'%B %-d, %Y' 2>/dev/null || date -u '+%B %-d, %Y')
tmp=$out.tmp
{
    if grep -q '^@OPTIONS@$' "$in"; then
        "$bin" --help | awk '
            function esc(s) { gsub(/\\/, "\\e", s); sub(/^[.\047]/, "\\\\\\&&", s); return s }
            /^  [-(]/ {
                flag = $1; env = ""; def = ""
                if (match($0, /RATES_[A-Z0-9_]+/)) env = substr($0, RSTART, RLENGTH)
                if (match($0, /\[default: .*\]$/)) def = substr($0, RSTART + 10, RLENGTH - 11)
                if (flag ~ /^--/) printf ".It Fl \\-%s Ar value , Ev %s\n", substr(flag, 3), env
                else printf ".It Ev %s No (secret: environment or Ev %s_FILE )\n", env, env
                pending = def; next
            }
            /^      / && pending != "-" {
                line = $0; sub(/^ +/, "", line)
                if (line ~ /^also /) next
                line = esc(line); gsub(/\. /, ".\n", line); print line
                if (pending != "" && pending != "\"\"") print "Default: " esc(pending) "."
                pending = "-"; next
            }
        '
    fi
} >"$tmp.opts"
awk -v v="$version" -v d="$date" -v opts="$tmp.opts" '
    $0 == "@OPTIONS@" { while ((getline l < opts) > 0) print l; next }
    { gsub(/@VERSION@/, v); gsub(/@DATE@/, d); print }
' "$in" >"$tmp"
rm -f "$tmp.opts"
mv "$tmp" "$out"
