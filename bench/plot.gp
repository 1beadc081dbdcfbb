# Latency per path from nearcache-bench's --plot data (label p50 p99 p999, µs).
# gnuplot -e "datafile='plot.dat'; outfile='benchmarks.png'" bench/plot.gp
set terminal pngcairo size 1400,640 font "sans,10"
set output outfile
set title "nearcache-bench: latency per path (clients after x), one run"
set ylabel "µs (log scale)"
set logscale y
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -40 left
set key top left
set bmargin 9
set rmargin 12
plot datafile using 2:xtic(1) title "p50", '' using 3 title "p99", '' using 4 title "p99.9"
