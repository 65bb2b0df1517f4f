#!/bin/sh
# check-layers.sh: owns the layering rule of the library's sources.
#
# Usage: scripts/check-layers.sh BUILD_DIR
#
# It checks the source tree it lives in against the objects in BUILD_DIR.
# src/LAYERS puts each src/*.c file in a layer, lowest first.  A file may
# call functions of its own layer and of the layers below it, never above.
# Run after building BUILD_DIR; it fails (exit 1), one line per violation,
# when:
#   - a src/*.c file is not named in src/LAYERS (a named file that does
#     not exist yet is fine);
#   - a global symbol is defined by two objects (it cannot be placed);
#   - an object of the walrus_objects library
#     (BUILD_DIR/CMakeFiles/walrus_objects.dir/src/*.c.o) references, by
#     nm, a global symbol that an object of a higher layer defines;
#   - library code (src/*.c and src/*.h) calls the VFS table directly,
#     as in w->vfs->pread(...), rather than through the wrappers in vfs.c.
#     Exempt: vfs.c (the wrappers), vfs_posix.c (the back end) and config.c
#     (it only checks that the table's methods are set);
#   - an object other than vfs_posix.c's calls the system the VFS stands
#     for (file and directory calls, mappings, futexes, getrandom: the
#     SYSTEM list below), by nm, which only the POSIX back end may.
# It exits 2 on a usage error, a malformed src/LAYERS, or an object that is
# missing or older than its source (build first).  Objects with no source
# (left over from a renamed file) are ignored.  When clean it prints
# "check-layers: N objects, M references checked, OK"; M counts references
# from one library object to a symbol another library object defines.
#
# Only what the compiler emitted is checked: a call the optimizer removed
# (inside assert() under NDEBUG, or in dead code) is not seen, and calls in
# static inline functions of headers count against each file that uses them.
set -eu

EXEMPT_VFS="vfs.c vfs_posix.c config.c"
# What only the POSIX back end (src/vfs_posix.c) may call.
SYSTEM="open openat close pread pread64 pwrite pwrite64 fsync fdatasync
ftruncate ftruncate64 fallocate fallocate64 posix_fadvise posix_fadvise64
flock fstat fstat64 rename unlink mkdir opendir readdir readdir64 closedir
mmap mmap64 munmap madvise syscall getrandom"
command -v nm >/dev/null || { echo "check-layers: nm not found" >&2; exit 2; }

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
objs=$1/CMakeFiles/walrus_objects.dir/src
if [ ! -d "$objs" ]; then
  echo "check-layers: no $objs; build the library first" >&2
  exit 2
fi

# The symbol table: "obj src/f.c" per object, then "sym src/f.c NAME TYPE"
# per global symbol (nm -P: name, type, value, size), or "missing"/"stale".
table=$(mktemp)
trap 'rm -f "$table"' EXIT
for c in "$top"/src/*.c; do
  [ -e "$c" ] || continue
  f=${c##*/}
  o=$objs/$f.o
  if [ ! -f "$o" ]; then
    echo "missing src/$f $o"
  elif [ -n "$(find "$c" -newer "$o")" ]; then
    echo "stale src/$f $o"
  else
    echo "obj src/$f"
    syms=$(nm -P -g "$o") || { echo "check-layers: nm $o failed" >&2; exit 2; }
    [ -z "$syms" ] || printf '%s\n' "$syms" | sed "s|^|sym src/$f |"
  fi
done >"$table"

# awk reads the map, the table, then the sources the VFS check covers.
set -- "$top/src/LAYERS" "$table"
for c in "$top"/src/*.c "$top"/src/*.h; do
  [ -e "$c" ] || continue
  case " $EXEMPT_VFS " in *" ${c##*/} "*) continue ;; esac
  set -- "$@" "$c"
done

awk -v map="$top/src/LAYERS" -v table="$table" -v sysnames="$SYSTEM" '
BEGIN {
  q = sprintf("%c", 39)  # a single quote, for character literals
  n = split(sysnames, sysv, /[ \t\n]+/)
  for (i = 1; i <= n; i++) if (sysv[i] != "") sys[sysv[i]] = 1
  decl = "walrus_vfs_t[ \t]*\\*[ \t]*(const[ \t]+)?[A-Za-z_][A-Za-z0-9_]*"
}

