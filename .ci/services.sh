#!/usr/bin/env bash
# Make sure PostgreSQL, MariaDB, Redis and RabbitMQ answer; start any that is down. Fails if one stays down.
set -u

wait_for() {  # name, check command...
  local name=$1; shift
  for _ in $(seq 1 30); do
    if "$@" >/dev/null 2>&1; then echo "service $name: up"; return 0; fi
    sleep 1
  done
  echo "service $name: DOWN" >&2
  return 1
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
maria_up() { mariadb-admin -h 127.0.0.1 -P 3306 -u root ping; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
# The AMQP port answering the protocol header (what Celery's workers need), not just the node.
rabbit_up() {
  python3 -c 'import socket; s = socket.create_connection(("127.0.0.1", 5672), 2); s.sendall(b"AMQP\x00\x00\x09\x01"); s.settimeout(5); assert s.recv(7)[:1] == b"\x01"'
}

if ! pg_up 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! maria_up 2>/dev/null; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
fi
if ! redis_up 2>/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi

if ! rabbit_up 2>/dev/null; then
  rabbitmq-server -detached || true
fi

status=0
wait_for postgresql pg_up || status=1
wait_for mariadb maria_up || status=1
wait_for redis redis_up || status=1
wait_for rabbitmq rabbit_up || status=1
exit $status
