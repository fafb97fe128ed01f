#!/usr/bin/env bash
# Make sure the system has what `make test` needs outside Python: a C compiler,
# pkg-config and the MariaDB client headers to build mysqlclient (it has no Linux
# wheels), mariadbd to run the tests' throwaway server, strace, nftables (the
# network lab's rules, tests/netlab.py), redis-server for the Celery tests'
# throwaway broker, and Python's headers (mysqlpool's _probes.c, and uWSGI, which
# pip builds from source for tests/test_uwsgi.py). Installs what is
# missing with apt-get when run as root on Debian or Ubuntu; otherwise prints the
# command to run and fails. With "bench" as second argument, also what `make bench`
# counts and loads with: valgrind (callgrind) and wrk.
set -euo pipefail

python=${1:-python3}
missing=()
if [ "${2:-}" = bench ]; then
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
fi

command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ! pkg-config --exists libmariadb 2>/dev/null && ! pkg-config --exists mysqlclient 2>/dev/null; then
    missing+=(libmariadb-dev)
fi
have_sbin() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have_sbin mariadbd || missing+=(mariadb-server-core)
command -v mariadb-install-db >/dev/null 2>&1 || missing+=(mariadb-server-core)
command -v my_print_defaults >/dev/null 2>&1 || missing+=(mariadb-client-core)
# A daemon test holds a start in setsid() with strace's fault injection.
command -v strace >/dev/null 2>&1 || missing+=(strace)
# The network lab drops chosen packets with nftables, and creates its namespace with ip.
have_sbin nft || missing+=(nftables)
have_sbin ip || missing+=(iproute2)
# The Celery tests' broker.
have_sbin redis-server || missing+=(redis-server)
if ! "$python" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
    missing+=(python3-dev)
fi

[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages: $packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $packages
else
    echo "mysqlpool needs these system packages: $packages" >&2
    echo "Install them, e.g.: sudo apt-get install $packages" >&2
    exit 1
fi