# src/LAYERS: "layer: file.c ...", lowest first; # starts a comment line.
FILENAME == map {
  if ($0 ~ /^[ \t]*(#|$)/) next
  at = "src/LAYERS:" FNR ": "
  if ($1 !~ /^[a-z_]+:$/) { oops(at "not \"layer: file.c ...\""); next }
  name = substr($1, 1, length($1) - 1)
  if (name in rank) oops(at "layer " name " twice")
  rank[name] = ++nlayers
  for (i = 2; i <= NF; i++) {
    if ($i !~ /^[A-Za-z0-9_]+\.c$/) oops(at $i " is not a .c file")
    if (("src/" $i) in layer) oops(at $i " is in two layers")
    layer["src/" $i] = name
  }
  next
}

# The table.  U is undefined; w and v are undefined weak symbols.
FILENAME == table {
  if ($1 != "obj" && $1 != "sym") {
    oops("no up-to-date object " $3 " for " $2 "; build first"); next
  }
  if ($1 == "obj") { obj[++nobj] = $2; next }
  f = $2; s = $3; t = $4
  if (t == "U" || t == "w" || t == "v") { rfile[++nref] = f; rsym[nref] = s }
  else if (s in def) dup[s] = dup[s] " and " f
  else { def[s] = f; dtype[s] = t; dup[s] = "" }
  next
}

# A source file: blank out comments and literals, then look for calls
# X->vfs->NAME( and vfs->NAME(, and v->NAME( where the same function
# declares const walrus_vfs_t *v.  A } in column 0 ends a function and
# forgets its pointers.
FNR == 1 {
  incomment = 0; split("", recv)
  rel = FILENAME; sub(/.*\//, "", rel); rel = "src/" rel
}
{
  line = strip($0)
  if (line ~ /^}/) split("", recv)
  rest = line
  while (match(rest, decl)) {
    d = substr(rest, RSTART, RLENGTH); sub(/.*[^A-Za-z0-9_]/, "", d)
    recv[d] = 1; rest = substr(rest, RSTART + RLENGTH)
  }
  names = "vfs"; for (d in recv) if (d != "vfs") names = names "|" d
  re = "(^|[^A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*(->|\\.))*(" names ")->" \
       "[A-Za-z_][A-Za-z0-9_]*[ \t]*\\)?[ \t]*\\("
  rest = line
  while (match(rest, re)) {
    call = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
    sub(/^[^A-Za-z_]+/, "", call); sub(/[ \t)(]+$/, "", call)
    vfsbad[++nvfs] = rel ":" FNR " calls the VFS directly (" call \
                     "); use the wrapper in vfs.c"
  }
}

# Blank out comments (carried across lines) and string and char literals.
function strip(s,   out, i, n, c, lit) {
  out = ""; n = length(s); lit = ""
  for (i = 1; i <= n; i++) {
    c = substr(s, i, 1)
    if (incomment) {
      if (c == "*" && substr(s, i + 1, 1) == "/") { incomment = 0; i++ }
      out = out " "
    } else if (lit != "") {
      if (c == "\\") i++
      else if (c == lit) { lit = ""; out = out c }
      else out = out " "
    } else if (c == "/" && substr(s, i + 1, 1) == "*") {
      incomment = 1; i++; out = out " "
    } else if (c == "/" && substr(s, i + 1, 1) == "/") break
    else { if (c == "\"" || c == q) lit = c; out = out c }
  }
  return out
}

function oops(msg) { print "check-layers: " msg >"/dev/stderr"; broken = 1 }
function bad(msg) { print "check-layers: " msg; nbad++ }

# Report in groups: unplaced files, duplicates, upward calls, VFS calls.
END {
  if (broken) exit 2
  for (i = 1; i <= nobj; i++)
    if (!(obj[i] in layer))
      bad(obj[i] " is not in src/LAYERS; put it in a layer")
  for (s in dup) if (dup[s] != "") bad(s " is defined in both " def[s] dup[s])
  for (r = 1; r <= nref; r++) {
    f = rfile[r]; s = rsym[r]
    if (!(s in def)) {  # libc, pthreads and the like
      if ((s in sys) && f != "src/vfs_posix.c")
        sysbad[++nsys] = f " calls " s "(); only src/vfs_posix.c may: " \
                         "use the VFS"
      continue
    }
    checked++; g = def[s]
    if (!(f in layer) || !(g in layer)) continue
    if (rank[layer[g]] <= rank[layer[f]]) continue
    verb = dtype[s] ~ /^[TtWi]$/ ? "calls" : "uses"
    bad(f " (" layer[f] ") " verb " " s ", defined in " g " (" layer[g] ")")
  }
  for (i = 1; i <= nvfs; i++) bad(vfsbad[i])
  for (i = 1; i <= nsys; i++) bad(sysbad[i])
  if (nbad) exit 1
  printf "check-layers: %d objects, %d references checked, OK\n", nobj, checked
}
' "$@"
