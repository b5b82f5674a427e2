{{/* The bundled NATS server's configuration (nats.conf). */}}
{{- define "offload.nats.conf" -}}
{{- $name := include "offload.nats.name" . -}}
# NATS with JetStream for Offload ({{ .Values.nats.replicas }} node{{ if gt (int .Values.nats.replicas) 1 }}s{{ end }}).
server_name: $SERVER_NAME
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
max_payload: 8MB
lame_duck_duration: 30s
lame_duck_grace_period: 10s
pid_file: /var/run/nats/nats.pid

jetstream {
  store_dir: /data
  max_memory_store: {{ .Values.nats.jetstream.maxMemoryStore }}
  max_file_store: {{ .Values.nats.jetstream.maxFileStore }}
}
{{- if .Values.nats.auth.enabled }}

# Every client presents this user and password (NATS_USER / NATS_PASSWORD: the container's
# env, from Secret {{ include "offload.nats.auth.secretName" . }}).
authorization {
  user: $NATS_USER
  password: $NATS_PASSWORD
}
{{- end }}
{{- if gt (int .Values.nats.replicas) 1 }}

cluster {
  name: {{ $name }}
  listen: 0.0.0.0:6222
  {{- if .Values.nats.auth.enabled }}
  # Routes present the same credentials: NATS_ROUTES (the container's env) has
  # these route URLs, each with the user and password in it:
  {{- range (splitList ", " (include "offload.nats.routes" (dict "ctx" . "userinfo" ""))) }}
  #   {{ . }}
  {{- end }}
  authorization {
    user: $NATS_USER
    password: $NATS_PASSWORD
  }
  routes: $NATS_ROUTES
  {{- else }}
  routes: [
    {{- range $i := until (int .Values.nats.replicas) }}
    nats://{{ $name }}-{{ $i }}.{{ $name }}-headless.{{ $.Release.Namespace }}.svc.{{ $.Values.clusterDomain }}:6222
    {{- end }}
  ]
  {{- end }}
  connect_retries: 120
}
{{- end }}
{{- end -}}

{{/* The cluster route URLs, comma-separated; call with (dict "ctx" $ "userinfo" "user:pass@" or ""). */}}
{{- define "offload.nats.routes" -}}
{{- $name := include "offload.nats.name" .ctx -}}
{{- $routes := list -}}
{{- range $i := until (int .ctx.Values.nats.replicas) -}}
{{- $routes = append $routes (printf "nats://%s%s-%d.%s-headless.%s.svc.%s:6222" $.userinfo $name $i $name $.ctx.Release.Namespace $.ctx.Values.clusterDomain) -}}
{{- end -}}
{{- join ", " $routes -}}
{{- end -}}
