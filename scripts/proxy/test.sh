#!/usr/bin/env bash
# Integration test with a real nginx in front of three ringserve origins (two on TCP ports,
# one on a Unix socket; weights 2,1,1; max_fails=1 fail_timeout=2s; upstream keepalive).
# Run by scripts/test.sh; prints PASS/FAIL per check and exits 1 if any check failed.
#
#   scripts/proxy/test.sh        (RINGSERVE_BIN / RINGSERVE_MODE choose the origin binary/mode)
#
# Checks:
#  1. a GET through the proxy returns the file's exact bytes;
#  2. a conditional GET through the proxy gets 304 (If-None-Match and If-Modified-Since);
#     precompressed: nginx passes Accept-Encoding on, the br body arrives with
#     Content-Encoding: br and Vary and decodes (brotli -d) to the file, and the br ETag gets 304
#     while the same tag without Accept-Encoding gets the file (200);
#  3. the origin's access log shows the real client: with nginx appending $remote_addr to
#     X-Forwarded-For and the origin trusting 127.0.0.1/32 (nginx's address), a client on
#     127.0.0.5 is logged as 127.0.0.5 even when it sends a forged X-Forwarded-For, while a
#     client on 127.0.0.1 — itself inside the trusted block, hence treated as one more proxy
#     hop — is logged as the address it forwards (198.51.100.23);
#  4. health and status answer through the proxy;
#  5. a graceful stop (SIGTERM with --drain-delay 1): the origin's health says 503 while it
#     still accepts, and 100 sequential GETs through nginx meanwhile are all 200;
#  6. for a TCP origin and for the Unix-socket origin: SIGKILL it, then 200 sequential GETs all
#     succeed (nginx retries on the next origin and marks the dead one failed), then restart it
#     on the same address (the Unix one over its stale socket file) and see it serve again once
#     fail_timeout has passed.
# Every wait is bounded; every process started here is stopped on exit, by pid.
set -euo pipefail

