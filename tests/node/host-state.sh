#!/usr/bin/env bash
# Prints what a test node could leave behind on this machine, one sorted line per item, so two
# snapshots (before and after the tests) can be compared with diff:
#   kernel settings, network links and addresses, network namespaces, iptables chains (every
#   table, IPv4 and IPv6), mounts, top-level cgroups, the paths a kubelet and containerd
#   hard-code, and processes running a node binary or in a pod's cgroup.
# tests/run-all.sh takes one before and one after `cargo test` and fails on any difference.
set -uo pipefail

# Kernel settings that change on their own (counters, random values, per-link settings of links
# that come and go: those links are compared by name below).
sysctl -a 2>/dev/null |
  grep -vE '^(kernel\.random\.|kernel\.ns_last_pid|kernel\.pty\.nr|fs\.(dentry-state|file-nr|inode-nr|inode-state|quota\.)|net\.netfilter\.nf_conntrack_count|net\.ipv[46]\.(conf|neigh)\.(veth|opstk|cni)|net\.ipv6\.conf\.|net\.ipv4\.route\.gc|vm\.(stat_|nr_|dirty|lowmem|min_|zone_)|kernel\.sched_domain|fs\.binfmt_misc|dev\.cdrom|kernel\.perf_event|user\.|net\.core\.(netdev_rss_key|rps_)|kernel\.tainted|net\.ipv4\.tcp_(fastopen_key|mem)|net\.ipv4\.udp_mem|net\.ipv4\.ip_local_port_range)' |
  sed 's/^/sysctl /'

ip -o link show 2>/dev/null | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
ip -o addr show 2>/dev/null | awk '{print "addr " $2 " " $4}'
ip netns list 2>/dev/null | sed 's/^/netns /'
for program in iptables ip6tables; do
  command -v "$program" >/dev/null || continue
  for table in filter nat mangle raw; do
    "$program" -w -t "$table" -S 2>/dev/null | sed "s/^/$program $table /"
  done
done
awk '{print "mount " $5}' /proc/self/mountinfo
for hierarchy in /sys/fs/cgroup/*/; do
  find "$hierarchy" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sed "s|^/sys/fs/cgroup/|cgroup |"
done
for path in /var/lib/kubelet /var/lib/cni /run/containerd /var/run/netns /var/log/pods /var/log/containers /opt/containerd /var/run/nri /etc/cni; do
  [[ -e "$path" ]] && echo "path $path"
done
cache_root="${OPSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opstack-operator}"
[[ -e "$cache_root/node/run" ]] && echo "path $cache_root/node/run"
for proc in /proc/[0-9]*; do
  exe=$(readlink "$proc/exe" 2>/dev/null) || continue
  if [[ "$exe" == "$cache_root/"* ]] || grep -qs '/kubepods' "$proc/cgroup"; then
    echo "process ${proc#/proc/} $exe"
  fi
done
true
