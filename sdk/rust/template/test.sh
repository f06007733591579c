#!/usr/bin/env bash
# This strategy's test: build it, then run it through cutover's conformance scenarios on the simulator
# (happy path, failing checks, API errors, a crash mid-deploy, a timeout; fleets of 1, 3 and 500
# machines in two regions and two process groups), checking the invariants every deploy must keep.
# Exit 0: all kept. The strategy runs in cutover's sandbox, so this is safe on a shared CI runner.
# `CUTOVER` names the cutover binary when it is not on PATH.
set -euo pipefail
cd "$(dirname "$0")"
cutover=${CUTOVER:-cutover}
"$cutover" build .
"$cutover" verify "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{name_snake}}.wasm"
