// A chart shaped like public charts, and the CRD it branches on: shared by the end-to-end
// capabilities test and the restart tests. It declares kubeVersion ">=1.23.0-0", picks API
// versions from .Capabilities (policy/v1 PodDisruptionBudget by a resource-level entry,
// autoscaling/v2 HPA by version), has RBAC and a helper template, and renders a
// ServiceMonitor only where monitoring.coreos.com/v1 is served.

import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';

export const CHART: Record<string, string> = {
  'Chart.yaml': `apiVersion: v2
name: shop
description: A storefront, packaged the way public charts are
type: application
version: 1.4.2
appVersion: "2.7.0"
kubeVersion: ">=1.23.0-0"
`,
  'values.yaml': `image:
  repository: registry.example.com/shop
  tag: ""
serviceAccount:
  create: true
rbac:
  create: true
podDisruptionBudget:
  enabled: true
  minAvailable: 1
autoscaling:
  enabled: true
  minReplicas: 2
  maxReplicas: 5
  targetCPUUtilizationPercentage: 80
metrics:
  serviceMonitor:
    enabled: true
    interval: 30s
`,
  'templates/_helpers.tpl': `{{- define "shop.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shop.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shop.labels" -}}
{{ include "shop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "shop.pdb.apiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end -}}

{{- define "shop.hpa.apiVersion" -}}
{{- if semverCompare ">=1.23-0" .Capabilities.KubeVersion.GitVersion -}}
autoscaling/v2
{{- else -}}
autoscaling/v2beta2
{{- end -}}
{{- end -}}
`,
  'templates/serviceaccount.yaml': `{{- if .Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "shop.fullname" . }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
{{- end }}
`,
  'templates/rbac.yaml': `{{- if .Values.rbac.create }}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "shop.fullname" . }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "shop.fullname" . }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "shop.fullname" . }}
subjects:
  - kind: ServiceAccount
    name: {{ include "shop.fullname" . }}
    namespace: {{ .Release.Namespace }}
{{- end }}
`,
  'templates/configmap.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "shop.fullname" . }}-runtime
  labels:
    {{- include "shop.labels" . | nindent 4 }}
data:
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
`,
  'templates/deployment.yaml': `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "shop.fullname" . }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: 1
  {{- end }}
  selector:
    matchLabels:
      {{- include "shop.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "shop.selectorLabels" . | nindent 8 }}
    spec:
      serviceAccountName: {{ include "shop.fullname" . }}
      containers:
        - name: shop
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          ports:
            - name: http
              containerPort: 8080
`,
  'templates/service.yaml': `apiVersion: v1
kind: Service
metadata:
  name: {{ include "shop.fullname" . }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  selector:
    {{- include "shop.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: 80
      targetPort: http
`,
  'templates/pdb.yaml': `{{- if .Values.podDisruptionBudget.enabled }}
apiVersion: {{ include "shop.pdb.apiVersion" . }}
kind: PodDisruptionBudget
metadata:
  name: {{ include "shop.fullname" . }}
spec:
  minAvailable: {{ .Values.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      {{- include "shop.selectorLabels" . | nindent 6 }}
{{- end }}
`,
  'templates/hpa.yaml': `{{- if .Values.autoscaling.enabled }}
apiVersion: {{ include "shop.hpa.apiVersion" . }}
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "shop.fullname" . }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "shop.fullname" . }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
`,
  'templates/servicemonitor.yaml': `{{- if and .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "shop.fullname" . }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "shop.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: http
      interval: {{ .Values.metrics.serviceMonitor.interval }}
{{- end }}
`,
};

export const SERVICE_MONITOR_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor, listKind: ServiceMonitorList }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: { type: object, x-kubernetes-preserve-unknown-fields: true }
`;

/**
 * Plays the Deployment controller for the chart's Deployment (release "web", namespace
 * "shop") on a test API server, which runs no controllers: its rollout is done.
 */
export async function rollOutShop(kubeconfigPath: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const apps = kc.makeApiClient(AppsV1Api);
  const d = await apps.readNamespacedDeployment({ name: 'web-shop', namespace: 'shop' });
  d.status = {
    observedGeneration: d.metadata?.generation ?? 1,
    replicas: 2,
    updatedReplicas: 2,
    readyReplicas: 2,
    availableReplicas: 2,
    conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
  };
  await apps.replaceNamespacedDeploymentStatus({ name: 'web-shop', namespace: 'shop', body: d });
}
