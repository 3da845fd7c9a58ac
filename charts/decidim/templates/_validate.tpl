{{/* vim: set filetype=mustache: */}}

{{/*
Validation of the values: every check gathers its messages, "decidim.validateValues"
fails once listing them all (called from NOTES.txt and validate.yaml). The quota and
LimitRange fit checks need resource quantities as numbers, computed here too.
*/}}

{{/* ------------------------------------------------------------------------
Resource quantities. Helm has no quantity type: these helpers turn
"250m"/"1"/"1.5" into millicores and "512Mi"/"1G"/"1024" into bytes (floats).
------------------------------------------------------------------------- */}}
{{- define "decidim.cpuMilli" -}}
{{- $q := toString . -}}
{{- if or (eq $q "") (eq $q "<nil>") -}}0
{{- else if hasSuffix "m" $q -}}{{ float64 (trimSuffix "m" $q) }}
{{- else -}}{{ mulf (float64 $q) 1000.0 }}
{{- end -}}
{{- end -}}

{{- define "decidim.memBytes" -}}
{{- $q := toString . -}}
{{- if or (eq $q "") (eq $q "<nil>") -}}0
{{- else -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $suffix := trimPrefix $num $q -}}
{{- $units := dict "" 1.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "P" 1000000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 -}}
{{- mulf (float64 $num) (get $units $suffix | default 1.0) -}}
{{- end -}}
{{- end -}}

{{- define "decidim.fmtCpu" -}}{{ printf "%.0fm" (float64 .) }}{{- end -}}
{{- define "decidim.fmtMem" -}}{{ printf "%.0fMi" (divf (float64 .) 1048576.0) }}{{- end -}}

{{/*
The workloads the release runs at once, with their replica counts, for the quota check.
Returns YAML: a list of {name, value, replicas, resources}.
*/}}
{{- define "decidim.workloads" -}}
{{- $surge := ternary 1 0 (and .Values.quota.enabled .Values.quota.rolloutHeadroom) -}}
{{- $web := int (include "decidim.webReplicas" .) -}}
{{- $worker := int (include "decidim.workerReplicas" .) -}}
{{- $list := list -}}
{{- if gt $web 0 -}}
{{- $list = append $list (dict "name" "web" "value" "web.resources" "replicas" (add $web $surge) "note" (ternary (printf "(%d+1 rollout surge)" $web) (printf "%d" $web) (eq $surge 1)) "resources" .Values.web.resources) -}}
{{- end -}}
{{- if gt $worker 0 -}}
{{- $list = append $list (dict "name" "worker" "value" "worker.resources" "replicas" (add $worker $surge) "note" (ternary (printf "(%d+1 rollout surge)" $worker) (printf "%d" $worker) (eq $surge 1)) "resources" .Values.worker.resources) -}}
{{- end -}}
{{- if .Values.redis.bundled.enabled -}}
{{- $list = append $list (dict "name" "redis" "value" "redis.bundled.resources" "replicas" 1 "note" "1" "resources" .Values.redis.bundled.resources) -}}
{{- end -}}
{{- if .Values.migration.enabled -}}
{{- $list = append $list (dict "name" "migration" "value" "migration.resources" "replicas" 1 "note" "1" "resources" .Values.migration.resources) -}}
{{- end -}}
{{- if .Values.maintenance.enabled -}}
{{- $list = append $list (dict "name" "maintenance" "value" "maintenance.resources" "replicas" 1 "note" "1" "resources" .Values.maintenance.resources) -}}
{{- end -}}
{{- toYaml $list -}}
{{- end -}}

