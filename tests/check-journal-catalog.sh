#!/bin/sh
# SPDX-License-Identifier: MIT
# The journal catalog has an entry, with its Subject, for every MESSAGE_ID jit-brokerd
# sends, none for an ID it does not send, and journalctl compiles it without complaint.
#   check-journal-catalog.sh CATALOG broker/events.c common/audit-record.h
# journalctl --root=DIR honours DIR for both --update-catalog (it reads
# DIR/usr/lib/systemd/catalog/*.catalog and writes DIR/var/lib/systemd/catalog/database)
# and --list-catalog (systemd 252), so the machine's own catalog is never touched.
set -eu

catalog=$1
journal_c=$2
record_h=$3

fail() {
        echo "check-journal-catalog: $*" >&2
        exit 1
}

command -v journalctl >/dev/null || { echo "journalctl not found: skipped"; exit 77; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/usr/lib/systemd/catalog"
cp "$catalog" "$T/usr/lib/systemd/catalog/jit.catalog"

# journalctl reports a malformed entry on stderr and still exits 0.
journalctl --root="$T" --update-catalog 2>"$T/update.err" || fail "journalctl --update-catalog failed: $(cat "$T/update.err")"
[ ! -s "$T/update.err" ] || fail "journalctl --update-catalog complained: $(cat "$T/update.err")"
[ -s "$T/var/lib/systemd/catalog/database" ] || fail "no catalog database was written under $T"
journalctl --root="$T" --list-catalog >"$T/list" || fail "journalctl --list-catalog failed"

# The IDs in the code: the events table of broker/events.c and the audit head.
{
        sed -n '/^} events\[/,/^};/p' "$journal_c" | grep -o '"[0-9a-f]\{32\}"' | tr -d '"'
        sed -n 's/^#define AUDIT_HEAD_MESSAGE_ID "\([0-9a-f]\{32\}\)".*/\1/p' "$record_h"
} | sort -u >"$T/ids"
n=$(wc -l <"$T/ids")
[ "$n" -ge 20 ] || fail "found only $n MESSAGE_IDs in $journal_c and $record_h: did their layout change?"

grep -o '^-- [0-9a-f]\{32\}' "$catalog" | cut -c4- | sort >"$T/catalog-ids"
dups=$(uniq -d "$T/catalog-ids")
[ -z "$dups" ] || fail "entries given twice: $dups"
extra=$(sort -u "$T/catalog-ids" | comm -13 "$T/ids" -)
[ -z "$extra" ] || fail "entries for IDs jit-brokerd never sends: $extra"

status=0
while read -r id; do
        # The Subject as written, and as journalctl lists it: "ID jit: SUBJECT".
        subject=$(sed -n "/^-- $id\$/,/^\$/s/^Subject: //p" "$catalog")
        if [ -z "$subject" ]; then
                echo "missing: no catalog entry (or no Subject) for MESSAGE_ID $id" >&2
                status=1
                continue
        fi
        if ! grep -qxF "$id jit: $subject" "$T/list"; then
                echo "not listed: journalctl --list-catalog does not show $id with '$subject'" >&2
                status=1
        fi
        for header in Defined-By Support Documentation; do
                sed -n "/^-- $id\$/,/^\$/p" "$catalog" | grep -q "^$header: " ||
                        { echo "entry $id has no $header: line" >&2; status=1; }
        done
done <"$T/ids"
[ "$status" -eq 0 ] && echo "$n MESSAGE_IDs, each listed by journalctl --list-catalog with its Subject"
exit "$status"
