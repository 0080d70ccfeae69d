{{/* Name of every object of the release. */}}
{{- define "flotilla-hub.fullname" -}}
{{- if contains "flotilla-hub" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-flotilla-hub" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{/* Common labels. */}}
{{- define "flotilla-hub.labels" -}}
app.kubernetes.io/name: flotilla-hub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The Secret of the replicas' identity directory (CA, first administrator); required with replicas > 1. */}}
{{- define "flotilla-hub.identitySecret" -}}
{{- required "identity.secretName is required with replicas > 1: make the hub's identity once with `flotilla hub init --identity-dir DIR`, then `kubectl create secret generic flotilla-hub-identity --from-file=DIR` (docs/install.md)" .Values.identity.secretName -}}
{{- end -}}

{{/* Selector labels. */}}
{{- define "flotilla-hub.selector" -}}
app.kubernetes.io/name: flotilla-hub
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
