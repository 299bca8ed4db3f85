{{/* The chart's name, and the release's full name (both DNS labels). */}}
{{- define "asynctask-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "asynctask-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Labels of every object. Never app.kubernetes.io/managed-by=asynctask-operator: the
operator watches the pods that carry it, and this pod is not a task.
*/}}
{{- define "asynctask-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "asynctask-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "asynctask-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "asynctask-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "asynctask-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "asynctask-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "asynctask-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "asynctask-operator.reportUrl" -}}
{{- default (printf "http://%s.%s.svc:%v" (include "asynctask-operator.fullname" .) .Release.Namespace .Values.service.port) .Values.reports.url -}}
{{- end -}}

{{/*
The PolicyRules of one scope, as YAML, from files/rules.yaml: generated from the one table
in operator/asynctask_operator/rbac.py (`python -m asynctask_operator.rbac --write
charts/asynctask-operator/files/rules.yaml`; a unit test keeps it current).
The file is {scope: {feature: [PolicyRule]}}; "<report-key-secret>" stands for the Secret's name.
Call: include "asynctask-operator.rules" (dict "root" $ "scope" "namespaced")
*/}}
{{- define "asynctask-operator.rules" -}}
{{- $root := .root -}}
{{- $text := $root.Files.Get "files/rules.yaml" -}}
{{- if not $text -}}
{{- fail "files/rules.yaml is missing from the chart: run `python -m asynctask_operator.rbac --write charts/asynctask-operator/files/rules.yaml`" -}}
{{- end -}}
{{- $all := $text | replace "<report-key-secret>" $root.Values.reports.keySecret | fromYaml -}}
{{- if not (hasKey $all .scope) -}}
{{- fail (printf "files/rules.yaml has no scope %q" .scope) -}}
{{- end -}}
{{- $out := list -}}
{{- range $feature, $rules := get $all .scope -}}
{{- if eq $feature "always" -}}
{{- $out = concat $out $rules -}}
{{- else if eq $feature "reports" -}}
{{- if $root.Values.reports.enabled -}}
{{- $out = concat $out $rules -}}
{{- end -}}
{{- else -}}
{{- fail (printf "files/rules.yaml: unknown feature %q; teach templates/_helpers.tpl when it is needed" $feature) -}}
{{- end -}}
{{- end -}}
{{- if $out -}}
{{- toYaml $out -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/*
PromQL label matchers (without braces) that pick this release's series in the PrometheusRule:
metrics.prometheusRule.selector, or job="<fullname>", the job a ServiceMonitor names after the Service.
*/}}
{{- define "asynctask-operator.metricsSelector" -}}
{{- .Values.metrics.prometheusRule.selector | default (printf "job=%q" (include "asynctask-operator.fullname" .)) -}}
{{- end -}}

{{/*
The gateway (gateway.enabled): its own name, labels and selector, distinct from the operator's so
that neither Deployment's selector matches the other's pods.
*/}}
{{- define "asynctask-operator.gateway.fullname" -}}
{{- printf "%s-gateway" (include "asynctask-operator.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "asynctask-operator.gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-gateway" (include "asynctask-operator.name" . | trunc 55 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "asynctask-operator.gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "asynctask-operator.gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The gateway's port name: "https" when it serves TLS itself (gateway.tls.secretName), else "http" —
service meshes and ingress controllers read the protocol from it. The container port, the probes,
the Service and the ServiceMonitor all name the port through this.
*/}}
{{- define "asynctask-operator.gateway.portName" -}}
{{- ternary "https" "http" (not (empty .Values.gateway.tls.secretName)) -}}
{{- end -}}

{{/* The gateway's PolicyRules of one scope ("namespaced" or "cluster"), from files/gateway-rules.yaml. */}}
{{- define "asynctask-operator.gateway.rules" -}}
{{- $all := .root.Files.Get "files/gateway-rules.yaml" | fromYaml -}}
{{- toYaml (get $all .scope) -}}
{{- end -}}

{{/*
The archiver (archive.enabled): its own name, labels and selector, apart from the operator's and
the gateway's, so that no Deployment's selector matches another's pods.
*/}}
{{- define "asynctask-operator.archive.fullname" -}}
{{- printf "%s-archive" (include "asynctask-operator.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "asynctask-operator.archive.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-archive" (include "asynctask-operator.name" . | trunc 55 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "asynctask-operator.archive.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "asynctask-operator.archive.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: archive
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The archiver's PolicyRules of one scope, from files/archive-rules.yaml (generated from ARCHIVE_RULES
in operator/asynctask_operator/rbac.py: `python -m asynctask_operator.rbac --archive --write
charts/asynctask-operator/files/archive-rules.yaml`). Call: include "asynctask-operator.archive.rules"
(dict "root" $ "scope" "namespaced")
*/}}
{{- define "asynctask-operator.archive.rules" -}}
{{- $text := .root.Files.Get "files/archive-rules.yaml" -}}
{{- if not $text -}}
{{- fail "files/archive-rules.yaml is missing from the chart: run `python -m asynctask_operator.rbac --archive --write charts/asynctask-operator/files/archive-rules.yaml`" -}}
{{- end -}}
{{- toYaml (get ($text | fromYaml) .scope) -}}
{{- end -}}

{{/* PromQL matchers of the archiver's series: metrics.prometheusRule.archiveSelector, or its ServiceMonitor's job. */}}
{{- define "asynctask-operator.archive.metricsSelector" -}}
{{- .Values.metrics.prometheusRule.archiveSelector | default (printf "job=%q" (include "asynctask-operator.archive.fullname" .)) -}}
{{- end -}}

{{/*
"true" when the gateway serves the aggregated API archive.asynctask.dev (gateway.aggregation): the gateway on,
reading the archive (archive.enabled with PostgreSQL and its Secret, as gateway-deployment.yaml mounts it),
and aggregation not turned off; else "".
*/}}
{{- define "asynctask-operator.gateway.aggregated" -}}
{{- $a := .Values.archive -}}
{{- $reads := and $a.enabled (eq $a.database.type "postgresql") (ne $a.database.existingSecret "") -}}
{{- ternary "true" "" (and .Values.gateway.enabled .Values.gateway.aggregation.enabled $reads) -}}
{{- end -}}

{{/* The Secret of the aggregation port's certificate: the one named, or the one the chart makes. */}}
{{- define "asynctask-operator.gateway.aggregationSecret" -}}
{{- .Values.gateway.aggregation.tls.secretName | default (printf "%s-aggregation" (include "asynctask-operator.gateway.fullname" .)) -}}
{{- end -}}
