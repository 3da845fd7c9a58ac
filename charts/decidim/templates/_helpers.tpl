{{/* vim: set filetype=mustache: */}}

{{/*
Chart name, truncated to 63 characters (DNS label).
*/}}
{{- define "decidim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name: <release>-<chart>, or the release name when it already
contains the chart name. Truncated to 52 characters so that suffixes such as
"-maintenance" still fit in 63.
*/}}
{{- define "decidim.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "decidim.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Version label: the image tag (the Decidim version running), else the chart's appVersion.
*/}}
{{- define "decidim.version" -}}
{{- $v := default .Chart.AppVersion .Values.image.tag | toString -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" $v "_" | trunc 63 | trimAll "-_." -}}
{{- end -}}

{{/*
Labels of every object. Usage: include "decidim.labels" (dict "context" $ "component" "web" ["pod" true] ["version" "7.2"])
Defaults first, then commonLabels win (a dict merge, so no key appears twice), then the
component, which belongs to the object. "version" gives a component that does not run
Decidim (the bundled Redis) its own version label, so a Decidim upgrade leaves its pod
template, and the pod, as they are.
*/}}
{{- define "decidim.labels" -}}
{{- $ctx := .context -}}
{{- $defaults := dict
  "helm.sh/chart" (include "decidim.chart" $ctx)
  "app.kubernetes.io/name" (include "decidim.name" $ctx)
  "app.kubernetes.io/instance" $ctx.Release.Name
  "app.kubernetes.io/version" (include "decidim.version" $ctx)
  "app.kubernetes.io/managed-by" $ctx.Release.Service
  "app.kubernetes.io/part-of" "decidim" -}}
{{- if .pod -}}
{{- /* Pod templates leave out the chart label: a chart bump alone must not restart pods
       or touch the immutable pod template of a migration Job. */ -}}
{{- $_ := unset $defaults "helm.sh/chart" -}}
{{- end -}}
{{- $labels := merge (deepCopy (default (dict) $ctx.Values.commonLabels)) $defaults -}}
{{- $_ := set $labels "app.kubernetes.io/component" .component -}}
{{- if and .pod (has .component (list "web" "worker" "migration")) -}}
{{- /* The pods that run Decidim's code (and the task Jobs osp-ops copies from the
       migration's pod): networkpolicy.yaml gives them the app's egress. */ -}}
{{- $_ := set $labels "osp-ops.io/network" "app" -}}
{{- end -}}
{{- with .version -}}
{{- $_ := set $labels "app.kubernetes.io/version" (regexReplaceAll "[^A-Za-z0-9_.-]" (toString .) "_" | trunc 63 | trimAll "-_.") -}}
{{- end -}}
{{- toYaml $labels -}}
{{- end -}}

{{/*
Selector labels (immutable on Deployments: never includes commonLabels or the version).
Usage: include "decidim.selectorLabels" (dict "context" $ "component" "web")
*/}}
{{- define "decidim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "decidim.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Metadata block (name, labels, annotations) shared by all objects.
Usage: include "decidim.metadata" (dict "context" $ "component" "web" "name" "x" "annotations" (dict))
*/}}
{{- define "decidim.metadata" -}}
name: {{ .name }}
labels:
{{ include "decidim.labels" (dict "context" .context "component" .component) | indent 2 }}
{{- $annotations := merge (deepCopy (default (dict) .annotations)) (default (dict) .context.Values.commonAnnotations) }}
{{- with $annotations }}
annotations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}

{{- define "decidim.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "decidim.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "decidim.primaryHost" -}}
{{- first (default (list "localhost") .Values.hosts) -}}
{{- end -}}

{{- define "decidim.displayName" -}}
{{- coalesce .Values.tenant.displayName .Values.tenant.slug .Release.Name -}}
{{- end -}}

{{- define "decidim.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) -}}
{{- end -}}

{{/* Effective replicas: maintenance mode scales the app to zero. */}}
{{- define "decidim.webReplicas" -}}
{{- if .Values.maintenance.enabled -}}0{{- else -}}{{ int .Values.web.replicas }}{{- end -}}
{{- end -}}
{{- define "decidim.workerReplicas" -}}
{{- if .Values.maintenance.enabled -}}0{{- else -}}{{ int .Values.worker.replicas }}{{- end -}}
{{- end -}}

{{/* Name of the migration Job: <fullname>-migrate-<version, dots as dashes>, at most 63 chars. */}}
{{- define "decidim.migrationJobName" -}}
{{- $version := regexReplaceAll "[^a-z0-9-]" (toString .Values.image.tag | lower) "-" | trimAll "-" -}}
{{- $suffix := printf "-migrate-%s" $version -}}
{{- printf "%s%s" (include "decidim.fullname" . | trunc (int (sub 63 (len $suffix))) | trimSuffix "-") $suffix | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "decidim.pvcName" -}}
{{- default (printf "%s-storage" (include "decidim.fullname" .)) .Values.storage.pvc.existingClaim -}}
{{- end -}}

{{/* True ("true") when the uploads volume can only be attached to one node. */}}
{{- define "decidim.pvcIsRWO" -}}
{{- if and (eq .Values.storage.type "pvc") (not (has "ReadWriteMany" .Values.storage.pvc.accessModes)) -}}true{{- end -}}
{{- end -}}

{{/*
Environment of every Decidim container (web, worker, migration): secret references by
key (values never pass through Helm), then extraEnv. Non-secret settings come from the
ConfigMap via envFrom.
*/}}
{{- define "decidim.appEnv" -}}
{{- $secret := .Values.secrets.existingSecret -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: DATABASE_URL
- name: SECRET_KEY_BASE
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: SECRET_KEY_BASE
{{- if .Values.smtp.host }}
- name: SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: SMTP_PASSWORD
      optional: true
{{- end }}
{{- if eq .Values.storage.type "s3" }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
{{- if and (not .Values.redis.bundled.enabled) (not .Values.redis.external.url) }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: REDIS_URL
{{- end }}
{{- range .Values.extraEnv }}
- name: {{ .name }}
  value: {{ .value | toString | quote }}
{{- end }}
{{- end -}}

{{/* envFrom of every Decidim container. */}}
{{- define "decidim.appEnvFrom" -}}
- configMapRef:
    name: {{ include "decidim.fullname" . }}-config
{{- end -}}

{{/* Writable paths of the Decidim containers (the root file system is read-only). */}}
{{- define "decidim.appVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: app-tmp
  mountPath: {{ .Values.appRoot }}/tmp
- name: app-log
  mountPath: {{ .Values.appRoot }}/log
{{- end -}}

{{- define "decidim.appVolumes" -}}
- name: tmp
  emptyDir: {}
- name: app-tmp
  emptyDir: {}
- name: app-log
  emptyDir: {}
{{- end -}}

{{- define "decidim.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{/* HTTP probe of the web container: the primary host, as if behind the TLS ingress. */}}
{{- define "decidim.webProbeAction" -}}
httpGet:
  path: {{ .Values.web.probes.path }}
  port: http
  httpHeaders:
    - name: Host
      value: {{ include "decidim.primaryHost" . | quote }}
    - name: X-Forwarded-Proto
      value: https
{{- end -}}

{{/*
With a ReadWriteOnce uploads volume, web and worker pods must share a node. Each pod
carries the same label and requires a peer with that label on its node; a pod matches
its own term, so the first one schedules anywhere and the rest follow it.
*/}}
{{- define "decidim.rwoAffinityLabel" -}}
{{- if include "decidim.pvcIsRWO" . -}}
decidim.osp-ops.io/uploads-volume: {{ include "decidim.pvcName" . }}
{{- end -}}
{{- end -}}

{{- define "decidim.rwoAffinity" -}}
{{- if include "decidim.pvcIsRWO" . -}}
affinity:
  podAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            decidim.osp-ops.io/uploads-volume: {{ include "decidim.pvcName" . }}
{{- end -}}
{{- end -}}
