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

{{/* The NATS URL(s) the run API and (through the controller) the workers use. */}}
{{- define "offload.nats.url" -}}
{{- if eq .Values.nats.mode "external" -}}
{{- required "nats.url is required when nats.mode is external" .Values.nats.url | trim -}}
{{- else -}}
{{- printf "nats://%s.%s.svc:4222" (include "offload.nats.name" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
The Secret (keys `user` and `password`) with the NATS credentials the clients present, or "" for none:
`nats.auth.existingSecret`, else for bundled NATS the one the chart makes. Nothing when auth is off.
*/}}
{{- define "offload.nats.auth.secretName" -}}
{{- if .Values.nats.auth.enabled -}}
{{- if .Values.nats.auth.existingSecret -}}
{{- .Values.nats.auth.existingSecret -}}
{{- else if eq .Values.nats.mode "bundled" -}}
{{- printf "%s-auth" (include "offload.nats.name" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The NATS URL(s), comma-separated, each with its credentials (if any) replaced by `userinfo`
("user:pass@", or "" for none) and a scheme (nats:// when none is given).
Call with (dict "ctx" $ "userinfo" "...").
*/}}
{{- define "offload.nats.url.withUserinfo" -}}
{{- $urls := list -}}
{{- range (splitList "," (include "offload.nats.url" .ctx)) -}}
{{- $u := trim . -}}
{{- if $u -}}
{{- $scheme := "nats" -}}
{{- if contains "://" $u -}}
{{- $scheme = regexReplaceAll "://.*$" $u "" -}}
{{- $u = regexReplaceAll "^[^:]*://" $u "" -}}
{{- end -}}
{{- $u = regexReplaceAll "^.*@" $u "" -}}
{{- $urls = append $urls (printf "%s://%s%s" $scheme $.userinfo $u) -}}
{{- end -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}

{{/*
The NATS env of the run API. With credentials: OFFLOAD_NATS_USER and
OFFLOAD_NATS_PASSWORD from the Secret, then OFFLOAD_NATS_URL with
`$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@` in each URL (any credentials given in the
URL replaced), which Kubernetes expands because both are defined before it.
*/}}
{{- define "offload.nats.env" -}}
{{- $secret := include "offload.nats.auth.secretName" . -}}
{{- if $secret -}}
- name: OFFLOAD_NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: user
- name: OFFLOAD_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: password
- name: OFFLOAD_NATS_URL
  value: {{ include "offload.nats.url.withUserinfo" (dict "ctx" . "userinfo" "$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@") | quote }}
{{- else -}}
- name: OFFLOAD_NATS_URL
  value: {{ include "offload.nats.url" . | quote }}
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

{{/* "true" when callers present ServiceAccount tokens (auth.mode kubernetes), else "". */}}
{{- define "offload.auth.kubernetes" -}}
{{- if eq .Values.auth.mode "kubernetes" -}}true{{- end -}}
{{- end -}}

{{/* "true" when callers present the shared token of the Secret (auth.mode token), else "". */}}
{{- define "offload.auth.sharedToken" -}}
{{- if eq .Values.auth.mode "token" -}}true{{- end -}}
{{- end -}}

{{- define "offload.api.serviceAccountName" -}}{{ include "offload.api.name" . }}{{- end -}}

{{/* Where a pod's projected run API token is mounted: the SDK's default OFFLOAD_TOKEN_FILE is <dir>/token. */}}
{{- define "offload.runApiToken.dir" -}}/var/run/secrets/offload{{- end -}}

{{/*
The projected ServiceAccount token a pod presents to the run API with auth.mode kubernetes. The kubelet renews
it before it expires and the SDK re-reads the file, so the hour only bounds how long a stolen token is useful.
*/}}
{{- define "offload.runApiToken.volume" -}}
- name: offload-token
  projected:
    sources:
      - serviceAccountToken:
          audience: {{ .Values.auth.audience | quote }}
          expirationSeconds: 3600
          path: token
{{- end -}}

{{- define "offload.runApiToken.mount" -}}
- name: offload-token
  mountPath: {{ include "offload.runApiToken.dir" . }}
  readOnly: true
{{- end -}}
