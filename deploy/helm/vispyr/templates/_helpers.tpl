{{- define "vispyr.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vispyr.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Values.mode }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vispyr.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ports of a mode: name, number. The gateway takes every signal in
(it forwards profiles and logs too) but serves no query port, UI or Faro. */}}
{{- define "vispyr.ports" -}}
otlp-grpc: 4317
otlp-http: 4318
prometheus: 9090
pyroscope: 4040
pyro-ingest: 9999
loki: 3100
{{- if eq .Values.mode "serve" }}
tempo: 3200
ui: 3000
faro: 12347
{{- end }}
admin: 12345
health: 13133
{{- end -}}

{{/* Vispyr's configuration file. */}}
{{- define "vispyr.config" -}}
{{- $c := dict "data_dir" "/var/lib/vispyr" -}}
{{- if eq .Values.mode "serve" -}}
{{- $_ := set $c "metrics" (dict "retention" .Values.retention.metrics) -}}
{{- $traces := dict "retention" .Values.retention.traces -}}
{{- if .Values.s3.enabled -}}
{{- $s3 := dict "endpoint" .Values.s3.endpoint "bucket" .Values.s3.bucket "region" .Values.s3.region "insecure" .Values.s3.insecure "prefix" .Values.s3.prefix -}}
{{- $_ := set $traces "storage" (dict "backend" "s3" "s3" $s3) -}}
{{- end -}}
{{- $_ := set $c "traces" $traces -}}
{{- $_ := set $c "profiles" (dict "retention" .Values.retention.profiles) -}}
{{- else -}}
{{- $_ := set $c "forward" .Values.gateway.forward -}}
{{- end -}}
{{- if or .Values.auth.tokens .Values.auth.users -}}
{{- $_ := set $c "auth" (dict "tokens" .Values.auth.tokens "users" .Values.auth.users) -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite $c (deepCopy .Values.config)) -}}
{{- end -}}

{{/* The port of faro.proxy.upstreamUrl (its scheme's default when absent). */}}
{{- define "vispyr.faroPort" -}}
{{- $u := urlParse .Values.faro.proxy.upstreamUrl -}}
{{- $hp := splitList ":" $u.host -}}
{{- if gt (len $hp) 1 -}}{{ last $hp }}{{- else if eq $u.scheme "https" -}}443{{- else -}}80{{- end -}}
{{- end -}}
