#!/usr/bin/env bash
# Every non-MySQL check type against its real server in the lab, going down and up, with traffic
# through the VIP: redis (redis-server on be1), memcached (memcached on be2), agent (an HTTP agent
# file served by python's http.server on be3, answering up / drain / 50% / down), http with
# expect_body (a status file on the same server, "ready" or "maintenance", always 200), http with
# reuse_connection (nginx on be1: one connection for every check, so no TIME_WAIT on the server)
# and exec (a script that curls the same server). nginx's http checks run in every lab test; the MariaDB
# checks have tests of their own (mysql_*.sh).
set -euo pipefail
: "${ILB_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ILB_BUILD_DIR:=$ILB_SOURCE_DIR/build}"
export LAB_RUN_DIR="${LAB_RUN_DIR:-$ILB_BUILD_DIR/e2e-lab/check_types}"
[[ $EUID -eq 0 ]] || { echo "SKIP: the netns lab needs root"; exit 77; }
# shellcheck source=../../tools/lab/lab.sh
source "$ILB_SOURCE_DIR/tools/lab/lab.sh"

deadline_s=20  # interval 500 ms, rise = fall = 1: generous for a slow, shared machine
files="$LAB_RUN_DIR.files"  # beside LAB_RUN_DIR, which lab_up empties
rm -rf "$files"
mkdir -p "$files/www"
echo up >"$files/www/agent.txt"
echo "state: ready" >"$files/www/status.txt"
echo be3 >"$files/www/index.html"
be1="$(lab_backend_addr be1)"
be2="$(lab_backend_addr be2)"
be3="$(lab_backend_addr be3)"

export LAB_CONFIG="$files/lab.toml"
{
  sed -n '1,/^\[\[service\]\]/p' "$ILB_SOURCE_DIR/config/lab.toml" | sed '$d'
  cat <<EOF
[[service]]
name = "redis"
vip = "$LAB_VIP"
port = 6379
[service.health_check]
type = "redis"
interval = "500ms"
timeout = "300ms"
rise = 1
fall = 1
[[service.backend]]
address = "$be1"

[[service]]
name = "memcache"
vip = "$LAB_VIP"
port = 11211
[service.health_check]
type = "memcached"
interval = "500ms"
timeout = "300ms"
rise = 1
fall = 1
[[service.backend]]
address = "$be2"

[[service]]
name = "agent"
vip = "$LAB_VIP"
port = 8080
[service.health_check]
type = "agent"
agent_protocol = "http"
path = "/agent.txt"
interval = "500ms"
timeout = "300ms"
rise = 1
fall = 1
[[service.backend]]
address = "$be3"

[[service]]
name = "page"
vip = "$LAB_VIP"
port = 82
[service.health_check]
type = "http"
path = "/status.txt"
expect_body = "ready"
interval = "500ms"
timeout = "300ms"
rise = 1
fall = 1
[[service.backend]]
address = "$be3"
port = 8080

[[service]]
name = "kept"
vip = "$LAB_VIP"
port = 83
[service.health_check]
type = "http"
reuse_connection = true
interval = "500ms"
timeout = "300ms"
rise = 1
fall = 1
[[service.backend]]
address = "$be1"
port = 80

[[service]]
name = "script"
vip = "$LAB_VIP"
port = 81
[service.health_check]
type = "exec"
command = ["/bin/sh", "-c", "exec curl -sf --max-time 1 -o /dev/null http://\$ILB_BACKEND_ADDRESS:8080/"]
interval = "500ms"
timeout = "400ms"
rise = 1
fall = 1
[[service.backend]]
address = "$be3"
port = 8080
EOF
} >"$LAB_CONFIG"

declare -A server_pid
start_redis() {
  ip netns exec "${LAB_PREFIX}be1" redis-server --bind "$be1" --port 6379 --save "" \
    --appendonly no --protected-mode no --dir "$files" >"$files/redis.log" 2>&1 &
  server_pid[redis]=$!
}
start_memcached() {
  ip netns exec "${LAB_PREFIX}be2" memcached -u root -l "$be2" -p 11211 -U 0 \
    >"$files/memcached.log" 2>&1 &
  server_pid[memcached]=$!
}
start_http() {
  ip netns exec "${LAB_PREFIX}be3" /usr/bin/python3 -m http.server 8080 --bind "$be3" \
    --directory "$files/www" >"$files/http.log" 2>&1 &
  server_pid[http]=$!
}
stop_server() {
  lab_kill_pid "${server_pid[$1]}" TERM 10
}

