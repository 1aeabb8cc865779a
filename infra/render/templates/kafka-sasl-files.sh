#!/bin/bash
# kafka-sasl-files.sh ADMIN_USER ADMIN_PASSWORD_FILE OUT_DIR: the files a broker and its operator tools log
# in with, written from the admin's password (a Secret Manager secret on a VM, fetched to tmpfs; a file of
# the test's on the test brokers) into OUT_DIR, which must be on tmpfs: they hold the password.
#   jaas.conf              the broker's JVM (-Djava.security.auth.login.config): SCRAM-SHA-512 as the admin
#                          between brokers, and the controller listener's PLAIN login and its one user
#   admin.properties       --command-config of the tools on the client listener (SCRAM-SHA-512)
#   controller.properties  --command-config of the tools on the controller listener (--bootstrap-controller)
#   format.args            the storage tool's --add-scram of the admin, for kafka-format.sh's argument file
# KRaft keeps SCRAM credentials in its metadata log, so the controller listener cannot use SCRAM: it takes
# PLAIN with the admin alone (infra/services/kafka.py says why that is acceptable there).
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 ADMIN_USER ADMIN_PASSWORD_FILE OUT_DIR" >&2
  exit 2
fi
user=$1
out=$3
password=$(tr -d '[:space:]' <"$2")
if [[ -z ${password} || ${password} =~ [^A-Za-z0-9] || ! ${user} =~ ^[a-z][a-z0-9-]*$ ]]; then
  echo "$0: the admin user must be [a-z][a-z0-9-]* and its password non-empty letters and digits" >&2
  exit 1
fi
umask 077
mkdir -p "${out}"
scram="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"${user}\" password=\"${password}\";"
plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"${user}\" password=\"${password}\""
cat >"${out}/jaas.conf" <<JAAS
KafkaServer {
  ${scram}
};
controller.KafkaServer {
  ${plain} user_${user}="${password}";
};
JAAS
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=%s\n' "${scram}" \
  >"${out}/admin.properties"
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=%s;\n' "${plain}" \
  >"${out}/controller.properties"
printf '%s\n' --add-scram "SCRAM-SHA-512=[name=${user},password=${password}]" >"${out}/format.args"
