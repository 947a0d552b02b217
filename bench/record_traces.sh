#!/bin/sh
# Re-records the byte traces that bench/tui_traces.py replays (bench/traces/*.gz).
#
# Each trace is the output of a real full-screen program run under `script -q` in an
# 80x24 pty with TERM=xterm-256color, driven by keystrokes piped in with pauses (so the
# program redraws as a user would see it).  Needs: script (util-linux), vim, less, htop,
# tmux, dialog, gzip.  Run from anywhere:  sh bench/record_traces.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/traces"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$out"
export TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8

# A long file with syntax to colour: the project's own sources.
cat "$here"/../vncmux/*.py "$here"/../vncmux/console/*.py > "$work/long.py"

# rec NAME COMMAND: runs COMMAND at 80x24, keystrokes from stdin, output to NAME.gz.
rec() {
    script -q -E never -c "stty rows 24 cols 80; $2" "$work/$1" > /dev/null
    # script writes a header and a trailer line around the output: drop them.
    sed -e '1{/^Script started/d;}' -e '${/^Script done/d;}' "$work/$1" | gzip -9n > "$out/$1.gz"
    echo "recorded $1: $(wc -c < "$work/$1") bytes"
}

keys() {  # keys COUNT DELAY STRING: STRING (printf format) COUNT times, DELAY s apart
    n=$1
    while [ "$n" -gt 0 ]; do printf "$3"; sleep "$2"; n=$((n - 1)); done
}

# vim scrolling a long file: line by line (Ctrl+E), half pages (Ctrl+D), back (Ctrl+U).
{ sleep 1; keys 120 0.02 '\005'; keys 40 0.05 '\004'; keys 20 0.05 '\025'; keys 60 0.02 'j';
  printf ':q!\r'; sleep 1; } | rec vim "vim -N -u DEFAULTS -i NONE -n '$work/long.py'"

# less paging a file: pages forward (space), lines (Enter), back (b), a search.
{ sleep 1; keys 40 0.05 ' '; keys 60 0.02 '\r'; keys 10 0.05 'b'; printf '/Logger\r';
  sleep 0.3; keys 10 0.05 'n'; printf 'q'; sleep 1; } | rec less "less '$work/long.py'"

# htop for 10 s, redrawing twice a second.
{ sleep 10; printf 'q'; sleep 1; } | rec htop "htop -d 5"

# tmux with two panes (one above the other) printing at once.
{ sleep 8; } | rec tmux "tmux -f /dev/null -L vncmux-rec new-session \
    'for i in \$(seq 400); do echo top pane line \$i of some log output; sleep 0.005; done' \; \
    split-window -v \
    'for i in \$(seq 400); do echo bottom pane \$i: \$(date +%N) more words here; sleep 0.005; done'"

# dialog menus: move through a menu, then a checklist, then a yes/no box.
{ sleep 1; keys 15 0.05 '\033[B'; keys 8 0.05 '\033[A'; printf '\r'; sleep 0.5;
  keys 6 0.05 '\033[B '; printf '\r'; sleep 0.5; keys 4 0.1 '\t'; printf '\r'; sleep 1; } |
  rec dialog "dialog --menu 'Pick one' 20 60 12 $(seq 1 30 | sed 's/.*/& "item & of the menu"/' | tr '\n' ' ') \
    --and-widget --checklist 'Pick some' 20 60 12 $(seq 1 20 | sed 's/.*/& "option &" off/' | tr '\n' ' ') \
    --and-widget --yesno 'Done?' 8 40"
