#!/usr/bin/env bash
# Installs the system programs the end-to-end and native-stack tests need, when they are missing:
# PostgreSQL (Debian's packages), Chromium (Debian's package, driven headless by Playwright) and a
# Java runtime (Debian's default-jre-headless, for Spark local in the engines tier).
# Called once per test session by tests/e2e/system.py; CI runs as root on a clean machine with
# only package registries reachable, so this is the one place these installs happen.
#
#   tests/e2e/setup.sh postgres chromium java
set -euo pipefail

want=()
for what in "$@"; do
    case "$what" in
        postgres)
            compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || want+=(postgresql)
            ;;
        chromium)
            command -v chromium >/dev/null || want+=(chromium)
            ;;
        java)
            command -v java >/dev/null || want+=(default-jre-headless)
            ;;
        *)
            echo "setup.sh: unknown component '$what' (known: postgres chromium java)" >&2
            exit 2
            ;;
    esac
done

if [ ${#want[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "setup.sh: ${want[*]} missing and not root: install them with apt-get install -y ${want[*]}" >&2
    exit 3
fi
echo "setup.sh: installing ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A lock held by another engineer's apt run: wait for it rather than fail.
for attempt in 1 2 3 4 5 6; do
    if apt-get -o DPkg::Lock::Timeout=120 update -qq && \
       apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "${want[@]}" >/dev/null; then
        exit 0
    fi
    echo "setup.sh: apt-get failed (attempt $attempt), retrying" >&2
    sleep 10
done
exit 1
