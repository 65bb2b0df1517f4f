# plot_threads.gp: durable appends per second against thread count, one
# line per system, from the CSV that bench_peers -o writes.  The point at
# 1 thread is workload (2), the others workload (4).
#
#   gnuplot -e "csv='build/bench-peers.csv'; png='docs/bench-threads.png'" \
#     bench/plot_threads.gp
#
# Needs gnuplot 5.2 or later (Debian: gnuplot-nox).  Both axes are
# logarithmic; a system missing from the CSV is left out of the key.

if (!exists("csv")) csv = "bench-peers.csv"
if (!exists("png")) png = "bench-threads.png"
systems = "walrus raw-write raw-pwrite rocksdb leveldb sqlite lmdb"

set datafile separator ","
# Columns: 1 kind, 2 workload, 3 threads, 4 system, 7 median.
sel(s) = strcol(1) eq "measure" && strcol(4) eq s && \
         (strcol(2) eq "w2_append_durable" || strcol(2) eq "w4_threads_durable")

# Gather each system's points into one block, in thread order, so that
# the lines are not broken by the rows in between.
$pts << EOD
EOD
set table $pts
plot for [s in systems] csv skip 1 using (s):3:7 with table if (sel(s))
unset table
set datafile separator whitespace
if (|$pts| == 0) { print "plot_threads.gp: no thread rows in " . csv; exit status 1 }

present = ""
do for [s in systems] {
  stats $pts using (strcol(1) eq s ? 1 : 0) nooutput
  if (STATS_sum > 0) { present = present . " " . s }
}

set terminal pngcairo size 900,560 font ",10"
# Fixed, readable colours (walrus first); lines take them in key order.
set linetype 1 lc rgb "#7b1fa2"
set linetype 2 lc rgb "#2e7d32"
set linetype 3 lc rgb "#66bb6a"
set linetype 4 lc rgb "#ef6c00"
set linetype 5 lc rgb "#1565c0"
set linetype 6 lc rgb "#6d4c41"
set linetype 7 lc rgb "#c62828"
set output png
set title "Durable appends/s against threads (128 B entries, medians; 1 thread = workload (2))"
set xlabel "threads appending into one log/db"
set ylabel "durable appends per second"
set logscale x 2
set logscale y 10
set xrange [0.8:80]
set xtics (1, 2, 4, 8, 16, 32, 64)
set grid xtics ytics mytics
set key outside right top
set format y "%.0s%c"
plot for [s in present] $pts using (strcol(1) eq s ? $2 : NaN):3 \
     with linespoints lw (s eq "walrus" ? 3 : 1.5) pt 7 ps 0.8 title s