if [[ $# -gt 0 ]]; then
    sed -n '2,20s/^# \{0,1\}//p' "$0"
    [[ $1 == -h || $1 == --help ]] && exit 0
    exit 2
fi

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || proxy_die "curl is needed"
proxy_init
trap proxy_stop_all EXIT
trap 'exit 130' INT TERM

failures=0
pass() { echo "PASS: $*"; }
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

proxy_start_origin 0 127.0.0.1:0
proxy_start_origin 1 127.0.0.1:0
proxy_start_origin 2 "unix:$PROXY_TMP/origin2.sock"
proxy_start_nginx 2 1 1
echo "nginx $PROXY_URL in front of: ${PROXY_ORIGIN_ADDRS[*]} (mode $PROXY_MODE)"

CURL=(curl --silent --show-error --max-time 5)

# --- 1. bytes --------------------------------------------------------------------------------
for path in index.html assets/64k.bin assets/4k.txt; do
    if "${CURL[@]}" --output "$PROXY_TMP/got" "$PROXY_URL/$path" &&
        cmp -s "$PROXY_TMP/got" "$PROXY_ROOT/$path"; then
        pass "GET /$path through nginx equals the file ($(wc -c <"$PROXY_ROOT/$path") bytes)"
    else
        fail "GET /$path through nginx differs from the file"
    fi
done

# --- 2. conditional GET ----------------------------------------------------------------------
head=$("${CURL[@]}" --head "$PROXY_URL/assets/4k.txt" | tr -d '\r')
etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: //p' <<<"$head")
lm=$(sed -n 's/^[Ll]ast-[Mm]odified: //p' <<<"$head")
code=$("${CURL[@]}" --output /dev/null --write-out '%{http_code}' \
    -H "If-None-Match: $etag" "$PROXY_URL/assets/4k.txt")
[[ -n $etag && $code == 304 ]] && pass "If-None-Match $etag through nginx -> 304" ||
    fail "If-None-Match '$etag' through nginx -> $code, expected 304"
code=$("${CURL[@]}" --output /dev/null --write-out '%{http_code}' \
    -H "If-Modified-Since: $lm" "$PROXY_URL/assets/4k.txt")
[[ -n $lm && $code == 304 ]] && pass "If-Modified-Since through nginx -> 304" ||
    fail "If-Modified-Since '$lm' through nginx -> $code, expected 304"

# Precompressed: www/assets/64k.txt has a .br sidecar (scripts/gen-sidecars.sh).
txt=assets/64k.txt
head=$("${CURL[@]}" -H "Accept-Encoding: br" --dump-header - --output "$PROXY_TMP/got.br" \
    "$PROXY_URL/$txt" | tr -d '\r')
encoding=$(sed -n 's/^[Cc]ontent-[Ee]ncoding: //p' <<<"$head")
vary=$(sed -n 's/^[Vv]ary: //p' <<<"$head")
br_etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: //p' <<<"$head")
if ! command -v brotli >/dev/null; then
    fail "brotli is not installed (scripts/test.sh installs it); cannot decode /$txt"
elif [[ $encoding == br && $vary == Accept-Encoding ]] &&
    brotli -d -c <"$PROXY_TMP/got.br" | cmp -s - "$PROXY_ROOT/$txt"; then
    pass "GET /$txt with Accept-Encoding: br through nginx: br, Vary, decodes to the file"
else
    fail "GET /$txt with Accept-Encoding: br through nginx: encoding '$encoding', vary '$vary', or the body does not decode to the file"
fi
code=$("${CURL[@]}" --output /dev/null --write-out '%{http_code}' \
    -H "Accept-Encoding: br" -H "If-None-Match: $br_etag" "$PROXY_URL/$txt")
[[ -n $br_etag && $code == 304 ]] && pass "If-None-Match with the br ETag through nginx -> 304" ||
    fail "If-None-Match '$br_etag' (br) through nginx -> $code, expected 304"
code=$("${CURL[@]}" --output /dev/null --write-out '%{http_code}' \
    -H "If-None-Match: $br_etag" "$PROXY_URL/$txt")
[[ $code == 200 ]] && pass "the br ETag without Accept-Encoding through nginx -> 200 (identity)" ||
    fail "the br ETag without Accept-Encoding through nginx -> $code, expected 200"

# --- 3. real client address in the origin's access log ---------------------------------------
# logged_client UA: the client field of the origin log line with that User-Agent (any origin;
# waits up to 3 s for the line, which is written right after the response).
logged_client() {
    local n line
    for ((n = 0; n < 30; n++)); do
        line=$(grep -h -F "\"$1\"" "$PROXY_TMP"/origin*.log 2>/dev/null | head -n1 || true)
        if [[ -n $line ]]; then
            echo "${line%% *}"
            return
        fi
        sleep 0.1
    done
    echo "(no log line)"
}
check_client() {
    local what=$1 ua=$2 want=$3 got
    shift 3
    "${CURL[@]}" --output /dev/null -A "$ua" "$@" "$PROXY_URL/index.html" || true
    got=$(logged_client "$ua")
    [[ $got == "$want" ]] && pass "$what: origin logged $got" ||
        fail "$what: origin logged '$got', expected $want"
}
check_client "client on 127.0.0.1 (a trusted hop) forwarding 198.51.100.23" rs-test-forwarded \
    198.51.100.23 -H "X-Forwarded-For: 198.51.100.23"
check_client "client on 127.0.0.5 forging X-Forwarded-For" rs-test-forged \
    127.0.0.5 --interface 127.0.0.5 -H "X-Forwarded-For: 198.51.100.23"
check_client "client on 127.0.0.5 without headers" rs-test-plain 127.0.0.5 --interface 127.0.0.5

# --- 4. probes through the proxy -------------------------------------------------------------
body=$("${CURL[@]}" "$PROXY_URL/-/health" || true)
[[ $body == ok ]] && pass "health through nginx: ok" || fail "health through nginx: '$body'"
status=$("${CURL[@]}" "$PROXY_URL/-/status" || true)
if grep -Eq '^ringserve_requests_total\{class="2xx"\} [1-9]' <<<"$status"; then
    pass "status through nginx: $(grep -E '^ringserve_requests_total\{class="2xx"\}' <<<"$status")"
else
    fail "status through nginx has no 2xx count: ${status:0:200}"
fi

# --- 5/6. graceful stop, failover and recovery -----------------------------------------------
lines() { wc -l <"$PROXY_TMP/origin$1.log" 2>/dev/null || echo 0; }

# requests N: N sequential GETs through nginx in one curl (one client keep-alive connection);
# prints how many were not 200.
requests() {
    local urls=() i
    for ((i = 0; i < $1; i++)); do
        urls+=(--output /dev/null "$PROXY_URL/assets/128b.txt?n=$i")
    done
    curl --silent --max-time 30 --write-out '%{http_code}\n' "${urls[@]}" |
        grep -cv '^200$' || true
}

failover() {
    local i=$1 addr=${PROXY_ORIGIN_ADDRS[$1]} before bad n others_before others_after
    before=$(lines "$i")
    others_before=0
    for n in 0 1 2; do ((n == i)) || others_before=$((others_before + $(lines "$n"))); done
    proxy_kill_origin "$i" KILL
    bad=$(requests 200)
    others_after=0
    for n in 0 1 2; do ((n == i)) || others_after=$((others_after + $(lines "$n"))); done
    [[ $bad == 0 ]] && pass "origin $i ($addr) SIGKILLed: 200 sequential GETs, all 200" ||
        fail "origin $i ($addr) SIGKILLed: $bad of 200 GETs were not 200"
    (( others_after - others_before == 200 )) &&
        pass "the other origins logged all 200 requests" ||
        fail "the other origins logged $((others_after - others_before)) of 200 requests"
    # nginx logs each failed attempt and, with max_fails=1, takes the origin out.
    local target=${addr#unix:}
    if grep -F "$target" "$PROXY_TMP/error.log" | grep -Eq 'failed|temporarily disabled'; then
        pass "nginx marked origin $i failed: $(grep -F "$target" "$PROXY_TMP/error.log" |
            grep -Eo 'connect\(\) [^(]*\([0-9]+: [^)]*\)|upstream server temporarily disabled' |
            head -n1)"
    else
        fail "nginx's error log does not mention the failed origin $i ($addr)"
    fi

    # Restart on the same address; a SIGKILLed Unix origin left its socket file behind.
    if [[ $addr == unix:* && -S $target ]]; then
        echo "      (stale socket file $target left by SIGKILL; the restart replaces it)"
    fi
    proxy_start_origin "$i" "$addr"
    [[ ${PROXY_ORIGIN_ADDRS[i]} == "$addr" ]] || fail "origin $i came back on ${PROXY_ORIGIN_ADDRS[i]}"
    before=$(lines "$i")
    # nginx tries it again once fail_timeout has passed: rounds of 20 GETs, at most 10 s.
    local round got_back=no
    for ((round = 0; round < 20; round++)); do
        bad=$(requests 20)
        [[ $bad == 0 ]] || fail "origin $i restarting: $bad of 20 GETs were not 200"
        if (($(lines "$i") > before)); then
            got_back=yes
            break
        fi
        sleep 0.5
    done
    [[ $got_back == yes ]] &&
        pass "restarted origin $i ($addr) serves through nginx again (after $((round + 1)) rounds)" ||
        fail "restarted origin $i ($addr) received no request within 10 s"
}
graceful_stop() {
    local i=$1 addr=${PROXY_ORIGIN_ADDRS[$1]} code bad
    kill -TERM "${PROXY_ORIGIN_PIDS[i]}"
    sleep 0.2
    code=$("${CURL[@]}" --output /dev/null --write-out '%{http_code}' "http://$addr/-/health" || true)
    [[ $code == 503 ]] && pass "origin $i ($addr) after SIGTERM, during its drain delay: health 503" ||
        fail "origin $i ($addr) after SIGTERM: health $code, expected 503"
    bad=$(requests 100)
    [[ $bad == 0 ]] && pass "origin $i stopping gracefully: 100 sequential GETs, all 200" ||
        fail "origin $i stopping gracefully: $bad of 100 GETs were not 200"
    proxy_kill_origin "$i" TERM
    proxy_start_origin "$i" "$addr"
}
graceful_stop 0
failover 1
failover 2

echo
if ((failures == 0)); then
    echo "proxy test: all checks passed"
else
    echo "proxy test: $failures check(s) FAILED (logs kept in $PROXY_TMP)"
    PROXY_KEEP=1
    exit 1
fi
