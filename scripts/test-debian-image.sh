#!/usr/bin/env bash
# Builds the offline test image `dockgate-test/debian:host` (nothing can be pulled here): a
# Debian rootfs made of the host's own installed files for apt, dpkg, python3 and pip and
# everything they depend on, with a dpkg database listing exactly those packages, then
# `docker import`ed. No CA bundle unless a PACKAGE names ca-certificates (left out on purpose:
# the package-cache suite checks that the injected bundle makes TLS work in an image without
# one).
# Keeps an existing image: CI builds it once. DOCKER_HOST selects the engine.
#
#   test-debian-image.sh [IMAGE [PACKAGE...]]
#
# PACKAGEs are more installed packages to take (with their dependencies); the environment's
# DOCKGATE_IMAGE_COPY ("SRC=DST ...") names more host files to copy in.
set -euo pipefail
image=${1:-dockgate-test/debian:host}
shift || true
docker image inspect "$image" >/dev/null 2>&1 && exit 0

roots=(base-files base-passwd bash coreutils dash debianutils diffutils findutils grep gzip
    hostname libc-bin login mawk sed tar util-linux apt dpkg gpgv python3 python3-pip "$@")
skip=" ca-certificates "
[[ " $* " == *" ca-certificates "* ]] && skip=""   # unless asked for by name

# The installed dependency closure of the roots (Pre-Depends and Depends; alternatives: the
# first one installed).
declare -A seen=()
queue=("${roots[@]}")
while ((${#queue[@]})); do
    p=${queue[0]}; queue=("${queue[@]:1}")
    p=${p%%:*}
    [[ -n ${seen[$p]:-} || $skip == *" $p "* ]] && continue
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || continue
    seen[$p]=1
    deps=$(dpkg-query -W -f='${Pre-Depends}, ${Depends}' "$p")
    IFS=',' read -ra alts <<<"$deps"
    for alt in "${alts[@]}"; do
        IFS='|' read -ra choices <<<"$alt"
        for c in "${choices[@]}"; do
            name=$(echo "$c" | sed 's/(.*)//; s/\[.*\]//; s/ //g'); name=${name%%:*}
            [ -z "$name" ] && continue
            if dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed"; then
                queue+=("$name"); break
            fi
        done
    done
done
pkgs=("${!seen[@]}")

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
list=$root.list
trap 'rm -rf "$root" "$list"' EXIT
# Each package's files, with directory symlinks of the merged /usr resolved.
for p in "${pkgs[@]}"; do dpkg-query -L "$p"; done | sort -u | while read -r f; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    [ -d "$f" ] && [ ! -L "$f" ] && continue
    dir=$(readlink -f "$(dirname "$f")")
    echo "${dir#/}/$(basename "$f")"
done | sort -u >"$list"
tar -C / --no-recursion -cf - -T "$list" | tar -C "$root" -xf -
for d in bin sbin lib lib64; do [ -L "/$d" ] && ln -sfn "$(readlink "/$d")" "$root/$d"; done

# The dpkg database of exactly these packages.
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
# Relations to packages left out (ca-certificates, recommends) are dropped, so apt sees a
# consistent system.
for p in "${pkgs[@]}"; do dpkg-query -s "$p"; echo; done | /usr/bin/python3 -c '
import re, sys
have = set(sys.argv[1:])
def keep(clause):
    return any(re.split(r"[ :(]", a.strip())[0] in have for a in clause.split("|"))
for line in sys.stdin:
    m = re.match(r"(Pre-Depends|Depends|Recommends|Suggests|Breaks|Enhances): (.*)", line)
    if m is None:
        sys.stdout.write(line)
        continue
    if m.group(1) in ("Recommends", "Suggests", "Enhances"):
        continue
    kept = [c.strip() for c in m.group(2).split(",") if keep(c)]
    if kept and m.group(1) != "Breaks":
        sys.stdout.write(m.group(1) + ": " + ", ".join(kept) + "\n")
' "${pkgs[@]}" >"$root/var/lib/dpkg/status"
for p in "${pkgs[@]}"; do
    for f in /var/lib/dpkg/info/"$p".list /var/lib/dpkg/info/"$p":*.list /var/lib/dpkg/info/"$p".md5sums /var/lib/dpkg/info/"$p":*.md5sums; do
        [ -f "$f" ] && cp "$f" "$root/var/lib/dpkg/info/"
    done
done
: >"$root/var/lib/dpkg/available"
cp -a /var/lib/dpkg/arch "$root/var/lib/dpkg/" 2>/dev/null || true

mkdir -p "$root/etc/apt/sources.list.d" "$root/etc/apt/apt.conf.d" "$root/etc/apt/preferences.d" \
    "$root/etc/apt/trusted.gpg.d" "$root/var/lib/apt/lists/partial" \
    "$root/var/cache/apt/archives/partial" "$root/var/log/apt" "$root/tmp" "$root/root" \
    "$root/run" "$root/var/tmp" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp" "$root/var/tmp"
: >"$root/etc/apt/sources.list"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/bash
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
printf 'root:*:19000:0:99999:7:::\n_apt:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
chmod 0640 "$root/etc/shadow"
# ca-certificates' bundle is made by its postinst, not shipped: the host's, as installed.
if [ -z "$skip" ]; then
    mkdir -p "$root/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
for pair in ${DOCKGATE_IMAGE_COPY:-}; do
    mkdir -p "$root$(dirname "${pair#*=}")"
    cp -L "${pair%%=*}" "$root${pair#*=}"
done
# Names resolve from /etc/hosts only (dockerd writes it): nothing in a test asks DNS.
echo 'hosts: files' >"$root/etc/nsswitch.conf"
if [ -n "$skip" ] && [ -e "$root/etc/ssl/certs/ca-certificates.crt" ]; then
    echo "test-debian-image: a CA bundle slipped in" >&2
    exit 1
fi

tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["bash"]' - "$image" >/dev/null
echo "test-debian-image: imported $image (${#pkgs[@]} packages)" >&2