{{/*
Quota fit check: appends one message per quota value that the workloads exceed.
Usage: include "decidim.validateValues.quota" . (returns messages separated by newlines)
*/}}
{{- define "decidim.validateValues.quota" -}}
{{- $workloads := include "decidim.workloads" . | fromYamlArray -}}
{{- $lr := .Values.limitRange -}}
{{- $msgs := list -}}
{{- $checks := list
  (dict "key" "requests.cpu" "quota" .Values.quota.requests.cpu "kind" "cpu" "field" "requests")
  (dict "key" "requests.memory" "quota" .Values.quota.requests.memory "kind" "memory" "field" "requests")
  (dict "key" "limits.cpu" "quota" .Values.quota.limits.cpu "kind" "cpu" "field" "limits")
  (dict "key" "limits.memory" "quota" .Values.quota.limits.memory "kind" "memory" "field" "limits") -}}
{{- range $checks -}}
{{- $check := . -}}
{{- if and $check.quota (ne (toString $check.quota) "") -}}
{{- $total := 0.0 -}}
{{- $parts := list -}}
{{- range $workloads -}}
{{- $res := default (dict) (get (default (dict) .resources) $check.field) -}}
{{- $fallback := ternary (default (dict) $lr.defaultRequest) (default (dict) $lr.default) (eq $check.field "requests") -}}
{{- $q := default (get $fallback $check.kind) (get $res $check.kind) -}}
{{- if eq $check.kind "cpu" -}}
{{- $one := include "decidim.cpuMilli" $q | float64 -}}
{{- $total = addf $total (mulf $one (float64 .replicas)) -}}
{{- $parts = append $parts (printf "%s %s x %s (%s.%s.cpu)" .name .note (include "decidim.fmtCpu" $one) .value $check.field) -}}
{{- else -}}
{{- $one := include "decidim.memBytes" $q | float64 -}}
{{- $total = addf $total (mulf $one (float64 .replicas)) -}}
{{- $parts = append $parts (printf "%s %s x %s (%s.%s.memory)" .name .note (include "decidim.fmtMem" $one) .value $check.field) -}}
{{- end -}}
{{- end -}}
{{- $hard := ternary (include "decidim.cpuMilli" $check.quota | float64) (include "decidim.memBytes" $check.quota | float64) (eq $check.kind "cpu") -}}
{{- if gt $total $hard -}}
{{- $fmt := ternary "decidim.fmtCpu" "decidim.fmtMem" (eq $check.kind "cpu") -}}
{{- $msgs = append $msgs (printf "quota too small for the plan: quota.%s=%v but the release needs %s = %s; raise quota.%s or lower the replicas/resources named" $check.key $check.quota (join " + " $parts) (include $fmt $total) $check.key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* pods */ -}}
{{- $pods := 0 -}}
{{- $podParts := list -}}
{{- range $workloads -}}
{{- $pods = add $pods (int .replicas) -}}
{{- $podParts = append $podParts (printf "%s %s" .name .note) -}}
{{- end -}}
{{- if gt $pods (int .Values.quota.pods) -}}
{{- $msgs = append $msgs (printf "quota too small for the plan: quota.pods=%v but the release runs %d pods (%s); raise quota.pods or lower web.replicas/worker.replicas" .Values.quota.pods $pods (join " + " $podParts)) -}}
{{- end -}}
{{- /* storage */ -}}
{{- if and (eq .Values.storage.type "pvc") (not .Values.storage.pvc.existingClaim) -}}
{{- if lt (int .Values.quota.persistentvolumeclaims) 1 -}}
{{- $msgs = append $msgs (printf "quota too small for the plan: quota.persistentvolumeclaims=%v but storage.type=pvc needs 1 PVC" .Values.quota.persistentvolumeclaims) -}}
{{- end -}}
{{- $size := include "decidim.memBytes" .Values.storage.pvc.size | float64 -}}
{{- $hard := include "decidim.memBytes" .Values.quota.requests.storage | float64 -}}
{{- if gt $size $hard -}}
{{- $msgs = append $msgs (printf "quota too small for the plan: quota.requests.storage=%v but storage.pvc.size=%v" .Values.quota.requests.storage .Values.storage.pvc.size) -}}
{{- end -}}
{{- end -}}
{{- join "\n" $msgs -}}
{{- end -}}

{{/*
LimitRange max check: every container limit must be within limitRange.max.
*/}}
{{- define "decidim.validateValues.limitRange" -}}
{{- $workloads := include "decidim.workloads" . | fromYamlArray -}}
{{- $max := default (dict) .Values.limitRange.max -}}
{{- $msgs := list -}}
{{- range $workloads -}}
{{- $limits := default (dict) (get (default (dict) .resources) "limits") -}}
{{- if and $max.cpu $limits.cpu -}}
{{- if gt (include "decidim.cpuMilli" $limits.cpu | float64) (include "decidim.cpuMilli" $max.cpu | float64) -}}
{{- $msgs = append $msgs (printf "%s.limits.cpu=%v exceeds limitRange.max.cpu=%v" .value $limits.cpu $max.cpu) -}}
{{- end -}}
{{- end -}}
{{- if and $max.memory $limits.memory -}}
{{- if gt (include "decidim.memBytes" $limits.memory | float64) (include "decidim.memBytes" $max.memory | float64) -}}
{{- $msgs = append $msgs (printf "%s.limits.memory=%v exceeds limitRange.max.memory=%v" .value $limits.memory $max.memory) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join "\n" $msgs -}}
{{- end -}}

{{/*
Validation: gathers every problem with the values and fails once, listing them all.
Called from NOTES.txt and validate.yaml so that `helm install`, `helm template` and
`helm lint` all report it.
*/}}
{{- define "decidim.validateValues" -}}
{{- $v := .Values -}}
{{- $msgs := list -}}
{{- if not $v.image.tag -}}
{{- $msgs = append $msgs "image.tag is required: the Decidim version to run, e.g. --set image.tag=0.28.4" -}}
{{- end -}}
{{- if not $v.secrets.existingSecret -}}
{{- $msgs = append $msgs "secrets.existingSecret is required: the name of a Secret with keys DATABASE_URL and SECRET_KEY_BASE (see README)" -}}
{{- end -}}
{{- if not $v.hosts -}}
{{- $msgs = append $msgs "hosts is required: at least one host name, the first one is the primary host" -}}
{{- end -}}
{{- if not (has $v.locales.default $v.locales.available) -}}
{{- $msgs = append $msgs (printf "locales.default=%s is not in locales.available=%s" $v.locales.default (join "," $v.locales.available)) -}}
{{- end -}}
{{- if eq $v.storage.type "s3" -}}
{{- if not $v.storage.s3.bucket -}}
{{- $msgs = append $msgs "storage.s3.bucket is required with storage.type=s3" -}}
{{- end -}}
{{- if and $v.networkPolicy.enabled (not $v.networkPolicy.egress.s3) -}}
{{- $msgs = append $msgs "networkPolicy.egress.s3 is empty but storage.type=s3: list the S3 endpoint as {cidr, ports} or the pods cannot reach it" -}}
{{- end -}}
{{- end -}}
{{- if and (include "decidim.pvcIsRWO" .) (gt (int $v.web.replicas) 1) -}}
{{- $msgs = append $msgs (printf "storage.pvc.accessModes=%s (ReadWriteOnce) cannot serve web.replicas=%v pods on several nodes: use ReadWriteMany, storage.type=s3, or web.replicas=1" (join "," $v.storage.pvc.accessModes) $v.web.replicas) -}}
{{- end -}}
{{- if and $v.redis.bundled.enabled $v.redis.external.url -}}
{{- $msgs = append $msgs "redis.bundled.enabled=true and redis.external.url are both set: choose one" -}}
{{- end -}}
{{- if $v.networkPolicy.enabled -}}
{{- if not $v.networkPolicy.egress.database.cidr -}}
{{- $msgs = append $msgs "networkPolicy.egress.database.cidr is required while networkPolicy.enabled=true (the default deny would cut PostgreSQL off)" -}}
{{- end -}}
{{- if and $v.smtp.host (not $v.networkPolicy.egress.smtp) -}}
{{- $msgs = append $msgs (printf "networkPolicy.egress.smtp is empty but smtp.host=%s: list the SMTP server as {cidr, ports}" $v.smtp.host) -}}
{{- end -}}
{{- if and (not $v.redis.bundled.enabled) (not $v.networkPolicy.egress.redis) -}}
{{- $msgs = append $msgs "networkPolicy.egress.redis is empty but Redis is external (redis.bundled.enabled=false): list it as {cidr, ports}" -}}
{{- end -}}
{{- end -}}
{{- if and $v.ingress.certManager.clusterIssuer $v.ingress.certManager.issuer -}}
{{- $msgs = append $msgs "ingress.certManager.clusterIssuer and ingress.certManager.issuer are both set: choose one" -}}
{{- end -}}
{{- if $v.quota.enabled -}}
{{- $q := include "decidim.validateValues.quota" . -}}
{{- if $q -}}{{- $msgs = concat $msgs (splitList "\n" $q) -}}{{- end -}}
{{- end -}}
{{- if $v.limitRange.enabled -}}
{{- $l := include "decidim.validateValues.limitRange" . -}}
{{- if $l -}}{{- $msgs = concat $msgs (splitList "\n" $l) -}}{{- end -}}
{{- end -}}
{{- if $msgs -}}
{{- fail (printf "\n\nVALUES VALIDATION (%d problems):\n  - %s" (len $msgs) (join "\n  - " $msgs)) -}}
{{- end -}}
{{- end -}}
