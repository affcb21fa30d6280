{{/* The chart's name: the app.kubernetes.io/name label and the job label. */}}
{{- define "kevent-exporter.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The objects' name: the release name when it already holds the chart's name
(release "kevent-exporter" gives the names of deploy/kubernetes), else
"<release>-<name>".
*/}}
{{- define "kevent-exporter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "kevent-exporter.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the release's pods. */}}
{{- define "kevent-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kevent-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "kevent-exporter.labels" -}}
{{ include "kevent-exporter.selectorLabels" . }}
app.kubernetes.io/component: exporter
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The configuration file: the config value, else the default one. */}}
{{- define "kevent-exporter.config" -}}
{{- .Values.config | default (.Files.Get "files/config.yml") -}}
{{- end -}}
