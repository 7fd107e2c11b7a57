#!/usr/bin/env bash
# start-rgw.sh - throwaway one-host Ceph (1 mon, 1 OSD on memstore or bluestore, no mgr) + radosgw (S3) on 127.0.0.1.
#
# The project's own test gateway: test/helpers/ceph.ts (the S3 suites) and bench/s3 run it with
# CEPH_DIR, RGW_PORT and MON_PORT of their choosing. By hand:
#   CEPH_DIR=/tmp/ceph-s3 test/ceph/start-rgw.sh    # prints the S3_* settings, also in $CEPH_DIR/s3.env
#   CEPH_DIR=/tmp/ceph-s3 test/ceph/stop-rgw.sh
#
# Needs (Debian 12): apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common
# Everything lives under $CEPH_DIR; stop-rgw.sh kills the daemons by their pid files and removes it.
# Nothing listens on anything but 127.0.0.1.
set -euo pipefail

CEPH_DIR=${CEPH_DIR:-/tmp/ceph-s3}
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-3300}                       # msgr2 only; the OSD takes ports in 6800-7300
S3_ACCESS_KEY=${S3_ACCESS_KEY:-TESTACCESSKEY0000001}
S3_SECRET_KEY=${S3_SECRET_KEY:-testsecretkey0000000000000000000000000001}
S3_USER=${S3_USER:-tester}
OSD_STORE=${OSD_STORE:-memstore}                 # memstore (data in RAM) or bluestore (sparse file in $CEPH_DIR)
OSD_BYTES=${OSD_BYTES:-$((8 << 30))}             # OSD capacity; memstore uses RAM only as data is written
WAIT_S=${WAIT_S:-120}

log() { printf '[start-rgw %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; log "logs are in $CEPH_DIR/log; stop-rgw.sh stops what was started"; exit 1; }

for b in ceph ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool uuidgen curl; do
  command -v "$b" >/dev/null || die "missing $b (apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common curl)"
done
if [ -e "$CEPH_DIR/run" ] && ls "$CEPH_DIR"/run/*.pid >/dev/null 2>&1; then
  die "$CEPH_DIR already has pid files; run stop-rgw.sh first"
fi

for port in "$RGW_PORT" "$MON_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "127.0.0.1:$port is already in use"; fi
done

rm -rf "$CEPH_DIR"
mkdir -p "$CEPH_DIR"/{run,log,crash,mon.a,osd.0}
CONF=$CEPH_DIR/ceph.conf
KEYRING=$CEPH_DIR/keyring
FSID=$(uuidgen)
OSD_UUID=$(uuidgen)

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $KEYRING
run dir = $CEPH_DIR/run
admin socket = $CEPH_DIR/run/\$name.asok
pid file = $CEPH_DIR/run/\$name.pid
log file = $CEPH_DIR/log/\$name.log
crash dir = $CEPH_DIR/crash
log to stderr = false
err to stderr = false
# one OSD, no replication
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $CEPH_DIR/mon.\$id
mon cluster log file = $CEPH_DIR/log/cluster.log
# commit map changes every 0.1 s instead of 1 s: rgw creates 7 pools at first start (2 map epochs each)
paxos propose interval = 0.1
paxos min wait = 0.01

[osd]
osd data = $CEPH_DIR/osd.\$id
osd objectstore = $OSD_STORE
memstore device bytes = $OSD_BYTES
bluestore block create = true
bluestore block size = $OSD_BYTES
osd memory target = 1073741824
osd crush update on start = true
# do not wait up to 5 s for the mon to ack "marking myself down" on SIGTERM
osd fast shutdown notify mon = false

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw thread pool size = 64
# deleted/aborted/overwritten object data is garbage-collected after 2 h by default; do it within a minute
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF

C=(-c "$CONF")
t0=$(date +%s.%N)

log "keys + monmap"
ceph-authtool --create-keyring "$KEYRING" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n osd.0 \
  --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n client.rgw \
  --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$CEPH_DIR/monmap" >/dev/null

log "mon"
ceph-mon "${C[@]}" -i a --mkfs --monmap "$CEPH_DIR/monmap" --keyring "$KEYRING"
ceph-mon "${C[@]}" -i a
ceph "${C[@]}" --connect-timeout "$WAIT_S" mon stat >/dev/null || die "mon did not come up (see $CEPH_DIR/log/mon.a.log)"

log "osd ($OSD_STORE)"
ceph "${C[@]}" osd new "$OSD_UUID" 0 >/dev/null
ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>>"$CEPH_DIR/log/osd-mkfs.log"
ceph-osd "${C[@]}" -i 0
deadline=$((SECONDS + WAIT_S))
until ceph "${C[@]}" osd dump 2>/dev/null | grep -q '^osd\.0 up'; do
  [ $SECONDS -lt $deadline ] || die "osd.0 not up (see $CEPH_DIR/log/osd.0.log)"
  sleep 0.5
done

log "radosgw on 127.0.0.1:$RGW_PORT"
radosgw "${C[@]}" -n client.rgw
deadline=$((SECONDS + WAIT_S))
until curl -fsS -o /dev/null "http://127.0.0.1:$RGW_PORT/" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || die "radosgw not answering (see $CEPH_DIR/log/client.rgw.log)"
  sleep 0.5
done

log "S3 user $S3_USER"
radosgw-admin "${C[@]}" user create --uid="$S3_USER" --display-name="$S3_USER" \
  --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >"$CEPH_DIR/user.json"

# A SigV4-signed ListBuckets must succeed. rgw rejects SigV4 without x-amz-content-sha256
# (curl does not send it by itself), so pass the hash of the empty body.
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
deadline=$((SECONDS + WAIT_S))
until curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
      -H "x-amz-content-sha256: $EMPTY_SHA" "http://127.0.0.1:$RGW_PORT/" 2>/dev/null | grep -q "<ID>$S3_USER</ID>"; do
  [ $SECONDS -lt $deadline ] || die "signed S3 request keeps failing"
  sleep 0.5
done

t1=$(date +%s.%N)
log "ready in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
cat >"$CEPH_DIR/s3.env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_ACCESS_KEY=$S3_ACCESS_KEY
S3_SECRET_KEY=$S3_SECRET_KEY
S3_REGION=us-east-1
S3_FORCE_PATH_STYLE=true
EOF
cat "$CEPH_DIR/s3.env"
