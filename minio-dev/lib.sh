# Shared helpers for the minio-dev scripts (sourced, not run).
# shellcheck shell=bash

MINIO_DEV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$MINIO_DEV_DIR/.." && pwd)
SYS_PY=/usr/bin/python3 # Debian's python (boto3); not the pyenv one first on PATH

log() { echo "[$(date +%H:%M:%S)] ${LOG_TAG:-minio-dev}: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

# wait_until SECONDS DESCRIPTION CMD...: runs CMD every 0.2 s until it succeeds; fails
# (returns 1, with a message) after SECONDS.
wait_until() {
  local timeout=$1 desc=$2
  shift 2
  local deadline=$(($(date +%s%3N) + timeout * 1000))
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s%3N) > deadline)); then
      log "timed out after ${timeout}s waiting for: $desc"
      return 1
    fi
    sleep 0.2
  done
}

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, one a line, chosen outside
# the kernel's ephemeral range so an outgoing connection cannot grab them later.
free_ports() {
  "$SYS_PY" - "${1:-1}" <<'EOF'
import random, socket, sys
n = int(sys.argv[1]); socks = []; ports = []
lo, hi = 20000, 32000
for _ in range(2000):
    if len(ports) == n: break
    p = random.randrange(lo, hi)
    if p in ports: continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        s.close(); continue
    socks.append(s); ports.append(p)
if len(ports) != n: sys.exit("no free ports")
print("\n".join(map(str, ports)))
EOF
}

# port_listening PORT: true if something listens on 127.0.0.1:PORT (or any address).
port_listening() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# pid_alive PID
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# stop_pid PID SECONDS [NAME]: TERM the process (and its process group if it leads one),
# wait up to SECONDS, then KILL. Returns 0 once the pid is gone.
stop_pid() {
  local pid=$1 secs=$2 name=${3:-pid $1}
  pid_alive "$pid" || return 0
  local pgid
  pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
  if [[ "$pgid" == "$pid" ]]; then kill -TERM -- "-$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  local deadline=$(($(date +%s%3N) + secs * 1000))
  while pid_alive "$pid"; do
    if (($(date +%s%3N) > deadline)); then
      log "$name did not exit after ${secs}s; sending KILL"
      if [[ "$pgid" == "$pid" ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  # A zombie child of ours still answers kill -0: reap if it is ours.
  wait "$pid" 2>/dev/null || true
  ! pid_alive "$pid" || [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]]
}

# start_daemon PIDFILE LOGFILE CMD...: starts CMD in a new session (setsid), in the
# background, with its pid (after exec) written to PIDFILE.
start_daemon() {
  local pidfile=$1 logfile=$2
  shift 2
  # fd 9 is minio-dev's up/down lock: a daemon must not inherit it.
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  local i
  for i in $(seq 50); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.02
  done
  die "could not start: $*"
}