field() {  # field SERVICE JQ: JQ over the service's only backend
  ilbctl_lab --json backends "$1" 2>/dev/null | jq -r ".[0] | $2"
}
is() {  # is SERVICE JQ VALUE
  [[ "$(field "$1" "$2")" == "$3" ]]
}
redis_ping() { [[ "$(in_ns client redis-cli -h "$LAB_VIP" -p 6379 PING 2>/dev/null)" == PONG ]]; }
memcached_version() {
  in_ns client bash -c 'exec 3<>"/dev/tcp/$1/11211" && printf "version\r\n" >&3 &&
    IFS= read -r -t 3 line <&3 && [[ "$line" == VERSION* ]]' memcached-version "$LAB_VIP"
}
http_get() {  # http_get PORT PATH EXPECTED
  [[ "$(in_ns client curl -sS --max-time 3 "http://$LAB_VIP:$1$2" 2>/dev/null)" == "$3" ]]
}

lab_up
lab_hugepages
start_redis
start_memcached
start_http
lab_start_nginx be1
lab_start_controlplane
lab_start_dataplane

ok=1
for s in redis memcache agent page kept script; do
  lab_check "$s: backend up" wait_for "$s up" "$deadline_s" is "$s" .health up || ok=0
done
lab_wait_applied 0 || ok=0
lab_check "redis PING through the VIP" wait_for "PONG" "$deadline_s" redis_ping || ok=0
lab_check "memcached version through the VIP" memcached_version || ok=0
lab_check "HTTP through the agent-checked VIP" http_get 8080 /index.html be3 || ok=0
lab_check "HTTP through the script-checked VIP" http_get 81 /index.html be3 || ok=0
lab_check "HTTP through the body-checked VIP" http_get 82 /index.html be3 || ok=0

echo "-- the kept-connection check talks to nginx over one connection"
nginx_requests() { wc -l <"$LAB_RUN_DIR/nginx-be1/access.log"; }
lab_check "nginx answers several checks" wait_for "5 checks in nginx's log" "$deadline_s" \
  bash -c '(($(wc -l <"$1") >= 5))' _ "$LAB_RUN_DIR/nginx-be1/access.log" || ok=0
server_sockets() {  # server_sockets STATE: be1's port-80 sockets in that state
  in_ns be1 ss -Htan state "$1" "( sport = :80 )" | wc -l
}
echo "nginx requests: $(nginx_requests); be1 :80 established $(server_sockets established)," \
  "time-wait $(server_sockets time-wait)"
lab_check "one established connection carries them" test "$(server_sockets established)" -eq 1 ||
  ok=0
lab_check "no TIME_WAIT on nginx's side (no connection was closed)" \
  test "$(server_sockets time-wait)" -eq 0 || ok=0

echo "-- the status page says maintenance (still HTTP 200), then ready again"
echo "state: maintenance" >"$files/www/status.txt"
lab_check "no \"ready\" in the body: backend down" \
  wait_for "page down" "$deadline_s" is page .health down || ok=0
lab_check "the reason names the missing text" \
  is page .last_check 'HTTP 200, "ready" not in the body' || ok=0
echo "state: ready" >"$files/www/status.txt"
lab_check "\"ready\" in the body again: backend up" \
  wait_for "page up" "$deadline_s" is page .health up || ok=0

echo "-- the agent asks to drain, then for half its weight, then says down"
echo drain >"$files/www/agent.txt"
lab_check "agent drain: backend draining" \
  wait_for "agent drain" "$deadline_s" is agent .state draining || ok=0
echo "up 50%" >"$files/www/agent.txt"
lab_check "agent 50%: serving at weight 50" \
  wait_for "agent 50%" "$deadline_s" is agent '.state + " " + (.serving_weight|tostring)' \
  "serving 50" || ok=0
echo down >"$files/www/agent.txt"
lab_check "agent down: backend down" wait_for "agent down" "$deadline_s" is agent .health down ||
  ok=0
echo garbage-reply >"$files/www/agent.txt"
lab_check "a bad agent reply keeps it down, with the reason" \
  wait_for "bad reply reason" "$deadline_s" is agent '.last_check | startswith("agent: bad reply")' \
  true || ok=0
echo up >"$files/www/agent.txt"
lab_check "agent up: serving at full weight" \
  wait_for "agent up" "$deadline_s" is agent '.state + " " + (.serving_weight|tostring)' \
  "serving 100" || ok=0

echo "-- each server stops and starts again"
lab_stop_nginx be1
lab_check "nginx stopped: the kept-connection check takes it down" \
  wait_for "kept down" "$deadline_s" is kept .health down || ok=0
lab_start_nginx be1
lab_check "nginx back: the kept-connection check brings it up" \
  wait_for "kept up" "$deadline_s" is kept .health up || ok=0

stop_server redis
lab_check "redis stopped: backend down" wait_for "redis down" "$deadline_s" is redis .health down ||
  ok=0
start_redis
lab_check "redis back: backend up" wait_for "redis up" "$deadline_s" is redis .health up || ok=0
lab_check "redis PING through the VIP again" wait_for "PONG" "$deadline_s" redis_ping || ok=0

stop_server memcached
lab_check "memcached stopped: backend down" \
  wait_for "memcached down" "$deadline_s" is memcache .health down || ok=0
start_memcached
lab_check "memcached back: backend up" \
  wait_for "memcached up" "$deadline_s" is memcache .health up || ok=0
lab_check "memcached version through the VIP again" \
  wait_for "VERSION" "$deadline_s" memcached_version || ok=0

stop_server http
lab_check "http server stopped: the script check takes it down" \
  wait_for "script down" "$deadline_s" is script .health down || ok=0
lab_check "http server stopped: the agent check takes it down" \
  wait_for "agent down" "$deadline_s" is agent .health down || ok=0
lab_check "http server stopped: the http check takes it down" \
  wait_for "page down" "$deadline_s" is page .health down || ok=0
lab_check "the script check's reason names the exit status" \
  is script '.last_check | startswith("exit ")' true || ok=0
start_http
lab_check "http server back: script check up" \
  wait_for "script up" "$deadline_s" is script .health up || ok=0
lab_check "http server back: agent check up" \
  wait_for "agent up" "$deadline_s" is agent .health up || ok=0
lab_check "http server back: http check up" \
  wait_for "page up" "$deadline_s" is page .health up || ok=0
lab_check "HTTP through the script-checked VIP again" \
  wait_for "be3" "$deadline_s" http_get 81 /index.html be3 || ok=0
((ok))
