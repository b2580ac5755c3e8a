#!/bin/sh
# In the guest (integration/vm/run.sh with PATINA_VM_BENCH=N): N `run`s of a container
# running busybox `true`, by patina then by Debian's runc, after two warm-up runs each.
# Prints per runtime the mean wall time per run and one run's peak RSS (busybox time -v:
# the largest process of the run).
set -e
n=$(cat /patina/bench-runs)
b=/tmp/bench
mkdir -p $b/rootfs/bin
cp /bin/busybox $b/rootfs/bin/busybox
ln -s busybox $b/rootfs/bin/true
ln -s busybox $b/rootfs/bin/sh
cd $b
/patina/patina spec
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/' config.json
grep -q '"true"' config.json || { echo "bench: config.json has no true"; exit 1; }
echo "bench: $(uname -m), $n runs each, $(/usr/sbin/runc --version | head -1)"
runs() { # runtime count tag
    i=0
    while [ $i -lt "$2" ]; do
        "$1" run "b$3$i" >/dev/null 2>$b/err || { echo "bench: $1 run failed: $(tail -3 $b/err)"; exit 1; }
        i=$((i+1))
    done
}
for rt in /patina/patina /usr/sbin/runc; do runs $rt 2 w; done
for rt in /patina/patina /usr/sbin/runc; do
    name=$(basename $rt)
    start=$(cut -d' ' -f1 /proc/uptime)
    runs $rt "$n" r
    end=$(cut -d' ' -f1 /proc/uptime)
    echo "bench: $name: $(awk -v s="$start" -v e="$end" -v n="$n" 'BEGIN { printf "%.1f ms wall per run", (e - s) * 1000 / n }')"
    time -v $rt run bpeak >/dev/null 2>$b/peak || true
    echo "bench: $name: peak RSS $(awk -F': ' '/Maximum resident/ {print $2}' $b/peak) KiB (one run, the largest process)"
done
echo "bench: done"
