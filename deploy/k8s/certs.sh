#!/bin/sh
# certs.sh NAMESPACE [RELEASE] [DIR]: a private CA and the NATS servers'
# certificate for the chart release RELEASE (default nats) in NAMESPACE,
# written to DIR (default secrets/tls): ca.crt, ca.key, tls.crt, tls.key.
#
# The certificate names the client Service (RELEASE, RELEASE.NAMESPACE,
# ... .svc.cluster.local) and every pod behind the headless Service
# (*.RELEASE-headless...), and serves both as a server and as a client
# certificate: the routes between the NATS pods present it to each other
# (config.cluster.tls with verify), so a pod without it cannot join the
# cluster. Keep ca.key off the cluster; make a new tls.crt with it before
# tls.crt expires (825 days).
set -eu
ns=${1:?usage: certs.sh NAMESPACE [RELEASE] [DIR]}
release=${2:-nats}
dir=${3:-secrets/tls}
for name in "$ns" "$release"; do
  case $name in
  "" | -* | *- | *[!a-z0-9-]*)
    echo "certs.sh: \"$name\" is not a Kubernetes name (lower-case letters, digits and -)" >&2
    exit 2
    ;;
  esac
done
umask 077
mkdir -p "$dir"
cd "$dir"

if [ ! -f ca.key ]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout ca.key -out ca.crt -days 3650 -subj "/CN=clerkjobs NATS CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

names=""
for svc in "$release" "*.$release-headless"; do
  for suffix in "" ".$ns" ".$ns.svc" ".$ns.svc.cluster.local"; do
    names="$names${names:+,}DNS:$svc$suffix"
  done
done
cat >tls.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$names
EOF
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout tls.key -out tls.csr -subj "/CN=$release.$ns.svc" 2>/dev/null
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
  -out tls.crt -days 825 -extfile tls.ext 2>/dev/null
rm -f tls.csr tls.ext ca.srl
echo "wrote $dir/ca.crt, ca.key, tls.crt, tls.key for $release in namespace $ns"
