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

{{/* Name of the renderer's Deployment, Service and NetworkPolicy. */}}
{{- define "flotilla-hub.rendererName" -}}
{{- printf "%s-renderer" (include "flotilla-hub.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of the renderer's pods (never matched by the hub's selector). */}}
{{- define "flotilla-hub.rendererSelector" -}}
app.kubernetes.io/name: flotilla-renderer
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret holding the renderer's TLS material (ca.crt, renderer.crt/key, hub.crt/key). */}}
{{- define "flotilla-hub.rendererTlsSecret" -}}
{{- .Values.renderer.tls.existingSecret | default (printf "%s-renderer-tls" (include "flotilla-hub.fullname" .)) -}}
{{- end -}}
