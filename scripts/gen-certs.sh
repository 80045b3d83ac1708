#!/usr/bin/env bash
# Makes a throwaway CA, a server certificate for 127.0.0.1/localhost/::1, and a client
# certificate, in the file names docker expects:
#   DIR/ca.pem DIR/server-cert.pem DIR/server-key.pem   (nginx)
#   DIR/client/{ca,cert,key}.pem                         (DOCKER_CERT_PATH)
# Keeps existing files. Usage: gen-certs.sh DIR [CLIENT_CN]
# The server certificate is as a scanner expects a real one to be (tests/tests/tls_scan.rs):
# valid for 397 days, with a CRL distribution point (on loopback; nothing fetches it).
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR [CLIENT_CN]}
cn=${2:-dockgate-client}
mkdir -p "$dir/client"
cd "$dir"
[ -f client/key.pem ] && exit 0
umask 077
days=397
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/CN=dockgate test CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout server-key.pem -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days $days \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\ncrlDistributionPoints=URI:http://127.0.0.1/dockgate-test-ca.crl\n') \
    -out server-cert.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout client/key.pem -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days $days \
    -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out client/cert.pem 2>/dev/null
cp ca.pem client/ca.pem
rm -f server.csr client.csr ca.srl
chmod 0644 ca.pem server-cert.pem client/ca.pem client/cert.pem
