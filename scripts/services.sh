#!/usr/bin/env bash
# services.sh makes the servers sessionkit's provider tests need available
# on 127.0.0.1, prints where they are, and stops what it started.
#
#   scripts/services.sh up     reuse or start every server (idempotent)
#   scripts/services.sh env    print `export VAR=value` lines for the tests
#   scripts/services.sh down   stop only the servers `up` started
#
# Typical use:
#
#   scripts/services.sh up && eval "$(scripts/services.sh env)" && go test ./...
#
# Servers: Redis (single node), a 3-master Redis Cluster, two memcached
# instances, MariaDB/MySQL and PostgreSQL.
#
# For each server, `up` first tries its usual port. If a server already
# answers there and accepts the tests' credentials (Redis without a
# password, MariaDB root with an empty password, PostgreSQL user postgres
# with trust auth), it is used as it is. If the port is free, `up` starts a
# private instance on it, with its data in the state directory. If the port
# is taken by something unusable, `up` tries the alternate port the same
# way. A missing server binary is installed from Debian's packages when the
# script runs as root and apt-get exists; otherwise `up` fails with a
# message naming the package.
#
# Private instances are recorded (pid and executable) in the state
# directory; `down` stops exactly those, then deletes their data. Servers
# that `up` found running are never stopped.
#
# Environment (all optional):
#
#   SESSIONKIT_SERVICES_DIR    state directory
#                              (default ${XDG_RUNTIME_DIR:-/tmp}/sessionkit-services)
#   SESSIONKIT_SERVICES_WAIT   seconds to wait for a server to answer (default 60)
#   SESSIONKIT_SVC_REDIS_PORTS        usual and alternate ports (default "6379 16379")
#   SESSIONKIT_SVC_CLUSTER_PORTS      cluster port sets (default "7001,7002,7003 17001,17002,17003")
#   SESSIONKIT_SVC_MEMCACHE1_PORTS    first memcached (default "11211 21211")
#   SESSIONKIT_SVC_MEMCACHE2_PORTS    second memcached (default "11212 21212")
#   SESSIONKIT_SVC_MYSQL_PORTS        MariaDB (default "3306 13306")
#   SESSIONKIT_SVC_POSTGRES_PORTS     PostgreSQL (default "5432 15432")
#
# Every address is on 127.0.0.1; nothing listens on another interface.

set -euo pipefail

# Server binaries live in sbin on Debian, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

HOST=127.0.0.1
DB=sessionkit_test
STATE_DIR=${SESSIONKIT_SERVICES_DIR:-${XDG_RUNTIME_DIR:-/tmp}/sessionkit-services}
PIDS=$STATE_DIR/pids
ENV_FILE=$STATE_DIR/env
DIRS_FILE=$STATE_DIR/dirs
WAIT=${SESSIONKIT_SERVICES_WAIT:-60}

REDIS_PORTS=${SESSIONKIT_SVC_REDIS_PORTS:-6379 16379}
CLUSTER_PORTS=${SESSIONKIT_SVC_CLUSTER_PORTS:-7001,7002,7003 17001,17002,17003}
MEMCACHE1_PORTS=${SESSIONKIT_SVC_MEMCACHE1_PORTS:-11211 21211}
MEMCACHE2_PORTS=${SESSIONKIT_SVC_MEMCACHE2_PORTS:-11212 21212}
MYSQL_PORTS=${SESSIONKIT_SVC_MYSQL_PORTS:-3306 13306}
POSTGRES_PORTS=${SESSIONKIT_SVC_POSTGRES_PORTS:-5432 15432}

log() { printf 'services: %s\n' "$*" >&2; }
die() {
	printf 'services: error: %s\n' "$*" >&2
	exit 1
}

first() { printf '%s' "${1%% *}"; }

# ---------------------------------------------------------------- helpers

