{{/*
Names, labels, images and the shared bits of pod specs.
*/}}

{{- define "offload.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "offload.fullname" -}}
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

{{- define "offload.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "api"). */}}
{{- define "offload.labels" -}}
helm.sh/chart: {{ include "offload.chart" .ctx }}
{{ include "offload.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: offload
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "api"). */}}
{{- define "offload.selectorLabels" -}}
app.kubernetes.io/name: {{ include "offload.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* An image reference from {registry, repository, tag}; call with (dict "image" .Values.image "default" "TAG"). */}}
{{- define "offload.image" -}}
{{- $tag := .image.tag | default .default | toString -}}
{{- if .image.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .image.registry) .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "offload.controlPlaneImage" -}}
{{- include "offload.image" (dict "image" .Values.image "default" .Chart.AppVersion) -}}
{{- end -}}

{{/* Object names. */}}
{{- define "offload.controller.name" -}}{{ include "offload.fullname" . }}-controller{{- end -}}
{{- define "offload.api.name" -}}{{ include "offload.fullname" . }}-api{{- end -}}
{{- define "offload.nats.name" -}}{{ include "offload.fullname" . }}-nats{{- end -}}
{{- define "offload.postgresql.name" -}}{{ include "offload.fullname" . }}-postgresql{{- end -}}

{{- define "offload.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "offload.controller.name" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret that holds the run API token under the key `token`. */}}
{{- define "offload.apiToken.secretName" -}}
{{- default (printf "%s-api-token" (include "offload.fullname" .)) .Values.apiToken.existingSecret -}}
{{- end -}}

{{/* The run API's URL inside the cluster. */}}
{{- define "offload.api.url" -}}
{{- printf "http://%s.%s.svc:%d" (include "offload.api.name" .) .Release.Namespace (int .Values.api.service.port) -}}
{{- end -}}

{{/* The NATS URL(s) the controller and the run API (and, through the controller, the workers) use. */}}
{{- define "offload.nats.url" -}}
{{- if eq .Values.nats.mode "external" -}}
{{- required "nats.url is required when nats.mode is external" .Values.nats.url | trim -}}
{{- else -}}
{{- printf "nats://%s.%s.svc:4222" (include "offload.nats.name" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* The Secret and key that hold the PostgreSQL connection URL. */}}
{{- define "offload.database.secretName" -}}
{{- if eq .Values.postgresql.mode "external" -}}
{{- required "postgresql.existingSecret is required when postgresql.mode is external" .Values.postgresql.existingSecret -}}
{{- else -}}
{{- include "offload.postgresql.name" . -}}
{{- end -}}
{{- end -}}

{{- define "offload.database.secretKey" -}}
{{- if eq .Values.postgresql.mode "external" -}}
{{- .Values.postgresql.secretKey -}}
{{- else -}}
database-url
{{- end -}}
{{- end -}}

{{/* The restricted container security context every container gets. */}}
{{- define "offload.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The pod security context; call with the uid. */}}
{{- define "offload.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "offload.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* nodeSelector / tolerations / affinity from a values block. */}}
{{- define "offload.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
