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

{{/* Access mode of the identity volume: shared by every replica when there are several. */}}
{{- define "flotilla-hub.identityAccessMode" -}}
{{- .Values.identity.persistence.accessMode | default (ternary "ReadWriteMany" "ReadWriteOnce" (gt (int .Values.replicas) 1)) -}}
{{- end -}}

{{/* Selector labels. */}}
{{- define "flotilla-hub.selector" -}}
app.kubernetes.io/name: flotilla-hub
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