# port_open succeeds if something accepts TCP connections on HOST:$1.
port_open() {
	# shellcheck disable=SC2016 # $0 and $1 are the inner shell's
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# wait_until WHAT LOG FATAL CMD...: run CMD until it succeeds or WAIT
# seconds pass. WHAT names what is awaited and LOG is the server's log,
# for the error message; a line of LOG matching the extended regex FATAL
# (unless empty) means the server gave up, so the wait ends at once.
wait_until() {
	local what=$1 logfile=$2 fatal=$3
	shift 3
	local deadline=$((SECONDS + WAIT))
	until "$@" >/dev/null 2>&1; do
		if [[ -n $fatal && -f $logfile ]] && grep -Eq "$fatal" "$logfile"; then
			tail -n 20 "$logfile" >&2
			die "$what failed to start (log: $logfile)"
		fi
		if ((SECONDS >= deadline)); then
			[[ -f $logfile ]] && tail -n 20 "$logfile" >&2
			die "timed out after ${WAIT}s waiting for $what (log: $logfile)"
		fi
		sleep 0.2
	done
}

# Log lines with which each server says it gave up starting.
# (PostgreSQL needs none: pg_ctl -w returns as soon as the server dies.)
REDIS_FATAL='Failed listening|aborting|Fatal'
MEMCACHE_FATAL='failed to listen|Address already in use'
MYSQL_FATAL='\[ERROR\] Aborting'


is_root() { [[ $(id -u) -eq 0 ]]; }

APT_UPDATED=
POLICY_CREATED=

cleanup() {
	# Remove the policy-rc.d this script created, never an existing one.
	if [[ -n $POLICY_CREATED ]]; then
		rm -f /usr/sbin/policy-rc.d
	fi
}
trap cleanup EXIT

# need CMD PACKAGE...: make sure CMD exists, installing PACKAGEs with apt
# when it does not and the script may do so.
need() {
	local cmd=$1
	shift
	command -v "$cmd" >/dev/null 2>&1 && return 0
	install_pkgs "$cmd" "$@"
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $*"
}

# install_pkgs WHAT PACKAGE...: install PACKAGEs with apt, WHAT naming the
# missing piece for the error message.
install_pkgs() {
	local what=$1
	shift
	if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
		die "$what is missing and cannot be installed here (needs root and apt-get): install Debian package(s) $*"
	fi
	# The packages' own services must not start: `up` runs private
	# instances, and `down` could not stop a service it did not record.
	# policy-rc.d exit 101 is Debian's way to say so during install.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		POLICY_CREATED=1
	fi
	if [[ -z $APT_UPDATED ]]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
		APT_UPDATED=1
	fi
	log "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
		die "apt-get install $* failed"
	hash -r
}

# record NAME PIDFILE: remember the private instance whose pid is in
# PIDFILE, with its executable, so `down` can check it is still ours.
record() {
	local name=$1 pidfile=$2 pid exe
	pid=$(head -n 1 "$pidfile" 2>/dev/null | tr -dc 0-9)
	[[ -n $pid ]] || die "no pid in $pidfile for $name"
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	printf '%s %s %s\n' "$name" "$pid" "${exe:-?}" >>"$PIDS"
}

# ours NAME succeeds if a live private instance called NAME is recorded.
ours() {
	[[ -f $PIDS ]] || return 1
	local name pid exe
	while read -r name pid exe; do
		[[ $name == "$1" ]] && alive "$pid" "$exe" && return 0
	done <"$PIDS"
	return 1
}

# alive PID EXE succeeds if PID runs EXE (a recycled pid does not count).
alive() {
	[[ -d /proc/$1 ]] || return 1
	[[ $2 == "?" ]] && return 0
	[[ $(readlink "/proc/$1/exe" 2>/dev/null) == "$2" ]]
}

# prune drops records of processes that are gone.
prune() {
	[[ -f $PIDS ]] || return 0
	local name pid exe tmp=$PIDS.tmp
	: >"$tmp"
	while read -r name pid exe; do
		alive "$pid" "$exe" && printf '%s %s %s\n' "$name" "$pid" "$exe" >>"$tmp"
	done <"$PIDS"
	mv "$tmp" "$PIDS"
}

# stop_recorded NAME-PATTERN: stop the recorded instances whose name
# matches the glob, and forget them.
stop_recorded() {
	[[ -f $PIDS ]] || return 0
	local pattern=$1 name pid exe sig tmp=$PIDS.tmp
	local -a victims=()
	: >"$tmp"
	while read -r name pid exe; do
		# shellcheck disable=SC2053 # the pattern is a glob on purpose
		if [[ $name == $pattern ]]; then
			if alive "$pid" "$exe"; then
				# SIGINT is PostgreSQL's fast shutdown; SIGTERM would
				# wait for clients to disconnect.
				sig=TERM
				[[ $name == postgres-* ]] && sig=INT
				log "stopping $name (pid $pid)"
				kill -s "$sig" "$pid" 2>/dev/null || true
				victims+=("$pid")
			fi
		else
			printf '%s %s %s\n' "$name" "$pid" "$exe" >>"$tmp"
		fi
	done <"$PIDS"
	mv "$tmp" "$PIDS"
	local deadline=$((SECONDS + WAIT)) p
	for p in "${victims[@]}"; do
		while [[ -d /proc/$p ]] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; do
			if ((SECONDS >= deadline)); then
				log "pid $p did not stop in ${WAIT}s: killing it"
				kill -s KILL "$p" 2>/dev/null || true
				break
			fi
			sleep 0.2
		done
	done
}

# daemon LOG CMD...: run CMD detached from this shell, its output in LOG,
# so the caller's terminal and pipes are not held open.
daemon() {
	local logfile=$1
	shift
	setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
}

# ---------------------------------------------------------------- Redis

redis_single_ok() {
	[[ $(redis-cli -h "$HOST" -p "$1" ping 2>/dev/null) == PONG ]] &&
		redis-cli -h "$HOST" -p "$1" info cluster 2>/dev/null | grep -q '^cluster_enabled:0'
}

# redis_started PIDFILE PORT: redis wrote its pid and answers.
redis_started() {
	[[ -s $1 && $(redis-cli -h "$HOST" -p "$2" ping 2>/dev/null) == PONG ]]
}

start_redis() { # PORT NAME [extra redis-server args...]
	local port=$1 name=$2
	shift 2
	local dir=$STATE_DIR/$name
	rm -rf "$dir"
	mkdir -p "$dir"
	redis-server --port "$port" --bind "$HOST" --save '' --appendonly no \
		--dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
		--logfile "$dir/redis.log" "$@" >"$dir/start.log" 2>&1 9>&- || {
		cat "$dir/start.log" >&2
		die "$name: redis-server failed to start on $HOST:$port (log: $dir/redis.log)"
	}
	wait_until "$name on $HOST:$port" "$dir/redis.log" "$REDIS_FATAL" \
		redis_started "$dir/redis.pid" "$port"
	record "$name" "$dir/redis.pid"
}

# pick_port NAME OK START PORTS [WHY]: sets PICKED to the first of PORTS
# whose server OK accepts (reused as it is) or that nothing listens on
# (START PORT starts a private server there). A port taken by anything
# else is skipped, with WHY as the likely reason.
PICKED=
pick_port() {
	local name=$1 ok=$2 start=$3 port
	for port in $4; do
		if "$ok" "$port"; then
			log "$name: using the server on $HOST:$port"
			PICKED=$port
			return
		fi
		if ! port_open "$port"; then
			"$start" "$port"
			PICKED=$port
			return
		fi
		log "$name: $HOST:$port is taken by something unusable${5:-}; trying the next port"
	done
	die "$name: no usable or free port among: $4"
}

REDIS_ADDR=
up_redis() {
	need redis-server redis-server redis-tools
	need redis-cli redis-tools
	pick_port redis redis_single_ok start_redis_single "$REDIS_PORTS"
	REDIS_ADDR=$HOST:$PICKED
}

start_redis_single() { # PORT
	log "redis: starting a private server on $HOST:$1"
	start_redis "$1" "redis-$1"
}

# cluster_ok PORT... succeeds if every node answers, reports
# cluster_state:ok, and the cluster has at least 3 masters with slots.
cluster_ok() {
	local p info
	for p in "$@"; do
		info=$(redis-cli -h "$HOST" -p "$p" cluster info 2>/dev/null) || return 1
		grep -q '^cluster_state:ok' <<<"$info" || return 1
		local size
		size=$(sed -n 's/^cluster_size:\([0-9]*\).*/\1/p' <<<"$info")
		((${size:-0} >= 3)) || return 1
	done
}

CLUSTER_ADDRS=
up_cluster() {
	need redis-server redis-server redis-tools
	need redis-cli redis-tools
	local set port
	local -a ports
	for set in $CLUSTER_PORTS; do
		IFS=, read -r -a ports <<<"$set"
		((${#ports[@]} >= 3)) || die "redis cluster: port set $set needs 3 ports"
		if cluster_ok "${ports[@]}"; then
			log "redis cluster: using the cluster on $set"
			CLUSTER_ADDRS=$(printf "$HOST:%s," "${ports[@]}")
			CLUSTER_ADDRS=${CLUSTER_ADDRS%,}
			return
		fi
		# Nodes this script started earlier but that no longer form a
		# healthy cluster (one was killed, say) are rebuilt from scratch.
		local stale=
		for port in "${ports[@]}"; do
			ours "redis-cluster-$port" && stale=1
		done
		if [[ -n $stale ]]; then
			log "redis cluster: rebuilding the unhealthy private cluster on $set"
			for port in "${ports[@]}"; do
				stop_recorded "redis-cluster-$port"
			done
		fi
		local busy=
		for port in "${ports[@]}"; do
			port_open "$port" && busy=$port
		done
		if [[ -n $busy ]]; then
			log "redis cluster: $HOST:$busy is taken by something that is not a healthy cluster; trying the next port set"
			continue
		fi
		log "redis cluster: starting 3 private masters on $set"
		local -a addrs=()
		for port in "${ports[@]}"; do
			start_redis "$port" "redis-cluster-$port" \
				--cluster-enabled yes --cluster-config-file "$STATE_DIR/redis-cluster-$port/nodes.conf" \
				--cluster-node-timeout 5000 --cluster-announce-ip "$HOST"
			addrs+=("$HOST:$port")
		done
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
			>"$STATE_DIR/redis-cluster-create.log" 2>&1 ||
			{
				cat "$STATE_DIR/redis-cluster-create.log" >&2
				die "redis cluster: redis-cli --cluster create failed"
			}
		wait_until "redis cluster on $set to report cluster_state:ok" \
			"$STATE_DIR/redis-cluster-create.log" "" cluster_ok "${ports[@]}"
		CLUSTER_ADDRS=$(
			IFS=,
			printf '%s' "${addrs[*]}"
		)
		return
	done
	die "redis cluster: no usable or free port set among: $CLUSTER_PORTS"
}

# ---------------------------------------------------------------- memcached

memcache_ok() {
	# shellcheck disable=SC2016 # $0 and $1 are the inner shell's
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "version\r\n" >&3 && IFS= read -r line <&3 && [[ $line == VERSION* ]]' \
		"$HOST" "$1" 2>/dev/null
}

# memcache_started PIDFILE PORT: memcached wrote its pid and answers.
memcache_started() { [[ -s $1 ]] && memcache_ok "$2"; }

MEMCACHE_ADDRS=
up_memcache_one() { # PORTS
	need memcached memcached
	pick_port memcached memcache_ok start_memcache "$1"
	MEMCACHE_ADDRS+=${MEMCACHE_ADDRS:+,}$HOST:$PICKED
}

start_memcache() { # PORT
	log "memcached: starting a private server on $HOST:$1"
	local dir=$STATE_DIR/memcached-$1
	rm -rf "$dir"
	mkdir -p "$dir"
	local -a user=()
	# memcached refuses to run as root unless told which user to be.
	is_root && user=(-u root)
	memcached -d -l "$HOST" -p "$1" -U 0 -m 64 -P "$dir/memcached.pid" "${user[@]}" \
		</dev/null >>"$dir/memcached.log" 2>&1 9>&- || {
		cat "$dir/memcached.log" >&2
		die "memcached failed to start on $HOST:$1 (log: $dir/memcached.log)"
	}
	wait_until "memcached on $HOST:$1" "$dir/memcached.log" "$MEMCACHE_FATAL" \
		memcache_started "$dir/memcached.pid" "$1"
	record "memcached-$1" "$dir/memcached.pid"
}

# ---------------------------------------------------------------- MariaDB

mysql_cmd() { # PORT SQL
	mysql --no-defaults --protocol=tcp -h "$HOST" -P "$1" -u root --connect-timeout=3 -e "$2"
}

mysql_ok() { mysql_cmd "$1" 'SELECT 1' >/dev/null 2>&1; }

# mysql_started PIDFILE PORT: mariadbd wrote its pid and answers.
mysql_started() { [[ -s $1 ]] && mysql_ok "$2"; }

MYSQL_PORT=
up_mysql() {
	need mysql mariadb-client
	pick_port mariadb mysql_ok start_mysql "$MYSQL_PORTS" " (root with an empty password is refused?)"
	MYSQL_PORT=$PICKED
	mysql_cmd "$MYSQL_PORT" "CREATE DATABASE IF NOT EXISTS $DB" ||
		die "mariadb: cannot create database $DB on $HOST:$MYSQL_PORT"
}

start_mysql() { # PORT
	local port=$1
	local server
	if ! server=$(command -v mariadbd || command -v mysqld); then
		install_pkgs "the MariaDB server (mariadbd)" mariadb-server mariadb-client
		server=$(command -v mariadbd || command -v mysqld) || die "mariadb: mariadbd not found after installing mariadb-server"
	fi
	local installdb
	installdb=$(command -v mariadb-install-db || command -v mysql_install_db) ||
		die "mariadb: mariadb-install-db is missing (Debian package mariadb-server)"
	log "mariadb: starting a private server on $HOST:$port"
	local dir=$STATE_DIR/mysql-$port user
	user=$(id -un)
	rm -rf "$dir"
	mkdir -p "$dir/data"
	# "normal" root authentication gives root an empty password, which is
	# what the tests' DSN uses. Without name resolution, the accounts are
	# made for (and the server matches clients by) IP address, so neither
	# depends on /etc/hosts or DNS (--force: go on when the host name does
	# not resolve).
	"$installdb" --no-defaults --datadir="$dir/data" --user="$user" \
		--auth-root-authentication-method=normal --skip-test-db --skip-name-resolve --force \
		>"$dir/install.log" 2>&1 || {
		tail -n 20 "$dir/install.log" >&2
		die "mariadb: $installdb failed (log: $dir/install.log)"
	}
	daemon "$dir/mariadbd.log" "$server" --no-defaults --datadir="$dir/data" --user="$user" \
		--port="$port" --bind-address="$HOST" --socket="$dir/mysqld.sock" --skip-name-resolve \
		--pid-file="$dir/mariadbd.pid" --log-error="$dir/mariadbd.err" \
		--skip-log-bin --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0
	wait_until "mariadb on $HOST:$port" "$dir/mariadbd.err" "$MYSQL_FATAL" \
		mysql_started "$dir/mariadbd.pid" "$port"
	record "mysql-$port" "$dir/mariadbd.pid"
}

# ---------------------------------------------------------------- PostgreSQL

pg_query() { # PORT SQL
	psql -w -X -At -v ON_ERROR_STOP=1 \
		"host=$HOST port=$1 user=postgres dbname=postgres connect_timeout=3" -c "$2"
}

pg_ok() { [[ $(pg_query "$1" 'SELECT 1' 2>/dev/null) == 1 ]]; }

POSTGRES_PORT=
up_postgres() {
	need psql postgresql-client
	pick_port postgres pg_ok start_postgres "$POSTGRES_PORTS" " (user postgres without a password is refused?)"
	POSTGRES_PORT=$PICKED
	if [[ $(pg_query "$POSTGRES_PORT" "SELECT 1 FROM pg_database WHERE datname = '$DB'") != 1 ]]; then
		# Another `up` may create it at the same moment: check again on
		# failure rather than trusting the error.
		pg_query "$POSTGRES_PORT" "CREATE DATABASE $DB" >/dev/null 2>&1 ||
			[[ $(pg_query "$POSTGRES_PORT" "SELECT 1 FROM pg_database WHERE datname = '$DB'") == 1 ]] ||
			die "postgres: cannot create database $DB on $HOST:$POSTGRES_PORT"
	fi
}

pg_bindir() {
	local d dirs=(/usr/lib/postgresql/*/bin)
	d=$(printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1)
	if [[ -n $d && -x $d/initdb ]]; then
		printf '%s' "$d"
	elif command -v initdb >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
	else
		return 1
	fi
}

start_postgres() { # PORT
	local port=$1 bindir
	if ! bindir=$(pg_bindir); then
		install_pkgs "the PostgreSQL server (initdb)" postgresql postgresql-client
		bindir=$(pg_bindir) || die "postgres: initdb not found after installing postgresql"
	fi
	log "postgres: starting a private server on $HOST:$port"
	# PostgreSQL refuses to run as root: as root, run it as the postgres
	# user, in a directory that user can reach.
	local -a as=()
	local dir=$STATE_DIR/postgres-$port
	if is_root; then
		id postgres >/dev/null 2>&1 || die "postgres: user postgres does not exist (Debian package postgresql creates it)"
		as=(runuser -u postgres --)
		if ! runuser -u postgres -- test -x "$STATE_DIR"; then
			dir=${TMPDIR:-/tmp}/sessionkit-postgres-$port
			echo "$dir" >>"$DIRS_FILE"
		fi
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	[[ ${#as[@]} -eq 0 ]] || chown postgres: "$dir"
	"${as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync \
		>"$dir/initdb.log" 2>&1 || {
		tail -n 20 "$dir/initdb.log" >&2
		die "postgres: initdb failed (log: $dir/initdb.log)"
	}
	# fsync and friends are off: this is throwaway test data.
	"${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$WAIT" \
		-o "-p $port -c listen_addresses=$HOST -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start </dev/null >"$dir/pg_ctl.log" 2>&1 9>&- || {
		tail -n 20 "$dir/postgres.log" >&2
		die "postgres: pg_ctl start failed on $HOST:$port (log: $dir/postgres.log)"
	}
	wait_until "postgres on $HOST:$port" "$dir/postgres.log" "" pg_ok "$port"
	record "postgres-$port" "$dir/data/postmaster.pid"
}

# ---------------------------------------------------------------- commands

env_lines() {
	local redis=${1:-$HOST:$(first "$REDIS_PORTS")}
	local cluster=${2:-$(first "$CLUSTER_PORTS" | sed "s/\([0-9][0-9]*\)/$HOST:\1/g")}
	local mc=${3:-$HOST:$(first "$MEMCACHE1_PORTS"),$HOST:$(first "$MEMCACHE2_PORTS")}
	local my=${4:-$(first "$MYSQL_PORTS")} pg=${5:-$(first "$POSTGRES_PORTS")}
	cat <<EOF
export SESSIONKIT_REDIS_ADDR='$redis'
export SESSIONKIT_REDIS_CLUSTER_ADDRS='$cluster'
export SESSIONKIT_MEMCACHE_ADDRS='$mc'
export SESSIONKIT_MYSQL_DSN='root@tcp($HOST:$my)/$DB?parseTime=true'
export SESSIONKIT_POSTGRES_DSN='postgres://postgres@$HOST:$pg/$DB?sslmode=disable'
EOF
}

lock_state() {
	mkdir -p "$STATE_DIR"
	# Other users (postgres) may need to traverse it.
	chmod 755 "$STATE_DIR" 2>/dev/null || true
	if command -v flock >/dev/null 2>&1; then
		# Servers started below must not inherit fd 9, or they would hold
		# the lock for as long as they run: each start closes it (9>&-).
		exec 9>"$STATE_DIR/lock"
		flock -w "$WAIT" 9 || die "another services.sh holds $STATE_DIR/lock"
	fi
}

cmd_up() {
	command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) is missing"
	lock_state
	touch "$PIDS"
	prune
	up_redis
	up_cluster
	up_memcache_one "$MEMCACHE1_PORTS"
	up_memcache_one "$MEMCACHE2_PORTS"
	up_mysql
	up_postgres
	env_lines "$REDIS_ADDR" "$CLUSTER_ADDRS" "$MEMCACHE_ADDRS" "$MYSQL_PORT" "$POSTGRES_PORT" >"$ENV_FILE.tmp"
	mv "$ENV_FILE.tmp" "$ENV_FILE"
	log "all servers are up; state in $STATE_DIR"
	cat "$ENV_FILE" >&2
}

cmd_env() {
	if [[ -f $ENV_FILE ]]; then
		cat "$ENV_FILE"
	else
		env_lines
	fi
}

cmd_down() {
	if [[ ! -d $STATE_DIR ]]; then
		log "nothing to stop ($STATE_DIR does not exist)"
		return
	fi
	lock_state
	stop_recorded '*'
	if [[ -f $DIRS_FILE ]]; then
		local d
		while read -r d; do
			case $d in
			*/sessionkit-postgres-*) rm -rf -- "$d" ;;
			esac
		done <"$DIRS_FILE"
	fi
	# Everything in the state directory is this script's: data of the
	# stopped instances, logs, records.
	find "$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name lock -exec rm -rf -- {} +
	rm -f "$STATE_DIR/lock"
	rmdir "$STATE_DIR" 2>/dev/null || true
	log "stopped what up had started"
}

case ${1:-} in
up) cmd_up ;;
env) cmd_env ;;
down) cmd_down ;;
*)
	echo "usage: $0 up|env|down" >&2
	exit 2
	;;
esac
