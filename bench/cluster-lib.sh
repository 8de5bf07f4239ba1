# Sourced by the benchmarks that start several moco processes on 127.0.0.1 (bench/multiprocess.sh, recovery.sh,
# takeover.sh), from the repository root: the built moco, a scratch folder removed at exit with every process started
# in the background, a fresh cluster secret and certificate (remoting between processes runs over TLS), and helpers.
moco="dotnet src/Host/bin/Release/net10.0/moco.dll"
out=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
export MOCO_CLUSTER_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
$moco cert --out "$out/cluster.pem" > /dev/null
export MOCO_CLUSTER_CERTIFICATE="$out/cluster.pem"

# a TCP port free on 127.0.0.1 now
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# seconds since epoch, and seconds elapsed since $1
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# min, median and max of the numbers given
summary() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "min %.2f, median %.2f, max %.2f s over %d rounds", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[NR], NR }'; }
